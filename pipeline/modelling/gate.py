"""The promotion gate: may a challenger model replace the champion? Pure decision, no I/O.

Both models are measured on the same rows, the challenger's own out-of-time test rows (the
champion re-scored on them), so a comparison never mixes two windows or two books. The gate is
a list of checks (`CHECKS`), each a function of the evidence; the validation work can add one
without touching the others:

- floor (always, even with `force`): a finite AUC, not a constant prediction, better than the
  logistic baseline on the same rows, and calibrated in the large (observed defaults within a
  binomial interval around the expected ones);
- like for like: the champion was built on the same data (source, label, feature set);
  otherwise no comparison is made and only `force` (`--promote`) promotes;
- against the champion, on the challenger's rows: the AUC check refuses a loss that is both
  material (beyond the tolerance) and significant (the paired bootstrap interval of the AUC
  difference lies below zero); without an interval the tolerance alone decides. A fixed
  tolerance alone refused equally good retrains whose AUC moved by noise (the default book's
  test AUC interval is +/- 0.027 wide) and passed nothing a sample could not tell apart either.
  The Brier score may not exceed the champion's plus the tolerance.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from sklearn.metrics import brier_score_loss, roc_auc_score

from pipeline.riskmath.calibration_tests import calibration_in_the_large

# Data identity keys: a champion differing in any of them was built on other data.
IDENTITY_KEYS = ("data.kind", "data.source", "data.label", "features.set")


@dataclass(frozen=True)
class Evidence:
    """One model's predictions on the challenger's test rows, summarised."""

    n: int
    auc: float
    brier: float
    observed: float  # defaults among the rows
    expected: float  # sum of the predicted PDs
    # (observed - expected) / binomial sd of the default count: the sum-of-binomials test of
    # pipeline.riskmath.calibration_tests; 0 when the PDs have no variance (all 0 or 1)
    calibration_z: float
    spread: float  # standard deviation of the PDs (0: a constant prediction)

    @classmethod
    def of(cls, y: np.ndarray, p: np.ndarray) -> Evidence:
        y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
        two_classes = len(np.unique(y)) == 2 and bool(np.isfinite(p).all())
        return cls(
            n=len(y),
            auc=float(roc_auc_score(y, p)) if two_classes else float("nan"),
            brier=float(brier_score_loss(y, p)) if two_classes else float("nan"),
            observed=float(y.sum()),
            expected=float(p.sum()),
            calibration_z=_binomial_z(y, p),
            spread=float(p.std()) if len(p) else 0.0,
        )


@dataclass(frozen=True)
class GateInput:
    challenger: Evidence
    challenger_version: str
    identity: Mapping[str, str]  # the challenger's data identity (IDENTITY_KEYS)
    baseline_auc: float | None  # logistic regression on the same rows
    champion: Evidence | None = None  # the champion re-scored on the same rows
    champion_version: str | None = None
    champion_identity: Mapping[str, str] = field(default_factory=dict)
    champion_error: str | None = None  # why the champion could not be re-scored
    tolerance: float = 0.005
    calibration_z: float = 3.29  # two-sided 99.9% interval
    # challenger AUC - champion AUC on the same rows with its paired interval (difference,
    # lower, upper); None: no interval (no resamples, or the champion is not comparable)
    auc_difference: tuple[float, float, float] | None = None
    force: bool = False  # `--promote`: promote across data when the floor holds


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str
    floor: bool = False  # a floor check cannot be overridden by `force`


@dataclass(frozen=True)
class Verdict:
    promoted: bool
    reason: str
    checks: tuple[Check, ...]
    forced: bool = False  # promoted only because of `force`

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "checks": [asdict(c) for c in self.checks]}


def decide(g: GateInput, checks: tuple[CheckFn, ...] | None = None) -> Verdict:
    """Promote when every floor check passes and, when there is a champion, every comparison
    passes too (or `force`). The reason names what was compared, on which rows."""
    results = tuple(c for fn in (checks or CHECKS) if (c := fn(g)) is not None)
    forced = False
    floor_failed = [c for c in results if c.floor and not c.passed]
    other_failed = [c for c in results if not c.floor and not c.passed]
    who = f"v{g.challenger_version}"
    rows = f"{g.challenger.n} test rows of {who}"
    against = (
        f"{who} vs champion v{g.champion_version} re-scored on the {rows}"
        if g.champion is not None
        else (f"{who} on its {g.challenger.n} test rows")
    )
    summary = "; ".join(c.detail for c in results)
    if floor_failed:
        promoted = False
        end = f"below the floor ({', '.join(c.name for c in floor_failed)}): not promoted"
    elif g.champion_version is None:
        promoted, end = True, f"no champion yet: {who} becomes champion"
    elif other_failed and g.force:
        promoted = forced = True
        end = (
            f"forced by --promote over {', '.join(c.name for c in other_failed)}: "
            f"{who} becomes champion"
        )
    elif other_failed:
        promoted = False
        end = f"champion stays v{g.champion_version}"
    else:
        promoted, end = True, f"{who} becomes champion"
    return Verdict(promoted, f"{against}: {summary}; {end}", results, forced)


CheckFn = Callable[[GateInput], Check | None]


def finite_auc(g: GateInput) -> Check:
    auc = g.challenger.auc
    ok = math.isfinite(auc)
    return Check("auc", ok, f"AUC {auc:.4f}" if ok else f"AUC is {auc}", floor=True)


def not_constant(g: GateInput) -> Check:
    ok = g.challenger.spread > 1e-9
    detail = "PDs vary" if ok else "constant prediction (every row gets the same PD)"
    return Check("not constant", ok, detail, floor=True)


def beats_baseline(g: GateInput) -> Check | None:
    if g.baseline_auc is None or not math.isfinite(g.baseline_auc):
        return None
    ok = g.challenger.auc > g.baseline_auc
    sign = ">" if ok else "<="
    detail = f"AUC {sign} logistic baseline {g.baseline_auc:.4f}"
    return Check("beats baseline", ok, detail, floor=True)


def calibrated(g: GateInput) -> Check:
    e = g.challenger
    z = e.calibration_z
    ok = abs(z) <= g.calibration_z
    detail = (
        f"defaults observed {e.observed:.0f} vs expected {e.expected:.1f} "
        f"(z {z:+.2f}, {'within' if ok else 'outside'} ±{g.calibration_z:g})"
    )
    return Check("calibration", ok, detail, floor=True)


def same_data(g: GateInput) -> Check | None:
    if g.champion_version is None:
        return None
    differ = [k for k in IDENTITY_KEYS if g.identity.get(k) != g.champion_identity.get(k)]
    if not differ:
        return Check("same data", True, "same data source, label and feature set")
    if not g.champion_identity:
        return Check(
            "same data",
            False,
            f"champion v{g.champion_version} records no data identity (registered by an older "
            "loanrisk): not comparable; pass --promote once to replace it",
        )
    shown = ", ".join(
        f"{k} {g.champion_identity.get(k, 'unrecorded')!r} -> {g.identity.get(k)!r}" for k in differ
    )
    return Check(
        "same data",
        False,
        f"champion v{g.champion_version} was built on other data ({shown}): not comparable; "
        "register under its own mlflow.registered_model, or pass --promote",
    )


def auc_vs_champion(g: GateInput) -> Check | None:
    if g.champion_version is None or not _comparable(g):
        return None
    if g.champion is None:
        return Check("champion AUC", False, f"champion could not be re-scored: {g.champion_error}")
    new, old = g.challenger.auc, g.champion.auc
    material = new < old - g.tolerance
    sign = "<" if material else ">="
    detail = f"AUC {new:.4f} {sign} champion {old:.4f} - tolerance {g.tolerance:g}"
    if g.auc_difference is None:
        return Check("champion AUC", not material, detail)
    diff, lower, upper = g.auc_difference
    significant = upper < 0
    detail += (
        f", difference {diff:+.4f} [{lower:+.4f}, {upper:+.4f}]"
        f" ({'significant' if significant else 'not significant'})"
    )
    return Check("champion AUC", not (material and significant), detail)


def brier_vs_champion(g: GateInput) -> Check | None:
    if g.champion is None or not _comparable(g):
        return None
    new, old = g.challenger.brier, g.champion.brier
    ok = new <= old + g.tolerance
    sign = "<=" if ok else ">"
    return Check(
        "champion Brier",
        ok,
        f"Brier {new:.4f} {sign} champion {old:.4f} + tolerance {g.tolerance:g}",
    )


def _comparable(g: GateInput) -> bool:
    c = same_data(g)
    return c is not None and c.passed


CHECKS: tuple[CheckFn, ...] = (
    finite_auc,
    not_constant,
    beats_baseline,
    calibrated,
    same_data,
    auc_vs_champion,
    brier_vs_champion,
)


def _binomial_z(y: np.ndarray, p: np.ndarray) -> float:
    if not len(y) or not np.isfinite(p).all():
        return 0.0
    z = calibration_in_the_large(y, p)["binomial_z"]
    return 0.0 if math.isnan(z) else z
