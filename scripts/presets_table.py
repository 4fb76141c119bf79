"""Regenerate the table in docs/presets.md: MACs and params of every architecture before and
after `preset:hrank`, as this project counts them (physical removal through torch-pruning,
fvcore, conv + linear MACs, eval mode, batch 1), the MACs reduction counted HRank's way (each
layer loses only its own output channels' share, rate by rate), and HRank's published reductions.

Only the block between the two marker lines of docs/presets.md is rewritten (atomically); the
prose around it is edited by hand. Usage: python scripts/presets_table.py [path/to/presets.md]
"""
from __future__ import annotations

import sys
from pathlib import Path

from nnprune.engine.metrics import count_macs, count_params, layer_macs
from nnprune.files import write_text
from nnprune.models import build
from nnprune.plan.schemes import HRANK_PRESETS, parse_rates, parse_scheme
from nnprune.pruning.allocation import allocate, layer_rates
from nnprune.pruning.layout import model_layout
from nnprune.pruning.removal import apply_removal
from nnprune.pruning.scoring import score_model

DOC = Path(__file__).resolve().parents[1] / "docs" / "presets.md"
START, END = "<!-- presets-table:start -->", "<!-- presets-table:end -->"

# arch: (num_classes, input shape); docs/background.md §5
SETTINGS = {
    "vgg16": (10, (3, 32, 32)),
    "resnet56": (10, (3, 32, 32)),
    "resnet110": (10, (3, 32, 32)),
    "densenet40": (10, (3, 32, 32)),
    "googlenet": (10, (3, 32, 32)),
    "resnet50": (1000, (3, 224, 224)),
}
# arch: (FLOPs removed %, params removed %) as HRank published them (docs/background.md §3);
# that section gives no reductions for ResNet-50 with this string, only its accuracy.
HRANK_PUBLISHED = {
    "vgg16": (65.3, 82.1),
    "resnet56": (50.0, 42.4),
    "resnet110": (37.9, 38.7),
    "densenet40": (40.8, 36.5),
    "googlenet": (70.4, 69.8),
}


def preset_counts(arch: str) -> dict[str, object]:
    """MACs and params before and after `preset:hrank` on a fresh `arch`, and the string length.
    The counts depend only on how many channels each group loses, so l1 scores do."""
    num_classes, shape = SETTINGS[arch]
    model = build(arch, num_classes=num_classes).eval()
    layout = model_layout(model, shape)
    scores, _ = score_model(model, layout.layers, "l1")
    scheme = parse_scheme("preset:hrank", arch)
    removed = allocate(layout, scores, scheme)
    before = count_macs(model, shape), count_params(model)
    # HRank's way: each layer loses only its own output channels' share of its MACs, read from
    # the string position by position (no coupling, no input channels removed downstream).
    per_layer_macs = layer_macs(model, shape)
    rates = layer_rates(layout, scheme.value, arch)
    outputs_only = sum(per_layer_macs[name] * rates[name] for name in layout.layers) / before[0]
    apply_removal(model, shape, removed)
    after = count_macs(model, shape), count_params(model)
    return {"arch": arch, "shape": shape, "rates": len(parse_rates(HRANK_PRESETS[arch])),
            "layers": len(layout.layers), "groups": len(layout.groups),
            "macs": (before[0], after[0]), "params": (before[1], after[1]),
            "outputs_only": 100 * outputs_only}


def _millions(value: float) -> str:
    return f"{value / 1e6:,.2f}M"


def _cut(pair: tuple[int, int]) -> str:
    return f"{100 * (1 - pair[1] / pair[0]):.1f}"


def render(rows: list[dict[str, object]]) -> str:
    """The markdown table, one row per architecture."""
    lines = ["| arch | input | rates / prunable convs / groups | MACs before | MACs after | MACs -% "
             "| params before | params after | params -% | MACs -%, outputs only "
             "| HRank's counting: FLOPs -% | HRank's counting: params -% |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        published = HRANK_PUBLISHED.get(row["arch"])
        hrank = (f"{published[0]:.1f} | {published[1]:.1f}" if published else "n/a | n/a")
        shape = "x".join(str(s) for s in row["shape"])
        lines.append(f"| {row['arch']} | {shape} | {row['rates']} / {row['layers']} / {row['groups']} "
                     f"| {_millions(row['macs'][0])} | {_millions(row['macs'][1])} | {_cut(row['macs'])} "
                     f"| {_millions(row['params'][0])} | {_millions(row['params'][1])} | {_cut(row['params'])} "
                     f"| {row['outputs_only']:.1f} | {hrank} |")
    return "\n".join(lines)


def main(path: Path = DOC) -> None:
    text = path.read_text(encoding="utf-8")
    if START not in text or END not in text:
        raise SystemExit(f"{path} lacks the marker lines {START} and {END}")
    table = render([preset_counts(arch) for arch in SETTINGS])
    head, rest = text.split(START, 1)
    tail = rest.split(END, 1)[1]
    write_text(path, f"{head}{START}\n{table}\n{END}{tail}")
    print(table)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else DOC)
