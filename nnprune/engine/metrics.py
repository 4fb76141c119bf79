"""Model cost in the papers' convention, and accuracy.

MACs: fvcore counts one fused multiply-add as one "flop", so its counts are MACs. Only
convolution and linear (matmul-type) operators are summed; batch norm, pooling and element-wise
ops are left out, as the pruning papers do (docs/background.md §5). Counted in eval mode, batch 1,
on the physically pruned model (masked zeros would still count).
"""
from __future__ import annotations

import time
import warnings
from collections.abc import Callable

import torch
from torch import nn

from nnprune.models.mode import in_mode

MATMUL_OPERATORS = ("conv", "linear", "addmm", "matmul", "bmm", "einsum")


def _fvcore():
    # fvcore's package import scripts a focal loss with the deprecated torch.jit.script.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        import fvcore.nn
    return fvcore.nn


def _analysis(model: nn.Module, input_shape: tuple[int, ...]):
    FlopCountAnalysis = _fvcore().FlopCountAnalysis

    device = next(model.parameters()).device
    with in_mode(model):
        analysis = FlopCountAnalysis(model, torch.zeros(1, *input_shape, device=device))
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        analysis.tracer_warnings("none")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            analysis.total()  # runs the trace once; later queries reuse it
    return analysis


def _total_macs(analysis) -> int:
    return int(sum(count for op, count in analysis.by_operator().items() if op in MATMUL_OPERATORS))


def _layer_macs(model: nn.Module, analysis) -> dict[str, float]:
    by_module = analysis.by_module()
    return {name: float(by_module.get(name, 0)) for name, module in model.named_modules()
            if isinstance(module, (nn.Conv2d, nn.Linear))}


def count_macs(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Conv + linear MACs for one input of shape `input_shape` ([C, H, W])."""
    return _total_macs(_analysis(model, input_shape))


def layer_macs(model: nn.Module, input_shape: tuple[int, ...]) -> dict[str, float]:
    """MACs of each Conv2d and Linear module, by module name."""
    return _layer_macs(model, _analysis(model, input_shape))


def model_cost(model: nn.Module, input_shape: tuple[int, ...]) -> dict:
    """{"macs": `count_macs`, "params": `count_params`, "layer_macs": `layer_macs`} from one
    trace: what `train` stores with a baseline so that its prune jobs need not count again."""
    analysis = _analysis(model, input_shape)
    return {"macs": _total_macs(analysis), "params": count_params(model),
            "layer_macs": _layer_macs(model, analysis)}


def count_params(model: nn.Module) -> int:
    """Number of parameters (fvcore's parameter_count; buffers are not parameters)."""
    return int(_fvcore().parameter_count(model)[""])


class _ChannelsLastInputs(nn.Module):
    """Feeds image batches to a channels_last `model` in channels_last (other inputs as they are)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        if inputs.dim() == 4:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        return self.model(inputs)


@torch.no_grad()
def inference_model(model: nn.Module) -> nn.Module:
    """An eval-mode copy of `model` for fast CPU inference: every BatchNorm that follows a conv
    folded into it (torch.fx's `fuse`; a BN before a conv, as in DenseNet, stays), weights in
    channels_last and image inputs converted to channels_last. Logits equal the module's up to
    float rounding (~1e-6 relative, checked in tests/test_performance.py). On the CPU this
    evaluates the narrow CNNs of the default study about 1.3x faster (benchmarks/RESULTS.md).
    A model torch.fx cannot trace is returned as is (in its own mode: callers set eval)."""
    from torch.fx.experimental.optimization import fuse

    with in_mode(model):
        try:
            fast = fuse(model)
        except Exception:  # not symbolically traceable: evaluate the module itself
            return model
    return _ChannelsLastInputs(fast.to(memory_format=torch.channels_last)).eval()


def eval_batch_size(device: torch.device | str) -> int:
    """Evaluation batch: 128 on the CPU (larger batches of narrow CNNs fall out of cache: 512
    was 1.2-1.35x slower, benchmarks/RESULTS.md), 1024 on a GPU (fewer, fuller launches)."""
    return 1024 if torch.device(device).type == "cuda" else 128


@torch.no_grad()
def accuracy(model: nn.Module, batches, fast: bool = True, amp: bool = False) -> float:
    """Top-1 accuracy in % over an iterable of (inputs, labels). With `fast` (default) a CPU model
    is evaluated through `inference_model` (BN folded, channels_last); with `amp` a CUDA model
    runs under autocast (float16). The model's weights and mode are left as they were. Correct
    predictions are counted on the device and read once, at the end."""
    device = next(model.parameters()).device
    correct = torch.zeros((), dtype=torch.long, device=device)
    total = 0
    with in_mode(model):
        runner = inference_model(model) if fast and device.type == "cpu" else model
        with torch.autocast("cuda", dtype=torch.float16, enabled=amp and device.type == "cuda"):
            for inputs, labels in batches:
                correct += (runner(inputs).argmax(dim=1) == labels).sum()
                total += labels.numel()
    return 100.0 * correct.item() / max(total, 1)


def _cuda_graph_of(run: Callable[[], object]) -> Callable[[], object]:
    """`run` captured as a CUDA graph (replaying it launches the whole forward pass at once, so
    kernel-launch overhead is out of the timing); `run` itself when capture fails (a model
    that syncs with the host or changes shape cannot be captured)."""
    try:
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):   # warm up off the capture stream, as capture requires
            for _ in range(2):
                run()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            run()
        return graph.replay
    except Exception:  # noqa: BLE001 - any capture failure: time the eager forward instead
        torch.cuda.synchronize()
        return run


@torch.no_grad()
def measure_speed(model: nn.Module, input_shape: tuple[int, ...], batch_size: int,
                  repeats: int = 20, warmup: int = 3, amp: bool = True,
                  cuda_graph: bool = True) -> dict:
    """Latency and throughput of the eval-mode forward pass on random inputs of
    [batch_size, *input_shape], on the model's device.

    CPU: median wall time over `repeats` passes after `warmup`. CUDA: the forward pass under
    autocast (float16, with `amp`), captured as a CUDA graph when the model allows it (launch
    overhead out), timed per pass with CUDA events after `warmup` passes, median. Returns
    {"latency_ms": median ms per pass, "images_per_second": batch_size / latency,
     "batch_size", "method": how it was timed}."""
    device = next(model.parameters()).device
    inputs = torch.randn(batch_size, *input_shape, device=device)
    with in_mode(model):
        if device.type == "cuda":
            def run():
                # no autocast weight cache: a cached cast would be made outside the captured graph
                with torch.autocast("cuda", dtype=torch.float16, enabled=amp, cache_enabled=False):
                    return model(inputs)
            call = _cuda_graph_of(run) if cuda_graph else run
            method = "cuda events" + (", cuda graph" if call is not run else "") + (", fp16" if amp else "")
            for _ in range(warmup):
                call()
            starts = [torch.cuda.Event(enable_timing=True) for _ in range(repeats)]
            ends = [torch.cuda.Event(enable_timing=True) for _ in range(repeats)]
            for start, end in zip(starts, ends):
                start.record()
                call()
                end.record()
            torch.cuda.synchronize(device)
            timings = [start.elapsed_time(end) for start, end in zip(starts, ends)]
        else:
            method = "wall clock"
            timings = []
            for step in range(warmup + repeats):
                start = time.perf_counter()
                model(inputs)
                if step >= warmup:
                    timings.append((time.perf_counter() - start) * 1000.0)
    median = float(torch.tensor(timings).median())
    return {"latency_ms": median, "images_per_second": batch_size * 1000.0 / median,
            "batch_size": batch_size, "method": method}


def latency_ms(model: nn.Module, input_shape: tuple[int, ...], batch_size: int,
               repeats: int = 20, warmup: int = 3) -> float:
    """Median ms of one forward pass (`measure_speed`'s latency)."""
    return measure_speed(model, input_shape, batch_size, repeats, warmup)["latency_ms"]


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, batches, images: int) -> int:
    """Re-estimate BatchNorm running statistics on up to `images` inputs (labels unused, no
    weight changes), as a cumulative average. Returns the number of images used."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in norms]
    for module in norms:
        module.reset_running_stats()
        module.momentum = None
    used = 0
    try:
        with in_mode(model, training=True):
            for inputs, _ in batches:
                if used >= images:
                    break
                inputs = inputs[: images - used]
                model(inputs)
                used += inputs.shape[0]
    finally:
        for module, momentum in zip(norms, saved):
            module.momentum = momentum
    return used
