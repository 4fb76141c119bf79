"""What the workflow checks when execution starts, before any job (its `onstart`): the dataset, the
outside criteria and models, the reused study's model files, and the cuts. These need the data or
torch, so they are not run at parse time: `snakemake -n` works on a machine without either."""
from __future__ import annotations

from typing import Any

from nnprune.errors import UserError
from nnprune.plan.grid import Plan
from nnprune.plan.studyconfig import check_dataset, entry_of

# Two pruning strings whose measured MACs cuts lie closer than this (percentage points) would be
# one point of the leaderboard's cut axis twice.
SAME_CUT_PP = 0.5


def check_before_jobs(config: dict[str, Any], plan: Plan) -> None:
    """Every check of this module, in order; the first failure is a UserError (two lines)."""
    check_dataset(config)
    outside = [r.entry for r in [*plan.criteria.values(), *plan.toy_criteria.values()] if r is not None]
    if outside or any(r is not None for r in plan.archs.values()):
        from nnprune.pipeline.steps import check_outside

        archs = {entry_of(name, plan.archs): options for name, options in zip(plan.archs, config["archs"].values())}
        check_outside(list(dict.fromkeys(outside)), archs, config["dataset"])
    if plan.source:
        from nnprune.plan.reuse import check_present

        check_present(plan)
    if len(plan.prunings) > 1:
        check_cuts(config, plan)


def measured_cuts(arch: str, options: dict, dataset: str, prunings: list[str]) -> dict[str, float]:
    """The MACs cut (%) each pruning string gives `arch` for `dataset`'s images, measured by removing
    the channels on a freshly built model with seeded random scores (a global allocation's cut does
    not depend on the scores beyond its rounding). A cut the model cannot reach is a UserError."""
    import copy

    import torch

    from nnprune import data as data_module
    from nnprune.engine.metrics import count_macs, model_cost
    from nnprune.models import build
    from nnprune.plan.schemes import parse_scheme
    from nnprune.pruning.allocation import allocate, build_macs_model
    from nnprune.pruning.layout import layout_and_graph
    from nnprune.pruning.removal import apply_removal

    shape = data_module.dataset_spec(dataset)
    input_shape = (shape.channels, shape.image_size, shape.image_size)
    model = build(arch, num_classes=shape.num_classes, in_channels=shape.channels, **(options or {})).eval()
    layout, graph = layout_and_graph(model, input_shape)
    modules = dict(model.named_modules())
    generator = torch.Generator().manual_seed(0)
    scores = {n: torch.rand(int(modules[n].weight.shape[0]), generator=generator) for n in layout.layers}
    cost = model_cost(model, input_shape)
    cuts = {}
    for text in prunings:
        scheme = parse_scheme(text, arch)
        macs_model = (build_macs_model(model, input_shape, layout, cost["layer_macs"], graph)
                      if scheme.kind in ("macs", "uniform-macs") else None)
        try:
            removed = allocate(layout, scores, scheme, macs_model)
        except UserError as error:
            raise UserError(f"pruning {text!r} for {arch}: {error.problem}", error.fix) from None
        pruned = copy.deepcopy(model)
        apply_removal(pruned, input_shape, removed)
        cuts[text] = 100.0 * (1 - count_macs(pruned, input_shape) / cost["macs"])
    return cuts


def check_cuts(config: dict[str, Any], plan: Plan) -> None:
    """Each pruning string reachable by each architecture, and no two of them at the same measured
    cut (within SAME_CUT_PP)."""
    for arch, options in config["archs"].items():
        if plan.archs.get(arch) is not None:
            continue                        # an outside model: its cuts are measured by its prune jobs
        cuts = measured_cuts(arch, options, config["dataset"], list(plan.prunings.values()))
        ordered = sorted(cuts.items(), key=lambda item: item[1])
        for (first, a), (second, b) in zip(ordered, ordered[1:]):
            if b - a < SAME_CUT_PP:
                raise UserError(f"pruning: {first!r} and {second!r} give {arch} the same measured MACs cut "
                                f"({a:.1f}% and {b:.1f}%)", "remove one of them, or move one cut further away")
