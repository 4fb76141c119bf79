"""Fine-tuning budgets: how long a pruned network is fine-tuned, as one axis of a study.

A budget is written `<n>e` (n epochs over the training set) or `<n>b` (n batches, at most one
epoch). Each budget is a standalone fine-tune with its own schedule: `3e` is a 3-epoch cosine
run, not a longer run stopped early, and `30b` is one epoch cut at 30 batches. Before any
fine-tuning come two points of the same curve, measured by `prune`: `raw` (the pruned network as
it is) and `bn` (BatchNorm statistics re-estimated, no weight update). Importable without torch.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from nnprune.errors import UserError

UNITS = {"e": "epochs", "b": "batches"}
FORMAT = "<n>e (n epochs) or <n>b (n batches, at most one epoch), with n >= 1, e.g. 30b or 3e"
RAW, BN = "raw", "bn"                  # the curve's points before fine-tuning (runs.csv: budget 0)
NOT_FINETUNED = "0"                    # runs.csv's budget of a run that no budget fine-tuned
PRE_FINETUNE = {RAW: "raw (pruned)", BN: "BN recalibrated"}


@dataclass(frozen=True)
class Budget:
    count: int
    unit: str                      # "epochs" or "batches"

    @property
    def text(self) -> str:
        """The budget as written in a config, and its folder name: 3e, 30b."""
        return f"{self.count}{self.unit[0]}"

    @property
    def label(self) -> str:
        """In words, for tables and figures: "3 epochs", "30 batches", "1 epoch"."""
        return f"{self.count} {self.unit if self.count != 1 else self.unit[:-1]}"

    def schedule(self) -> dict[str, int | None]:
        """The fine-tune's TrainConfig fields that this budget sets."""
        if self.unit == "epochs":
            return {"epochs": self.count, "batches_per_epoch": None}
        return {"epochs": 1, "batches_per_epoch": self.count}


def parse_budget(text) -> Budget:
    """A budget from its config form; anything else is a UserError naming the form."""
    match = re.fullmatch(r"\s*(-?\d+)\s*([a-zA-Z]*)\s*", str(text))
    if not match:
        raise UserError(f"fine-tuning budget {text!r} is not a count and a unit", f"write it as {FORMAT}")
    count, unit = int(match.group(1)), match.group(2).lower()
    if unit not in UNITS:
        raise UserError(f"fine-tuning budget {text!r} has unknown unit {unit!r}" if unit else
                        f"fine-tuning budget {text!r} has no unit", f"write it as {FORMAT}")
    if count < 1:
        raise UserError(f"fine-tuning budget {text!r} is {count} {UNITS[unit]}: a budget is at least 1",
                        "leave raw and BN-recalibrated accuracy to `prune` (runs.csv has both); "
                        f"write a budget as {FORMAT}")
    return Budget(count, UNITS[unit])


def budget_from_section(section: dict) -> Budget:
    """The single budget of a `finetune` section without `budgets`: its epochs, or its
    batches_per_epoch when that cuts a 1-epoch fine-tune."""
    epochs, batches = int(section.get("epochs", 5)), section.get("batches_per_epoch")
    if batches is not None and epochs == 1:
        return Budget(int(batches), "batches")
    if batches is not None:
        raise UserError(f"finetune has epochs: {epochs} and batches_per_epoch: {batches}",
                        "give the fine-tuning length as finetune.budgets, e.g. [30b, 3e]")
    return parse_budget(f"{epochs}e")


def study_budgets(finetune: dict) -> list[Budget]:
    """The `finetune` section's budgets in the order of their length (epochs after batches, then
    by count); a repeated budget or one set twice (budgets beside epochs) is a UserError."""
    listed = finetune.get("budgets")
    if listed is None:
        return [budget_from_section(finetune)]
    if isinstance(listed, (str, int)) or not isinstance(listed, list) or not listed:
        raise UserError(f"finetune.budgets is {listed!r}, not a non-empty list",
                        f"list one or more budgets, each {FORMAT}, e.g. budgets: [30b, 3e]")
    clash = sorted(set(finetune) & {"epochs", "batches_per_epoch"})
    if clash:
        raise UserError(f"finetune sets both budgets and {', '.join(clash)}",
                        "remove " + " and ".join(clash) + ": each budget sets the fine-tune's length")
    budgets = [parse_budget(item) for item in listed]
    seen: dict[str, str] = {}
    for item, budget in zip(listed, budgets):
        if budget.text in seen:
            raise UserError(f"finetune.budgets repeats {budget.text} ({seen[budget.text]!r} and {item!r})",
                            "list each budget once")
        seen[budget.text] = item
    return sorted(budgets, key=budget_order)


def budget_order(budget: Budget | str) -> tuple[int, int]:
    """Sort key along the budget axis: raw, bn, then batches budgets, then epochs budgets."""
    if isinstance(budget, str):
        if budget in (RAW, BN, NOT_FINETUNED):
            return (0, (RAW, BN, NOT_FINETUNED).index(budget))
        budget = parse_budget(budget)
    return (1, budget.count) if budget.unit == "batches" else (2, budget.count)


def budget_label(text: str) -> str:
    """A runs.csv budget value in words."""
    if text in PRE_FINETUNE:
        return PRE_FINETUNE[text]
    if text == NOT_FINETUNED:
        return "not fine-tuned"
    return parse_budget(text).label
