"""The toy decision-boundary experiment (docs/background.md §7): 2-D data, an MLP, every
criterion, global pruning of hidden units without fine-tuning.

For an MLP, a hidden unit's "feature map" is its activation (the ReLU output) on each scoring
sample, a 1 x 1 map. Its nuclear norm is |activation|, so `nuclear` reduces to the mean absolute
activation over the scoring samples (an L1 norm / N); `nuclear-stacked` to the L2 norm of the
activations over the samples / N; `hrank` (rank of a 1 x 1 map: 1 if non-zero) and `apoz`
both to the fraction of samples on which the unit is active.

Units are removed globally: each layer's scores are divided by that layer's mean score, and the
lowest `fraction` of all hidden units go (every layer keeps at least one). This is the claim's
setting and the authors' global scheme (L1 normalisation per layer ranks the same when layers
have equal widths). As a secondary analysis, `per-layer` removes the same fraction from every
layer. A pruned MLP is
evaluated by selecting the kept rows and columns of its weight matrices, which is exactly what
physical removal does to an MLP (a test checks it against torch-pruning).
"""
from __future__ import annotations

import math

import pandas as pd
import torch
from torch import nn

from nnprune.models import build
from nnprune.plan.names import DEFAULT_FOCUS, TOY_DATASET_NAMES, check_registered
from nnprune.plan.specs import ToySpec
from nnprune.pruning.allocation import allocate_channels
from nnprune.pruning.criteria import resolve
from nnprune.pruning.layout import Layout, model_layout
from nnprune.pruning.scoring import score_model


# ---------------------------------------------------------------- data
def make_moons(count: int, noise: float, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Two interleaving half circles with Gaussian noise."""
    half = count // 2
    angle_a = torch.rand(half, generator=generator) * math.pi
    angle_b = torch.rand(count - half, generator=generator) * math.pi
    upper = torch.stack([torch.cos(angle_a), torch.sin(angle_a)], 1)
    lower = torch.stack([1 - torch.cos(angle_b), 0.5 - torch.sin(angle_b)], 1)
    points = torch.cat([upper, lower]) + noise * torch.randn(count, 2, generator=generator)
    return points, torch.cat([torch.zeros(half), torch.ones(count - half)]).long()


def make_circles(count: int, noise: float, factor: float,
                 generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """An outer circle (class 0) around an inner circle of radius `factor` (class 1)."""
    half = count // 2
    angle = torch.rand(count, generator=generator) * 2 * math.pi
    radius = torch.cat([torch.ones(half), torch.full((count - half,), factor)])
    points = torch.stack([radius * torch.cos(angle), radius * torch.sin(angle)], 1)
    points = points + noise * torch.randn(count, 2, generator=generator)
    return points, torch.cat([torch.zeros(half), torch.ones(count - half)]).long()


def make_spiral(count: int, classes: int, noise: float,
                generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """`classes` interleaved spiral arms; angular noise `noise` (radians x 1)."""
    labels = torch.arange(count) % classes
    radius = torch.rand(count, generator=generator) * 0.95 + 0.05
    angle = radius * 3.5 + labels * (2 * math.pi / classes) + noise * torch.randn(count, generator=generator)
    return torch.stack([radius * torch.sin(angle), radius * torch.cos(angle)], 1), labels


TOY_DATASETS = {
    "moons": (lambda n, g: make_moons(n, 0.1, g), 2),
    "circles": (lambda n, g: make_circles(n, 0.1, 0.3, g), 2),
    "spiral": (lambda n, g: make_spiral(n, 4, 0.2, g), 4),
}
check_registered("toy dataset", set(TOY_DATASETS), set(TOY_DATASET_NAMES))


def train_mlp(points: torch.Tensor, labels: torch.Tensor, classes: int, config: ToySpec,
              seed: int) -> nn.Module:
    """Adam on cross-entropy; returns the model in eval mode."""
    torch.manual_seed(seed)
    model = build("mlp", num_classes=classes, in_channels=2, width=config.width)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(config.steps):
        index = torch.randint(0, len(labels), (config.batch_size,), generator=generator)
        loss = nn.functional.cross_entropy(model(points[index]), labels[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return model.eval()


def reference_samples(points: torch.Tensor, labels: torch.Tensor, per_class: int,
                      generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    chosen = []
    for c in labels.unique():
        members = (labels == c).nonzero().flatten()
        chosen.append(members[torch.randperm(len(members), generator=generator)[:per_class]])
    index = torch.cat(chosen)
    return points[index], labels[index]


def global_keep(layout: Layout, scores: dict[str, torch.Tensor],
                fraction: float) -> dict[str, torch.Tensor]:
    """Kept unit indices per hidden layer after removing `fraction` of all hidden units, ranked
    by score / (mean score of the unit's layer): `pruning.allocate_channels`, the ranking that
    `macs:` pruning uses."""
    removed = allocate_channels(layout, scores, fraction)
    keep = {}
    for group in layout.groups:
        gone = set(removed[group.key])
        kept = torch.tensor([i for i in range(group.channels) if i not in gone])
        keep.update({member: kept for member in group.members})
    return keep


def layer_keep(layout, scores: dict[str, torch.Tensor], fraction: float) -> dict[str, torch.Tensor]:
    """Kept unit indices when every hidden layer loses the same `fraction` of its own units."""
    keep = {}
    for layer in layout.layers:
        count = scores[layer].numel()
        removed = min(int(round(fraction * count)), count - 1)
        order = torch.sort(scores[layer].double(), stable=True).indices
        keep[layer] = order[removed:].sort().values
    return keep


ALLOCATIONS = {"global": global_keep, "per-layer": layer_keep}


def pruned_forward(model: nn.Module, keep: dict[str, torch.Tensor] | None):
    """A function computing the MLP's logits with only the kept hidden units."""
    linears = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    weights, previous = [], None
    for name, linear in linears:
        weight, bias = linear.weight.detach(), linear.bias.detach()
        rows = keep.get(name) if keep else None
        if rows is not None:
            weight, bias = weight[rows], bias[rows]
        if previous is not None:
            weight = weight[:, previous]
        weights.append((weight, bias))
        previous = rows

    @torch.no_grad()
    def forward(x: torch.Tensor) -> torch.Tensor:
        for i, (weight, bias) in enumerate(weights):
            x = x @ weight.T + bias
            if i < len(weights) - 1:
                x = torch.relu(x)
        return x
    return forward


def run_dataset(name: str, config: ToySpec) -> tuple[pd.DataFrame, dict]:
    """All seeds of one toy dataset. Returns (rows, boundary predictions of the first seed)."""
    make, classes = TOY_DATASETS[name]
    rows, boundaries = [], {}
    seeds = config.seed_list
    criteria = {found.name: found for found in map(resolve, config.criteria)}   # outside ones imported here
    for seed in seeds:
        generator = torch.Generator().manual_seed(seed)
        train_x, train_y = make(config.train_points, generator)
        test_x, test_y = make(config.test_points, generator)
        model = train_mlp(train_x, train_y, classes, config, seed)
        layout = model_layout(model, (2,))
        low, high = train_x.min(0).values - 0.5, train_x.max(0).values + 0.5
        axis_x = torch.linspace(low[0], high[0], config.grid)
        axis_y = torch.linspace(low[1], high[1], config.grid)
        grid = torch.stack(torch.meshgrid(axis_x, axis_y, indexing="xy"), -1).reshape(-1, 2)
        noisy = {0.0: test_x}
        for sigma in config.input_noise:
            noisy[sigma] = test_x + sigma * torch.randn(test_x.shape, generator=generator)
        base = pruned_forward(model, None)
        base_grid = base(grid).argmax(1)
        base_pred = {s: base(x).argmax(1) for s, x in noisy.items()}
        ref_x, ref_y = reference_samples(train_x, train_y, config.score_per_class, generator)
        if seed == seeds[0]:
            boundaries = {"grid_x": axis_x, "grid_y": axis_y, "train_x": train_x, "train_y": train_y,
                          "unpruned": base_grid.reshape(config.grid, config.grid), "pruned": {}}
        for criterion in criteria:
            # MLP units: the "feature map" is the activation, i.e. the ReLU output.
            scores, _ = score_model(model, layout.layers, criteria[criterion], batches=[(ref_x, ref_y)],
                                    limit=len(ref_y), seed=seed, feature_point="relu")
            for allocation, fraction in [(a, f) for a in config.allocations for f in config.fractions]:
                keep = ALLOCATIONS[allocation](layout, scores, fraction)
                forward = pruned_forward(model, keep)
                grid_pred = forward(grid).argmax(1)
                change = (grid_pred != base_grid).float().mean().item()
                for sigma, inputs in noisy.items():
                    pred = forward(inputs).argmax(1)
                    rows.append({
                        "dataset": name, "seed": seed, "criterion": criterion, "allocation": allocation,
                        "fraction": fraction, "input_noise": sigma,
                        "units_kept": int(sum(len(k) for k in keep.values())),
                        "acc_base": 100.0 * (base_pred[sigma] == test_y).float().mean().item(),
                        "acc_pruned": 100.0 * (pred == test_y).float().mean().item(),
                        "prediction_change": 100.0 * (pred != base_pred[sigma]).float().mean().item(),
                        "boundary_change": 100.0 * change})
                if seed == seeds[0] and allocation == config.allocations[0]:
                    boundaries["pruned"][f"{criterion}@{fraction}"] = grid_pred.reshape(config.grid, config.grid)
    return pd.DataFrame(rows), boundaries


def plot_boundaries(boundaries: dict, dataset: str, criteria: list[str], fractions: list[float]):
    """Rows: criteria; columns: unpruned, then each pruning fraction (first seed)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = 1 + len(fractions)
    fig, axes = plt.subplots(len(criteria), columns, figsize=(1.9 * columns, 1.9 * len(criteria)),
                             squeeze=False)
    extent = [float(boundaries["grid_x"][0]), float(boundaries["grid_x"][-1]),
              float(boundaries["grid_y"][0]), float(boundaries["grid_y"][-1])]
    for row, criterion in enumerate(criteria):
        panels = [("unpruned", boundaries["unpruned"])] + [
            (f"{fraction:.0%} removed", boundaries["pruned"][f"{criterion}@{fraction}"])
            for fraction in fractions]
        for col, (title, prediction) in enumerate(panels):
            ax = axes[row][col]
            # One colormap for regions and points, so a region's colour names its class.
            ax.imshow(prediction.numpy(), origin="lower", extent=extent, aspect="auto", cmap="tab10",
                      vmin=0, vmax=9, alpha=0.35, interpolation="nearest")
            ax.scatter(boundaries["train_x"][:200, 0], boundaries["train_x"][:200, 1],
                       c=boundaries["train_y"][:200], s=3, cmap="tab10", vmin=0, vmax=9,
                       edgecolors="black", linewidths=0.2)
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(title, fontsize=9)
            if col == 0:
                ax.set_ylabel(criterion, fontsize=9)
    fig.suptitle(f"Decision boundaries on {dataset} after removing hidden units, no fine-tuning (seed 0)")
    fig.tight_layout()
    return fig


def plot_curves(frame: pd.DataFrame, allocation: str = "global", focus: str = DEFAULT_FOCUS):
    """Accuracy and boundary change vs. pruning fraction, per criterion and dataset (clean test);
    `focus` (claims.focus) drawn thicker."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nnprune.analysis.style import criterion_color

    clean = frame[frame.input_noise == 0]
    if "allocation" in clean:
        clean = clean[clean.allocation == allocation]
    datasets = list(dict.fromkeys(clean.dataset))
    fig, axes = plt.subplots(2, len(datasets), figsize=(4.5 * len(datasets), 7.5), squeeze=False)
    for col, dataset in enumerate(datasets):
        part = clean[clean.dataset == dataset]
        stats = part.groupby(["criterion", "fraction"])[["acc_pruned", "boundary_change"]].agg(["mean", "std"])
        for criterion in dict.fromkeys(part.criterion):
            s = stats.loc[criterion]
            width = 2.5 if criterion == focus else 1.2
            for row, metric in enumerate(["acc_pruned", "boundary_change"]):
                axes[row][col].errorbar(100 * s.index, s[(metric, "mean")], yerr=s[(metric, "std")],
                                        marker="o", capsize=2, linewidth=width, label=criterion,
                                        color=criterion_color(criterion))
        axes[0][col].axhline(part.acc_base.mean(), color="black", linestyle=":", label="unpruned")
        axes[0][col].set_title(dataset)
        axes[0][col].set_ylabel("test accuracy after pruning (%)")
        axes[1][col].set_ylabel("grid points whose class changed (%)")
        for row in range(2):
            axes[row][col].set_xlabel("hidden units removed (%)")
            axes[row][col].grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7)
    fig.suptitle(f"Toy study, {allocation} allocation of removed units: mean ± std over "
                 f"{clean.seed.nunique()} seeds, no fine-tuning")
    fig.tight_layout()
    return fig
