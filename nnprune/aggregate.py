"""All runs into one pandas frame (one row per pruned model): the only source of tables and plots."""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from . import paths
from .io import read_json

COLUMNS = ["dataset", "arch", "width", "train_size", "label_noise", "noise_kind", "seed",
           "criterion", "score_images", "pruning", "macs_base", "macs_pruned", "params_base",
           "params_pruned", "acc_base", "acc_pruned", "acc_pruned_bn", "acc_finetuned", "macs_reduction",
           "params_reduction", "latency_base_ms", "latency_pruned_ms", "seconds_prune",
           "seconds_finetune", "pruned_metrics"]


def run_row(pruned_metrics: Path, study_dir: Path | None = None) -> dict:
    """One row from a run's pruned/metrics.json and, when present, the sibling finetuned/.
    `pruned_metrics` in the row is relative to `study_dir` when given, so runs.csv traces each
    row to its metrics.json wherever the study is run or moved."""
    pruned = read_json(pruned_metrics)
    config, results = pruned["config"], pruned["results"]
    data = config["data"]
    finetuned_path = paths.finetuned_metrics(pruned_metrics)
    finetuned = read_json(finetuned_path) if finetuned_path.exists() else None
    base, after = results["base"], results["pruned"]
    return {
        "dataset": data["dataset"], "arch": config["arch"], "width": config["build_args"]["width"],
        "train_size": data["train_size"], "label_noise": data["label_noise"],
        "noise_kind": data["noise_kind"], "seed": data["seed"], "criterion": results["criterion"],
        "score_images": results["score_images"], "pruning": config["pruning"],
        "macs_base": base["macs"], "macs_pruned": after["macs"], "params_base": base["params"],
        "params_pruned": after["params"], "acc_base": base["acc"], "acc_pruned": after["acc"],
        "acc_pruned_bn": after.get("acc_bn_recalibrated", float("nan")),
        "acc_finetuned": finetuned["results"]["acc_test"] if finetuned else float("nan"),
        "macs_reduction": 100.0 * (1 - after["macs"] / base["macs"]),
        "params_reduction": 100.0 * (1 - after["params"] / base["params"]),
        "latency_base_ms": base.get("latency_ms", float("nan")),
        "latency_pruned_ms": after.get("latency_ms", float("nan")),
        "seconds_prune": pruned["provenance"]["seconds"],
        "seconds_finetune": finetuned["provenance"]["seconds"] if finetuned else float("nan"),
        "pruned_metrics": (Path(os.path.relpath(pruned_metrics, study_dir)).as_posix()
                           if study_dir is not None else str(pruned_metrics)),
    }


def collect_runs(paths: list[Path], study_dir: Path | None = None) -> pd.DataFrame:
    frame = pd.DataFrame([run_row(p, study_dir) for p in paths], columns=COLUMNS)
    keys = ["dataset", "arch", "pruning", "criterion", "score_images", "label_noise", "noise_kind", "seed"]
    return frame.sort_values(keys, kind="stable").reset_index(drop=True)


def score_stability(score_paths: list[Path], keep_fraction: float = 0.5) -> pd.DataFrame:
    """Per (baseline, criterion, score_images, layer): Spearman correlation of the layer's channel
    scores with those from the largest score_images of the same baseline and criterion, and the
    Jaccard overlap of the kept channels (top `keep_fraction` of each layer by score).
    Spearman is NaN where a layer's scores are constant (e.g. every map full rank)."""
    import torch
    from scipy.stats import spearmanr

    from .io import load_torch

    entries, baselines = [], {}
    for path in score_paths:
        record = load_torch(path, "scores file")
        if record["score_images"] == 0:
            continue
        # Which baseline: from the metrics.json `score` wrote beside the scores, not from the path.
        config = read_json(path.parent / "metrics.json")["config"]
        data = config["data"]
        base = paths.baseline_id(data["dataset"], config["arch"], data["train_size"], data["label_noise"],
                                 data["seed"], data.get("noise_kind", "symmetric"))
        baselines[base] = {"label_noise": data["label_noise"], "noise_kind": data.get("noise_kind", "symmetric"),
                           "seed": data["seed"]}
        entries.append((base, record["criterion"], record["score_images"], record))
    rows = []
    largest: dict[tuple[str, str], tuple[int, dict]] = {}
    for base, criterion, size, record in entries:
        if (base, criterion) not in largest or size > largest[(base, criterion)][0]:
            largest[(base, criterion)] = (size, record)
    for base, criterion, size, record in entries:
        reference_size, reference = largest[(base, criterion)]
        for layer, scores in record["scores"].items():
            ref = reference["scores"][layer]
            keep = max(1, int(round(keep_fraction * scores.numel())))
            kept = set(torch.argsort(scores, descending=True, stable=True)[:keep].tolist())
            kept_ref = set(torch.argsort(ref, descending=True, stable=True)[:keep].tolist())
            constant = bool(scores.std() == 0 or ref.std() == 0)
            rho = float("nan") if constant else float(spearmanr(scores.numpy(), ref.numpy())[0])
            rows.append({"baseline": base, "criterion": criterion, "score_images": size,
                         "reference_score_images": reference_size, "layer": layer,
                         "spearman": rho, "jaccard": len(kept & kept_ref) / len(kept | kept_ref)})
    columns = ["baseline", "criterion", "score_images", "reference_score_images", "layer",
               "spearman", "jaccard"]
    frame = pd.DataFrame(rows, columns=columns)
    if len(frame):
        frame["label_noise"] = frame.baseline.map(lambda base: baselines[base]["label_noise"]).astype(float)
        frame["noise_kind"] = frame.baseline.map(lambda base: baselines[base]["noise_kind"])
        frame["seed"] = frame.baseline.map(lambda base: baselines[base]["seed"]).astype(int)
    return frame.sort_values(["criterion", "score_images", "baseline", "layer"], kind="stable")
