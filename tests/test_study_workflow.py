"""The study workflow as users run it: dry runs of every config, validation before any job,
tables that agree with runs.csv, figures and the Snakemake report."""
import base64
import json
import re

import pandas as pd
import pytest
import yaml

from conftest import REPO, run_snakemake

NAN = re.compile(r"\bnan\b", re.IGNORECASE)

pytestmark = pytest.mark.integration
CONFIGS = ["config", "smoke", "paper-cifar10", "paper-imagenet", "gpu-fmnist", "leaderboard"]


def dry_run(snakemake_bin, tmp_path, configfile, *extra):
    """`snakemake -n` in tmp_path; a study that reuses another's folder (`reuse:`) finds the
    committed one there, as in the checkout."""
    reused = (yaml.safe_load(configfile.read_text()) or {}).get("reuse")
    if reused and not (tmp_path / reused).exists():
        (tmp_path / reused).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / reused).symlink_to(REPO / reused)
    return run_snakemake(snakemake_bin, tmp_path, REPO / "data", "--dry-run", "--printshellcmds",
                         *extra, configfile=configfile, timeout=600)


def readme_configs() -> dict[str, dict[str, str]]:
    """config/README.md's table of the configs: {file name: {column: cell}}."""
    lines = (REPO / "config" / "README.md").read_text().split("## The configs")[1].split("\n## ")[0].splitlines()
    table = [line for line in lines if line.startswith("| ")]
    header = [cell.strip() for cell in table[0].strip("|").split("|")]
    rows = [dict(zip(header, (cell.strip() for cell in line.strip("|").split("|")))) for line in table[1:]]
    return {row["file"].strip("`"): row for row in rows}


@pytest.mark.parametrize("name", CONFIGS)
def test_dry_run_succeeds(name, snakemake_bin, tmp_path):
    """Every config plans its jobs, as many as config/README.md says."""
    result = dry_run(snakemake_bin, tmp_path, REPO / "config" / f"{name}.yaml")
    assert result.returncode == 0, result.stderr[-3000:]
    total = re.search(r"^total\s+(\d+)", result.stdout, re.M)
    assert total and int(total.group(1)) > 0
    print(f"{name}: {total.group(1)} jobs")
    assert readme_configs()[f"{name}.yaml"]["jobs"] == total.group(1), "config/README.md states another job count"
    assert re.search(r"nnprune claims .* --scale '\{.*\"dataset\":", result.stdout)   # claims.md's limits


def test_config_readme_states_each_configs_epochs_budgets_and_seeds():
    """config/README.md's columns for each config/*.yaml, computed from the yaml: training epochs of
    the clean (and noisy) baselines, fine-tuning budgets, clean (and noisy) seeds."""
    from nnprune.plan.budgets import study_budgets
    from nnprune.plan.specs import TrainSpec

    rows = readme_configs()
    assert set(rows) == {path.name for path in (REPO / "config").glob("*.yaml")} == {f"{n}.yaml" for n in CONFIGS}
    for name, row in rows.items():
        config = yaml.safe_load((REPO / "config" / name).read_text())
        grid, epochs = config.get("grid") or {}, config["train"].get("epochs", TrainSpec(arch="mlp", out="").epochs)
        noisy = any(level > min(config["label_noise"]) for level in config["label_noise"])
        noise_epochs = (grid.get("noise_train") or {}).get("epochs", epochs)
        assert row["training epochs"] == f"{epochs}" + (f" (noisy: {noise_epochs})" if noise_epochs != epochs
                                                         else ""), name
        assert row["fine-tuning"] == ", ".join(f"`{b.text}`" for b in study_budgets(config["finetune"])), name
        noise_seeds = grid.get("noise_seeds", config["seeds"])
        assert row["seeds"] == f"{len(config['seeds'])}" + (f" (noisy: {len(noise_seeds)})" if noisy else ""), name


def test_paper_config_covers_every_arch_criterion_pruning(snakemake_bin, tmp_path):
    configfile = REPO / "config" / "paper-cifar10.yaml"
    config = yaml.safe_load(configfile.read_text())
    result = dry_run(snakemake_bin, tmp_path, configfile)
    assert result.returncode == 0, result.stderr[-3000:]
    from nnprune.plan.schemes import scheme_slug

    seen = set(re.findall(r"results/paper-cifar10/runs/[^_]+__([a-z0-9]+)__[^/]+/([a-z0-9-]+)_si\d+/"
                          r"([^/]+)/pruned/metrics\.json", result.stdout))
    wanted = {(arch, crit, scheme_slug(p)) for arch in config["archs"]
              for crit in config["criteria"] for p in config["pruning"]}
    assert wanted <= seen, sorted(wanted - seen)[:10]


def _write_config(tmp_path, **changes):
    config = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())
    config.update(changes)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_unknown_criterion_fails_before_any_job(snakemake_bin, tmp_path, fashion_root):
    configfile = _write_config(tmp_path, criteria=["nuclear", "energy-magic"])
    result = run_snakemake(snakemake_bin, tmp_path, fashion_root, "--cores", "1",
                           configfile=configfile, timeout=300)
    assert result.returncode != 0
    message = result.stderr
    assert "unknown criterion 'energy-magic'" in message
    assert "nuclear, nuclear-stacked, hrank" in message          # the allowed ones are named
    assert not (tmp_path / "results").exists()                    # no job ran


@pytest.mark.parametrize("changes, expected", [
    ({"learning_rate": 0.1}, "config key 'learning_rate' is not a known setting"),
    ({"archs": {"resnet9000": {}}}, "unknown architecture 'resnet9000'"),
    ({"pruning": ["uniform:1.5"]}, "uniform needs a number above 0 and below 1, got 1.5"),
    ({"pruning": ["rates:[0.5]*3"]}, "has 3 rates but"),
    ({"data_root": "/nonexistent/data"}, "config key 'data_root': the folder /nonexistent/data does not exist"),
    ({"finetune": {"budgets": ["0e"]}}, "budget '0e' is 0 epochs: a budget is at least 1"),
    ({"finetune": {"budgets": ["-2b"]}}, "budget '-2b' is -2 batches: a budget is at least 1"),
    ({"finetune": {"budgets": ["3x"]}}, "budget '3x' has unknown unit 'x'"),
    ({"finetune": {"budgets": ["3e", "30b", "3E"]}}, "finetune.budgets repeats 3e"),
    ({"finetune": {"budgets": ["3e"], "epochs": 2}}, "finetune sets both budgets and epochs"),
])
def test_bad_config_fails_before_any_job(changes, expected, snakemake_bin, tmp_path, fashion_root):
    configfile = _write_config(tmp_path, **changes)
    cmd_root = "/nonexistent/data" if "data_root" in changes else fashion_root
    result = run_snakemake(snakemake_bin, tmp_path, cmd_root, "--cores", "1",
                           configfile=configfile, timeout=300)
    assert result.returncode != 0
    assert expected in result.stderr, result.stderr[-2000:]
    assert not (tmp_path / "results").exists()


def test_main_label_noise_is_the_lowest_in_the_grid_and_the_tables(snakemake_bin, tmp_path):
    """label_noise listed high to low: the sparse grid sweeps the pruning levels at the lowest
    level, and the tables built from those runs take the same one as their main level."""
    from nnprune.analysis.aggregate import COLUMNS
    from nnprune.analysis.tables import build_tables
    from nnprune.plan.schemes import scheme_slug
    from nnprune.plan.studyconfig import main_label_noise

    grid = {"mode": "sparse", "main_score_images": 256, "main_pruning": "uniform:0.1"}
    configfile = _write_config(tmp_path, label_noise=[0.2, 0.0], grid=grid)
    result = dry_run(snakemake_bin, tmp_path, configfile)
    assert result.returncode == 0, result.stderr[-3000:]
    runs = set(re.findall(r"results/smoke/runs/[^/]+__ln([0-9.]+)__s\d+/([a-z0-9-]+)_si(\d+)/"
                          r"([^/]+)/pruned/metrics\.json", result.stdout))
    assert main_label_noise([0.2, 0.0]) == 0.0
    # macs:0.2 is not the main pruning level: only the pruning-level sweep runs it, at the main noise
    assert {float(noise) for noise, _, _, prune in runs if prune == "macs-0.2"} == {0.0}
    assert {float(noise) for noise, *_ in runs} == {0.0, 0.2}      # the label-noise sweep
    schemes = {scheme_slug(text): text for text in ["uniform:0.1", "macs:0.2"]}
    rows = []
    for noise, criterion, size, slug in sorted(runs, reverse=True):   # 0.2 rows first
        row = dict.fromkeys(COLUMNS, float("nan"))
        row.update(dataset="fashion-mnist", arch="resnet20", width=0.25, train_size=3000,
                   label_noise=float(noise), noise_kind="symmetric", seed=0, criterion=criterion,
                   score_images=int(size), pruning=schemes[slug], acc_base=90.0, acc_pruned=50.0,
                   acc_finetuned=80.0, macs_reduction=20.0, params_reduction=20.0)
        rows.append(row)
    frame = pd.DataFrame(rows, columns=COLUMNS)
    assert main_label_noise(frame.label_noise) == 0.0
    tables = build_tables(frame, pd.DataFrame(), "uniform:0.1", 256)
    by_pruning, _, _, caption = tables["by_pruning"]
    assert sorted(set(by_pruning.pruning)) == ["macs:0.2", "uniform:0.1"]
    assert len(by_pruning) == 2 * 4                                  # 4 criteria x 2 levels
    assert "label noise 0.0," in caption
    assert sorted(tables["by_label_noise"][0].label_noise.unique()) == [0.0, 0.2]


def test_default_grid_plans_the_stability_claims_in_the_papers_regime(snakemake_bin, tmp_path):
    """config/config.yaml as planned before the run: clean baselines on all training images with
    every seed, noisy ones of both kinds with grid.noise_seeds (at least 5 per kind, so that the
    label-noise seed check can run) on their own recipe (grid.noise_train_size); clean baselines
    pruned at both allocations, noisy ones at grid.noise_pruning; only grid.prune_criteria pruned;
    every clean run at the global allocation fine-tuned once per budget, every noisy one at
    finetune.noisy_budgets; the score_images sweep prunes grid.score_sweep_criteria from
    grid.score_sweep images (the data-size claim's accuracy reading) and fine-tunes them."""
    configfile = REPO / "config" / "config.yaml"
    config = yaml.safe_load(configfile.read_text())
    grid = config["grid"]
    result = dry_run(snakemake_bin, tmp_path, configfile)
    assert result.returncode == 0, result.stderr[-3000:]
    trained = set(re.findall(r"results/default/baselines/[^/]+__n(\w+)__ln([0-9.]+)-?(pairwise)?__s(\d+)/model\.pt",
                             result.stdout))
    clean = {(size, noise, kind, int(seed)) for size, noise, kind, seed in trained if float(noise) == 0}
    noisy = {(size, noise, kind or "symmetric", int(seed)) for size, noise, kind, seed in trained if float(noise) > 0}
    assert {seed for *_, seed in clean} == set(config["seeds"]) and len(clean) == len(config["seeds"]) >= 5
    assert {size for size, *_ in clean} == {"all"}                          # all training images
    assert noisy == {(str(grid["noise_train_size"]), f"{n}", k, s) for n in config["label_noise"] if n > 0
                     for k in config["noise_kind"] for s in grid["noise_seeds"]}
    assert len(noisy) == len(config["noise_kind"]) * len(grid["noise_seeds"]) == 10      # 5 per kind
    # the noise field keeps its kind ("0.4" symmetric, "0.4-pairwise"), so each noisy baseline is its own key
    runs = re.findall(r"results/default/runs/[^/]+__ln([0-9.]+(?:-pairwise)?)__s(\d+)/([a-z0-9-]+)_si(\d+)/([^/]+)/"
                      r"(pruned|finetuned-\w+)/metrics\.json", result.stdout)
    pruned = {r[:5] for r in runs if r[5] == "pruned"}
    tuned = {r[:5] + (r[5],) for r in runs if r[5] != "pruned"}
    assert {(noise, slug) for noise, _, _, _, slug in pruned} == {
        ("0.0", "macs-0.404"), ("0.0", "uniform-macs-0.404"), ("0.4", "macs-0.404"), ("0.4-pairwise", "macs-0.404")}
    assert {criterion for _, _, criterion, _, _ in pruned} == set(grid["prune_criteria"]) == {
        "nuclear", "taylor", "l1", "random"}
    sweep = {r for r in pruned if r[3] not in ("0", str(grid["main_score_images"]))}
    assert {(noise, criterion, size, slug) for noise, _, criterion, size, slug in sweep} == {
        ("0.0", criterion, str(size), "macs-0.404") for criterion in grid["score_sweep_criteria"]
        for size in grid["score_sweep"]}
    assert len(sweep) == len(config["seeds"]) * len(grid["score_sweep_criteria"]) * len(grid["score_sweep"])
    assert {r[4] for r in tuned} == {"macs-0.404"}
    clean_tuned = {r for r in tuned if r[0] == "0.0"}
    noisy_tuned = {r for r in tuned if r[0] != "0.0"}
    assert {r[5] for r in clean_tuned} == {f"finetuned-{b}" for b in config["finetune"]["budgets"]}
    assert {r[5] for r in noisy_tuned} == {f"finetuned-{b}" for b in config["finetune"]["noisy_budgets"]}
    assert len(clean_tuned) == (len(config["seeds"]) * (len(grid["prune_criteria"]) + len(grid["score_sweep_criteria"]))
                                * len(config["finetune"]["budgets"]))
    assert len(noisy_tuned) == len(noisy) * len(grid["prune_criteria"]) * len(config["finetune"]["noisy_budgets"])
    # hrank is scored (the data-size claim's stability) though no run prunes it
    assert re.search(r"results/default/scores/[^/]+__ln0\.0__s0/hrank_si32/scores\.pt", result.stdout)


TABLES = ["by_pruning", "by_score_images", "by_label_noise", "paper_comparison", "score_stability", "by_budget"]
FIGURES = ["acc_vs_macs", "acc_vs_score_images", "acc_vs_label_noise", "score_stability", "acc_vs_budget"]


DECIMALS = {"spearman": 3, "jaccard": 3, "macs_reduction": 1, "params_reduction": 1}   # any other metric: 2


def _expected_cell(row: pd.Series, metric: str, latex: bool) -> str:
    """A summary cell from the csv's mean, std and n: "a ± b", "a (n=1)" or a dash."""
    mean, std, n, digits = row[f"{metric}_mean"], row[f"{metric}_std"], row[f"{metric}_n"], DECIMALS.get(metric, 2)
    if pd.isna(mean):
        return "--" if latex else "–"
    if n > 1:
        return f"${mean:.{digits}f} \\pm {std:.{digits}f}$" if latex else f"{mean:.{digits}f} ± {std:.{digits}f}"
    return f"${mean:.{digits}f}$ (n=1)" if latex else f"{mean:.{digits}f} (n=1)"


def _cells(study, name: str) -> tuple[list[list[str]], list[list[str]]]:
    """The data rows of tables/{name}.md and tables/{name}.tex, as lists of cells."""
    md = (study / "tables" / f"{name}.md").read_text().splitlines()
    md_rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in md[4:] if line.startswith("|")]
    body = (study / "tables" / f"{name}.tex").read_text().split("\\midrule\n")[1].split("\\bottomrule")[0]
    tex_rows = [[c.strip() for c in line.removesuffix("\\\\").split(" & ")] for line in body.strip().splitlines()]
    return md_rows, tex_rows


def test_smoke_tables_show_the_csv_values(smoke_local):
    """Each .md and .tex row shows its .csv row: every summary cell is the csv's mean ± std at the
    metric's decimals (a dash when missing), every paper_comparison cell the csv's value."""
    study = smoke_local[0] / "results" / "smoke"
    checked = 0
    for name in TABLES:
        frame = pd.read_csv(study / "tables" / f"{name}.csv")
        md_rows, tex_rows = _cells(study, name)
        assert len(md_rows) == len(tex_rows) == len(frame) > 0, name
        metrics = [column.removesuffix("_mean") for column in frame.columns if column.endswith("_mean")]
        keys = len(frame.columns) - 3 * len(metrics)
        for (_, row), md_row, tex_row in zip(frame.iterrows(), md_rows, tex_rows):
            if metrics:
                assert md_row[keys:keys + len(metrics)] == [_expected_cell(row, m, False) for m in metrics], name
                assert tex_row[keys:keys + len(metrics)] == [_expected_cell(row, m, True) for m in metrics], name
                assert md_row[-1] == str(max(int(row[f"{m}_n"]) for m in metrics))
            else:
                text = pd.read_csv(study / "tables" / f"{name}.csv", dtype=str, keep_default_na=False)
                assert md_row == [value or "–" for value in text.iloc[row.name]], name
            checked += 1
    assert checked >= 20


# each figure and the table holding its data
FIGURE_TABLES = {"acc_vs_macs": "by_pruning", "acc_vs_score_images": "by_score_images",
                 "acc_vs_label_noise": "by_label_noise", "score_stability": "score_stability",
                 "acc_vs_budget": "by_budget"}


def test_smoke_tables_and_figures_exist(smoke_local):
    """Every table in its three forms; every figure as a PDF and a PNG that shows, in their colours,
    exactly the criteria of the table it is drawn from (at least 100 pixels of each colour)."""
    import matplotlib.colors
    import matplotlib.image
    import numpy as np

    from nnprune.analysis.style import criterion_color
    from nnprune.plan.names import CRITERION_SOURCES

    study = smoke_local[0] / "results" / "smoke"
    for name in TABLES:
        for ext in ("csv", "md", "tex"):
            assert (study / "tables" / f"{name}.{ext}").is_file(), name   # their contents: the test above
    assert set(FIGURES) == set(FIGURE_TABLES)
    for name, table in FIGURE_TABLES.items():
        assert (study / "figures" / f"{name}.pdf").read_bytes()[:5] == b"%PDF-", name
        pixels = matplotlib.image.imread(study / "figures" / f"{name}.png")[..., :3]
        shown = {criterion for criterion in CRITERION_SOURCES
                 if (np.abs(pixels - matplotlib.colors.to_rgb(criterion_color(criterion))).max(axis=2) < 0.03).sum()
                 >= 100}
        assert shown == set(pd.read_csv(study / "tables" / f"{table}.csv").criterion), name


def test_table_means_equal_means_recomputed_from_runs(smoke_local):
    study = smoke_local[0] / "results" / "smoke"
    config = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())
    from nnprune.analysis.aggregate import at_budget

    every_budget = pd.read_csv(study / "runs.csv")
    runs = at_budget(every_budget)        # the tables read each run at the study's largest budget
    assert len(every_budget) > len(runs) and set(at_budget(every_budget).budget.astype(str)) == {"0", "2e"}
    main_si, main_pruning = config["grid"]["main_score_images"], config["grid"]["main_pruning"]
    table = pd.read_csv(study / "tables" / "by_pruning.csv")
    checked = 0
    for row in table.itertuples():
        part = runs[(runs.criterion == row.criterion) & (runs.pruning == row.pruning)
                    & (runs.label_noise == 0.0) & runs.score_images.isin([0, main_si])]
        assert len(part) == row.acc_pruned_n
        assert part.acc_pruned.mean() == pytest.approx(row.acc_pruned_mean, abs=1e-9)
        assert part.macs_reduction.mean() == pytest.approx(row.macs_reduction_mean, abs=1e-9)
        checked += 1
    noise = pd.read_csv(study / "tables" / "by_label_noise.csv")
    for row in noise.itertuples():
        part = runs[(runs.criterion == row.criterion) & (runs.label_noise == row.label_noise)
                    & (runs.pruning == main_pruning) & runs.score_images.isin([0, main_si])]
        assert (part.acc_base - part.acc_finetuned).mean() == pytest.approx(row.drop_finetuned_mean)
        checked += 1
    assert checked >= 8
    budget = pd.read_csv(study / "tables" / "by_budget.csv")
    assert list(dict.fromkeys(budget.budget)) == ["raw (pruned)", "BN recalibrated", "5 batches", "2 epochs"]
    short = budget[budget.budget == "5 batches"].set_index("criterion").acc_mean
    tuned = every_budget[(every_budget.budget == "5b") & (every_budget.label_noise == 0.0)
                         & every_budget.score_images.isin([0, main_si])].groupby("criterion").acc_finetuned.mean()
    assert short.to_dict() == pytest.approx(tuned.to_dict())


def test_snakemake_report_is_self_contained(smoke_local, snakemake_bin, fashion_root):
    workdir = smoke_local[0]
    report = workdir / "results" / "smoke" / "report.html"
    result = run_snakemake(snakemake_bin, workdir, fashion_root, "--report", str(report))
    assert result.returncode == 0, result.stderr[-3000:]
    html = report.read_text(errors="replace")
    assert report.stat().st_size > 50_000
    for name in ("acc_vs_macs.png", "by_pruning.csv", "runs.csv"):
        assert name in html
    # every page of the report: each result's caption, and the text of each embedded table or note
    results = json.loads(re.search(r"^\s*var results = (\{.*\});?\s*$", html, re.M).group(1))
    texts = 0
    for path, result in results.items():
        assert not NAN.search(result["caption"]), (path, result["caption"])
        if result["mime_type"].startswith("text/"):
            text = base64.b64decode(result["data_uri"].split("base64,", 1)[1]).decode()
            assert not NAN.search(text), (path, NAN.search(text))
            texts += 1
    assert texts >= 8, sorted(results)


def _per_seed(values: dict, comparator: str) -> dict:
    """{seed: mean over the seed's matched units of nuclear - comparator}, from {(criterion, seed, unit): value}."""
    import numpy as np

    seeds = sorted({seed for _, seed, _ in values})
    out = {}
    for seed in seeds:
        units = [u for c, s, u in values if c == "nuclear" and s == seed and (comparator, seed, u) in values]
        if units:
            out[seed] = float(np.mean([values["nuclear", seed, u] - values[comparator, seed, u] for u in units]))
    return out


def _check_point(point: dict, per_seed: dict) -> None:
    import numpy as np
    from scipy import stats

    differences = np.array(list(per_seed.values()))
    assert point["pairs"] == len(differences), point
    assert point["mean_difference"] == pytest.approx(differences.mean(), abs=1e-6)
    if len(differences) > 1:
        low, high = stats.t.interval(0.95, len(differences) - 1, differences.mean(), stats.sem(differences))
        assert (point["ci_low"], point["ci_high"]) == pytest.approx((low, high), abs=1e-6)
    else:
        assert point["ci_low"] is None and point["verdict"] == "inconclusive"   # one seed: no interval


def test_claims_recomputed_from_raw_results(smoke_local):
    """Every claim's primary point, recomputed from the raw results (each toy job's toy.csv, the
    score files, the prune and fine-tune jobs' metrics.json), not from runs.csv or stability.csv,
    and compared with claims.json: number of seeds, mean difference, interval, comparator."""
    import json

    import torch
    from scipy.stats import spearmanr

    study = smoke_local[0] / "results" / "smoke"
    config = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())
    document = json.loads((study / "claims.json").read_text())
    claims = {c["name"]: c for c in document["claims"]}
    assert {"toy", "data_size", "label_noise", "cnn"} <= set(claims)
    primary = {}
    for name, claim in claims.items():
        assert claim["verdict"] in ("supported", "not supported", "equivalent", "inconclusive", "unstable")
        assert claim["holds_where"] and claim["seed_check"]["status"] in ("stable", "unstable", "not checkable")
        if claim["points"]:
            primary[name] = next(p for p in claim["points"] if p["primary"] and p["comparison"] == "best other")
    for name in ("toy", "data_size", "label_noise", "cnn"):
        assert (study / f"claims_forest_{name}.png").stat().st_size > 5000

    # toy: 100 - boundary change, global allocation, clean inputs; the config's 0.333 is not on the grid
    assert claims["toy"]["primary"]["fallback"] and primary["toy"]["axis_value"] == 0.25
    toy = pd.concat([pd.read_csv(study / "toy" / d / "toy.csv") for d in config["toy"]["datasets"]])
    toy = toy[(toy.allocation == "global") & (toy.input_noise == 0) & (toy.fraction == 0.25)]
    kept = {(r.criterion, r.seed, r.dataset): 100 - r.boundary_change for r in toy.itertuples()}
    means = toy.groupby("criterion").boundary_change.mean().drop(["nuclear", "nuclear-stacked"], errors="ignore")
    assert primary["toy"]["comparator"] == means.idxmin()                  # the best other criterion
    _check_point(primary["toy"], _per_seed(kept, primary["toy"]["comparator"]))

    # data size: Spearman of each layer's scores at 32 images with those at 256, clean baselines
    assert primary["data_size"]["axis_value"] == 32
    rhos = {}
    for base in sorted((study / "scores").iterdir()):
        if "__ln0.0__" not in base.name:
            continue
        seed = int(base.name.rsplit("__s", 1)[1])
        for criterion in ("nuclear", "taylor"):
            small = torch.load(base / f"{criterion}_si32" / "scores.pt", weights_only=True)["scores"]
            large = torch.load(base / f"{criterion}_si256" / "scores.pt", weights_only=True)["scores"]
            for layer in small:
                if small[layer].std() > 0 and large[layer].std() > 0:
                    rhos[criterion, seed, layer] = spearmanr(small[layer].numpy(), large[layer].numpy())[0]
    assert primary["data_size"]["comparator"] == "taylor"
    _check_point(primary["data_size"], _per_seed(rhos, "taylor"))
    nuclear = next(e for e in claims["data_size"]["per_criterion"]
                   if e["criterion"] == "nuclear" and e["axis_value"] == 32)
    assert nuclear["rows"] == sum(c == "nuclear" for c, _, _ in rhos)

    # label noise and CNN: from each prune job's metrics.json and its fine-tune's at the largest budget
    largest = config["finetune"]["budgets"][-1]
    runs = []
    for path in (study / "runs").glob("*/*/*/pruned/metrics.json"):
        record = json.loads(path.read_text())
        tuned = path.parent.parent / f"finetuned-{largest}" / "metrics.json"
        data, results = record["config"]["data"], record["results"]
        finetuned = json.loads(tuned.read_text())["results"]["acc_test"] if tuned.is_file() else None
        runs.append({"criterion": results["criterion"], "seed": data["seed"], "label_noise": data["label_noise"],
                     "pruning": record["config"]["pruning"], "score_images": results["score_images"],
                     "acc_base": results["base"]["acc"], "acc_finetuned": finetuned})
    runs = pd.DataFrame(runs)
    main = runs[(runs.pruning == config["grid"]["main_pruning"])
                & runs.score_images.isin([0, config["grid"]["main_score_images"]])]
    noisy = main[main.label_noise == primary["label_noise"]["axis_value"]]
    assert primary["label_noise"]["axis_value"] == max(config["label_noise"])     # the default primary level
    drop = {(r.criterion, r.seed, ""): r.acc_finetuned - r.acc_base for r in noisy.itertuples()}
    _check_point(primary["label_noise"], _per_seed(drop, primary["label_noise"]["comparator"]))
    clean = main[main.label_noise == 0.0]
    # the default primary level, at the largest fine-tuning budget
    assert primary["cnn"]["axis_value"] == [config["grid"]["main_pruning"], largest]
    accuracy = {(r.criterion, r.seed, ""): r.acc_finetuned for r in clean.itertuples()}
    others = clean[clean.criterion != "nuclear"].groupby("criterion").acc_finetuned.mean()
    assert primary["cnn"]["comparator"] == others.idxmax()
    _check_point(primary["cnn"], _per_seed(accuracy, primary["cnn"]["comparator"]))
