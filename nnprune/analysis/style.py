"""How the criteria look in every figure: one colour per criterion, the same in every study, and a
`Style` that a study's figures are drawn with: the focus criterion (claims.focus) first, thicker and
in bold, then the config's order. Matplotlib-free: plain values and matplotlib keyword arguments."""
from __future__ import annotations

import zlib
from collections.abc import Iterable
from dataclasses import dataclass

from nnprune.plan.names import CRITERION_SOURCES, DEFAULT_FOCUS

# One colour per registered criterion (nnprune/plan/names.py's order), the same in every figure of every
# study: matplotlib's tab10 without its grey, which the legends keep for kinds of points.
PALETTE = ("C0", "C1", "C2", "C3", "C4", "C5", "C6", "C8", "C9", "#7b4173")
# Outside criteria (not in nnprune/plan/names.py): a colour of their own, from the name.
OUTSIDE_PALETTE = ("black", "#8c564b", "#17becf", "#bcbd22", "#e377c2", "#7f3b08")
NEUTRAL = "0.3"                 # kinds of points (pruning families, noise kinds), baselines
KIND_MARKERS = ("o", "s", "^", "D")
KIND_LINESTYLES = ("-", "--", ":", "-.")


def criterion_color(criterion: str) -> str:
    """The colour of `criterion` in every figure: a registered one's by nnprune/plan/names.py's
    order; an outside one's from its name (crc32)."""
    names = list(CRITERION_SOURCES)
    if criterion in names:
        return PALETTE[names.index(criterion) % len(PALETTE)]
    return OUTSIDE_PALETTE[zlib.crc32(criterion.encode()) % len(OUTSIDE_PALETTE)]


@dataclass(frozen=True)
class Style:
    """The criteria's order and look in a study's figures: `focus` (claims.focus) first, drawn
    thicker and named in bold; `criteria` (the config's order) next."""
    focus: str = DEFAULT_FOCUS
    criteria: tuple[str, ...] = ()

    def order(self, present: Iterable[str]) -> list[str]:
        """The criteria in `present`, in the order of every figure: the focus, then `criteria`,
        then nnprune/plan/names.py's order, then any other name sorted."""
        present = set(present)
        ranked = [c for c in dict.fromkeys([self.focus, *self.criteria, *CRITERION_SOURCES]) if c in present]
        return ranked + sorted(present - set(ranked))

    def series(self, criterion: str) -> dict:
        """Matplotlib keywords of a criterion's series: its colour; the focus thicker, larger and on top."""
        focus = criterion == self.focus
        return {"color": criterion_color(criterion), "linewidth": 2.6 if focus else 1.3,
                "markersize": 8 if focus else 5, "zorder": 5 if focus else 2}

    def bold_focus(self, texts) -> None:
        """Bold the tick or legend labels (matplotlib Text) that name the focus: `l1`, `l1, pairwise`."""
        for text in texts:
            if text.get_text().replace(",", " ").split(" ")[0] == self.focus:
                text.set_fontweight("bold")


DEFAULT_STYLE = Style()         # the paper's criterion as the focus, no configured order
