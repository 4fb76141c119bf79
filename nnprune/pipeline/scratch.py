"""The from-scratch control (Liu et al., ICLR 2019): a pruned model's architecture, re-initialised
and trained with a baseline's recipe. At the epochs the pruned network saw in all (the baseline's
plus its fine-tune's) this is Scratch-E; a study compares it with the pruned and fine-tuned run to
tell "the criterion left a better network" from "any network of this shape does as well"."""
from __future__ import annotations

from dataclasses import asdict

from torch import nn

from nnprune.engine.metrics import accuracy, count_macs, count_params
from nnprune.engine.training import fit
from nnprune.models.layers import init_conv_bn
from nnprune.pipeline.steps import Step, _eval_batches, _model_and_data
from nnprune.plan.specs import ScratchSpec, StepResult, TrainConfig, pick
from nnprune.pruning.model_file import save_model


def reinitialise(model: nn.Module) -> nn.Module:
    """Every layer's parameters and BatchNorm statistics drawn anew: PyTorch's own initialisation
    of each layer, then the built-in models' (He-normal convolutions, BatchNorm 1 and 0)."""
    for module in model.modules():
        if module is not model and hasattr(module, "reset_parameters"):
            module.reset_parameters()
    return init_conv_bn(model)


def scratch(spec: ScratchSpec) -> StepResult:
    """Train SPEC.model's architecture from scratch; writes OUT/model.pt and OUT/metrics.json
    (test accuracy, %, MACs and params, and the pruned run it took the architecture from)."""
    step = Step("scratch", spec)
    model, meta, bundle = _model_and_data(spec.model)
    model = reinitialise(model).to(step.device)
    config = pick(TrainConfig, spec)
    train_batches = bundle.batches("train", config.batch_size, train=True, seed=spec.seed, device=step.device,
                                   channels_last=config.channels_last, augment=config.augment,
                                   drop_last=config.compile != "none")
    summary = fit(model, train_batches, _eval_batches(bundle, "val", step), config, step.out / "last.pt",
                  step.device, step.log, run_inputs={"data": meta["data"], "seed": spec.seed})
    test_acc = accuracy(model, _eval_batches(bundle, "test", step), amp=config.amp)
    model = model.cpu()
    input_shape = tuple(meta["input_shape"])
    save_model(step.out / "model.pt", model, meta["arch"], meta["build_args"], input_shape, meta["removed"],
               data=meta["data"], train=asdict(config), acc_test=test_acc, scratch_of=spec.model,
               **({"source": meta["source"]} if meta.get("source") else {}))
    step.log(f"test accuracy of the architecture trained from scratch {test_acc:.2f}%")
    # the architecture's source: the pruned run, from its model file
    source = {key: meta.get(key) for key in ("arch", "build_args", "data", "pruning", "criterion", "score_images")}
    results = {"acc_test": test_acc, "acc_val": summary["best_val_acc"], "macs": count_macs(model, input_shape),
               "params": count_params(model), "train": summary}
    return StepResult(step.finish(results, {**source, "source_model": spec.model}), model.eval())
