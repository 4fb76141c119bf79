"""Pruning scheme strings (config key `pruning`), parsed without importing torch.

The workflow parses every scheme when it builds the DAG (and SLURM jobs re-parse the workflow),
so this module stays light; `nnprune.pruning` turns a parsed `Scheme` into removed channels.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from nnprune.errors import UserError

HRANK_PRESETS: dict[str, str] = {
    "vgg16": "[0.95]+[0.5]*6+[0.9]*4+[0.8]*2",
    "resnet56": "[0.1]+[0.60]*35+[0.0]*2+[0.6]*6+[0.4]*3+[0.1]+[0.4]+[0.1]+[0.4]+[0.1]+[0.4]+[0.1]+[0.4]",
    "resnet110": "[0.1]+[0.40]*36+[0.40]*36+[0.4]*36",
    "densenet40": "[0.0]+[0.1]*6+[0.7]*6+[0.0]+[0.1]*6+[0.7]*6+[0.0]+[0.1]*6+[0.7]*5+[0.0]",
    "googlenet": "[0.10]+[0.8]*5+[0.85]+[0.8]*3",
    "resnet50": "[0.2]+[0.8]*10+[0.8]*13+[0.55]*19+[0.45]*10",
}

# Prunable layers per architecture (convs; an MLP's hidden Linear layers), the length of a
# per-layer rate string. It is the same at every width and input size. Parsing a config checks
# rate strings against it without building a model; tests/test_architectures.py builds every
# model and holds it equal to `pruning.model_layout`.
PRUNABLE_LAYERS: dict[str, int] = {
    "resnet20": 19, "resnet32": 31, "resnet56": 55, "resnet110": 109, "vgg16": 13,
    "densenet40": 39, "googlenet": 64, "resnet50": 53, "mlp": 3,
}
# Architectures whose rate string may instead give one rate per unit (`models.RATE_UNITS`):
# how many units.
RATE_UNIT_COUNTS: dict[str, int] = {"googlenet": 10}

_TERM = re.compile(r"^\[\s*([0-9.eE+-]+(?:\s*,\s*[0-9.eE+-]+)*)\s*\](?:\s*\*\s*(\d+))?$")


def parse_rates(text: str) -> list[float]:
    """Parse an HRank compress-rate string like "[0.1]+[0.60]*35+[0.0]*2" without eval."""
    rates: list[float] = []
    for term in text.replace(" ", "").split("+"):
        match = _TERM.match(term)
        if not match:
            raise UserError(f"cannot parse compress-rate term {term!r} in {text!r}",
                            "write terms like [0.5] or [0.5]*3 or [0.1,0.2], joined by +")
        values = [float(v) for v in match.group(1).split(",")]
        rates.extend(values * int(match.group(2) or 1))
    for position, rate in enumerate(rates):
        if not 0.0 <= rate < 1.0:
            raise UserError(f"compress rate {rate} at position {position} is outside [0, 1)",
                            "every rate must be at least 0 and below 1")
    return rates


def check_rates_count(count: int, layers: int, arch: str | None = None,
                      units: int | None = None) -> None:
    """Raise a UserError naming both numbers unless a rate string of `count` rates fits a model
    with `layers` prunable layers (or, where `units` is given, `units` rate units of `arch`)."""
    if count == layers or (units is not None and count == units):
        return
    also = f" (or {units}, one per unit of {arch})" if units is not None else ""
    raise UserError(
        f"compress-rate string has {count} rates but the model has {layers} prunable layers{also}",
        f"give exactly {layers} rates, one per prunable layer in module order{also} "
        f"(see docs/presets.md)")


ROUND_TO = ":round_to="
MAX_SHARE = ":max_share="
# Schemes with one number: a rate, or a share of the MACs to remove.
FRACTION_KINDS = ("uniform", "macs", "uniform-macs")


@dataclass(frozen=True)
class Scheme:
    kind: str      # uniform | rates | macs | uniform-macs
    value: object  # float, or list of floats for rates
    text: str
    arch: str | None = None  # lets a rates string give one rate per unit (see `layer_rates`)
    round_to: int = 1        # every group keeps a multiple of this many channels (or all of them)
    max_share: float = 1.0   # macs: no group loses more than this share of its channels

    @property
    def allocation(self) -> str:
        """How channels are shared out between layers, in words: "global" (`macs:`, ranked
        across the model), "global, cap 0.5" with max_share, "uniform" (the same share of every
        layer: `uniform:` and `uniform-macs:`) or "per-layer rates" (`rates:`, `preset:`)."""
        if self.kind == "macs":
            return "global" if self.max_share >= 1.0 else f"global, cap {self.max_share:g}"
        return "per-layer rates" if self.kind == "rates" else "uniform"


def _split_options(text: str) -> tuple[str, int, float]:
    """("macs:0.5", 8, 0.5) from "macs:0.5:round_to=8:max_share=0.5"; the options may come in
    either order, each at most once; (text, 1, 1.0) without them."""
    body, options = text, {}
    for marker in (ROUND_TO, MAX_SHARE):
        if text.count(marker) > 1:
            raise UserError(f"pruning {text!r}: {marker.strip(':=')} is given twice", "give it once")
    while True:
        cut = max(body.rfind(ROUND_TO), body.rfind(MAX_SHARE))
        if cut < 0:
            break
        marker = ROUND_TO if body.startswith(ROUND_TO, cut) else MAX_SHARE
        options[marker], _, unknown = body[cut + len(marker):].partition(":")
        if unknown:
            raise _unknown_option(text, unknown)
        body = body[:cut]
    round_to, max_share = 1, 1.0
    if ROUND_TO in options:
        multiple = options[ROUND_TO]
        if not multiple.isdigit() or int(multiple) < 1:
            raise UserError(f"pruning {text!r}: round_to needs a whole number >= 1",
                            "write e.g. macs:0.5:round_to=8")
        round_to = int(multiple)
    if MAX_SHARE in options:
        try:
            max_share = float(options[MAX_SHARE])
        except ValueError:
            max_share = -1.0
        if not 0.0 < max_share <= 1.0:
            raise UserError(f"pruning {text!r}: max_share needs a number in (0, 1]",
                            "write e.g. macs:0.5:max_share=0.5 (no group loses more than half its channels)")
    return body, round_to, max_share


def _unknown_option(text: str, option: str) -> UserError:
    return UserError(f"pruning {text!r}: unknown option {option!r}",
                     "the options are :round_to=<n> and, for macs:, :max_share=<s>")


def parse_scheme(text: str, arch: str | None = None) -> Scheme:
    """A `Scheme` from a pruning string: uniform:<rate>, macs:<fraction>, uniform-macs:<fraction>,
    rates:<HRank string> or preset:hrank, each optionally followed by `:round_to=<n>` (kept
    channels rounded up to a multiple of n, as tensor cores and vectorised CPU kernels prefer)
    and, for macs:, `:max_share=<s>` (no group loses more than a share s of its channels).

    uniform-macs:<f> removes the same share of channels from every group, the smallest share
    that removes at least a fraction f of the MACs: the uniform allocation at the MACs cut of
    macs:<f>, where every criterion removes the same number of channels from every layer."""
    body, round_to, max_share = _split_options(text)
    kind, _, argument = body.partition(":")
    if kind in (*FRACTION_KINDS, "preset", "rates") and ":" in argument:
        raise _unknown_option(text, argument.partition(":")[2])
    if max_share < 1.0 and kind != "macs":
        raise UserError(f"pruning {text!r}: max_share applies to macs: (global) allocation only",
                        "remove :max_share, or use macs:<fraction>:max_share=<s>")
    if kind == "preset":
        if argument != "hrank":
            raise UserError(f"pruning {text!r}: unknown preset {argument!r}", "use preset:hrank")
        if arch not in HRANK_PRESETS:
            raise UserError(f"pruning {text!r}: no HRank preset for architecture {arch!r}",
                            f"presets exist for: {', '.join(sorted(HRANK_PRESETS))}")
        return Scheme("rates", parse_rates(HRANK_PRESETS[arch]), text, arch, round_to)
    if kind == "rates":
        try:
            return Scheme("rates", parse_rates(argument), text, arch, round_to)
        except UserError as error:
            raise UserError(f"pruning {text!r}: {error.problem}", error.fix) from None
    if kind in FRACTION_KINDS:
        return Scheme(kind, _fraction(text, kind, argument), text, round_to=round_to, max_share=max_share)
    raise UserError(f"pruning {text!r}: unknown scheme {kind!r}",
                    "use uniform:<rate>, macs:<fraction>, uniform-macs:<fraction>, rates:<HRank string> "
                    "or preset:hrank, optionally followed by :round_to=<n> (and, for macs:, :max_share=<s>)")


def _fraction(text: str, kind: str, argument: str) -> float:
    """The number of uniform:/macs:/uniform-macs:, above 0 (a cut of 0 removes nothing) and below 1."""
    try:
        value = float(argument)
    except ValueError:
        raise UserError(f"pruning {text!r}: {kind} needs a number above 0 and below 1, got {argument!r}",
                        f"write e.g. {kind}:0.5") from None
    if value == 0.0:
        raise UserError(f"pruning {text!r}: a cut of 0 removes nothing",
                        f"write a number above 0 and below 1, e.g. {kind}:0.5 (the baselines are the unpruned runs)")
    if not 0.0 < value < 1.0:
        raise UserError(f"pruning {text!r}: {kind} needs a number above 0 and below 1, got {value:g}",
                        f"write e.g. {kind}:0.5")
    return value


def scheme_slug(text: str) -> str:
    """A file-name-safe label for a pruning scheme string ("macs:0.5:round_to=8" -> macs-0.5-r8,
    "macs:0.5:max_share=0.5" -> macs-0.5-c0.5)."""
    body, round_to, max_share = _split_options(text)
    suffix = (f"-r{round_to}" if ROUND_TO in text else "") + (f"-c{max_share:g}" if MAX_SHARE in text else "")
    kind, _, argument = body.partition(":")
    if kind == "rates":
        return "rates-" + hashlib.sha1(argument.replace(" ", "").encode()).hexdigest()[:8] + suffix
    return f"{kind}-{argument}{suffix}"
