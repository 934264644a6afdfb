"""What one scoring run tells: the summary (tiers, expected defaults, PD quantiles and
distribution vs training, drift vs training) and the running totals it is built from.

`Accumulator` takes the scored chunks one at a time, whichever engine produced them, so the
summary of a 10M-loan portfolio never needs the portfolio in memory.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.modelling.model import PD_KEY, SCORE_KEY, LoanRiskModel
from pipeline.riskmath import scaling, stability
from pipeline.scoring.core import DEFAULTED, ScoringModel

QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
# Drift is measured on a uniform sample of at most this many rows: PSI over 10 bins does not
# need more, and the sample of prepared features is what stays in memory across chunks.
DRIFT_SAMPLE_ROWS = 200_000


@dataclass
class ScoreSummary:
    """What `run_score` returns and writes beside the output as JSON (`catalogue.score_summary`);
    str() is the few lines `loanrisk score` prints."""

    output: str
    model_uri: str
    model_name: str
    model_version: str
    n_loans: int
    as_of: list[str]
    tiers: dict[str, int]
    expected_defaults: float
    mean_pd: float
    pd_quantiles: dict[str, float]
    psi_score: float | None
    psi_features: dict[str, float] = field(default_factory=dict)
    drift_warnings: list[str] = field(default_factory=list)
    drift_alerts: list[str] = field(default_factory=list)
    drift_sample_rows: int = 0
    psi_pd: float | None = None
    # PD bins of the training reference ("__pd__") beside this portfolio's share in each
    pd_distribution: list[dict[str, Any]] = field(default_factory=list)
    early_warning: str | None = None
    n_early_warning: int = 0
    n_tier_worsened: int = 0
    n_pd_threshold: int = 0
    early_warning_pd: float | None = None
    early_warning_rule: str | None = None  # the tier-move rule, with --previous only
    previous: str | None = None
    n_matched_previous: int = 0
    engine: str = "local"
    seconds: float = 0.0
    # {column: {"rows": n, "values": {value: rows}}}: levels unseen in training, scored missing
    unseen_categories: dict[str, dict[str, Any]] = field(default_factory=dict)
    # loans already in default at the as-of date (status "defaulted"): scored, but left out of
    # the tiers, the PD figures and their distribution, and the early-warning list
    n_defaulted: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        tiers = ", ".join(
            f"{t} {n:,} ({n / max(self.n_loans - self.n_defaulted, 1):.1%})"
            for t, n in self.tiers.items()
        )
        psi = "n/a" if self.psi_score is None else f"{self.psi_score:.3f}"
        registered = self.model_name != self.model_uri
        model = f"{self.model_name} v{self.model_version}" if registered else self.model_uri
        open_loans = self.n_loans - self.n_defaulted
        lines = [
            f"Scored {self.n_loans:,} loans (as of {', '.join(self.as_of) or 'n/a'}) with "
            f"{model} -> {self.output} ({self.seconds:.1f} s)",
        ]
        if self.n_defaulted:
            lines.append(
                f"  {self.n_defaulted:,} already in default (status 'defaulted'): left out of "
                f"the figures below, which are for the other {open_loans:,}"
            )
        lines += [
            f"  tiers: {tiers}",
            f"  expected defaults {self.expected_defaults:,.1f} (mean PD {self.mean_pd:.2%}, "
            f"median {self.pd_quantiles.get('p50', float('nan')):.2%})",
            f"  drift vs training: score PSI {psi}",
        ]
        if self.early_warning is not None:
            why = f"{self.n_pd_threshold:,} PD >= {self.early_warning_pd:.0%}"
            if self.previous:  # without a previous output no tier can have moved
                why = (
                    f"{self.n_tier_worsened:,} {self.early_warning_rule} since {self.previous}, "
                    + why
                )
            lines.append(
                f"  early warning: {self.n_early_warning:,} loans -> {self.early_warning} ({why})"
            )
        if self.drift_alerts:
            lines.append(f"  ALERT (PSI > 0.25): {', '.join(self.drift_alerts)}")
        if self.drift_warnings:
            lines.append(f"  warning (PSI > 0.1): {', '.join(self.drift_warnings)}")
        if self.unseen_categories:
            cols = ", ".join(f"{c} {v['rows']:,} rows" for c, v in self.unseen_categories.items())
            lines.append(f"  category values unseen in training, scored as missing: {cols}")
        return "\n".join(lines)


class Accumulator:
    """Running totals over the chunks: exact tier counts, PD and points kept whole (one float
    per loan each), prepared features sampled uniformly for the drift check."""

    def __init__(self, model: LoanRiskModel, n_expected: int, seed: int) -> None:
        self.model = model
        self.rate = min(1.0, DRIFT_SAMPLE_ROWS / max(n_expected, 1))
        self.rng = np.random.default_rng(seed)
        self.pd: list[np.ndarray] = []
        self.points: list[np.ndarray] = []
        self.tiers: dict[str, int] = dict.fromkeys(scaling.tier_order(model.scoring), 0)
        self.sample: list[pd.DataFrame] = []
        self.dates: set[str] = set()
        self.n = self.n_defaulted = 0

    def add(self, out: pd.DataFrame, X: pd.DataFrame) -> None:
        self.n += len(out)
        dates = out["as_of_date"].dropna().dt.date.unique()
        self.dates.update(d.isoformat() for d in dates)
        defaulted = out["status"].to_numpy() == DEFAULTED
        self.n_defaulted += int(defaulted.sum())
        if defaulted.any():  # a PD of loans already in default is no forecast: not counted
            out = out.loc[~defaulted]
        self.pd.append(out["pd"].to_numpy())
        self.points.append(out["points"].to_numpy())
        for t, c in out["tier"].value_counts().items():
            self.tiers[str(t)] = self.tiers.get(str(t), 0) + int(c)
        keep = X if self.rate >= 1 else X[self.rng.random(len(X)) < self.rate]
        self.sample.append(keep)

    def summary(self, model: ScoringModel, out_path: Path, seconds: float) -> ScoreSummary:
        p = np.concatenate(self.pd)
        if not p.size:  # every loan already in default: no PD figures to give
            p = np.array([np.nan])
        psi_score, psi_features = self._drift(np.concatenate(self.points), p)
        psi_pd, pd_dist = self._pd_distribution(p) if np.isfinite(p).all() else (None, [])
        status = {k: stability.psi_status(v) for k, v in psi_features.items()}
        if psi_score is not None:
            status = {"score": stability.psi_status(psi_score), **status}
        return ScoreSummary(
            output=str(out_path),
            model_uri=model.uri,
            model_name=model.name,
            model_version=model.version,
            n_loans=self.n,
            as_of=sorted(self.dates),
            tiers=self.tiers,
            expected_defaults=float(p.sum()),
            mean_pd=float(p.mean()),
            pd_quantiles={
                f"p{round(q * 100):02d}": float(v)
                for q, v in zip(QUANTILES, np.quantile(p, QUANTILES), strict=True)
            },
            psi_score=psi_score,
            psi_pd=psi_pd,
            pd_distribution=pd_dist,
            psi_features=psi_features,
            drift_warnings=[k for k, s in status.items() if s == "warning"],
            drift_alerts=[k for k, s in status.items() if s == "alert"],
            drift_sample_rows=sum(len(s) for s in self.sample),
            seconds=seconds,
            n_defaulted=self.n_defaulted,
        )

    def _pd_distribution(self, p: np.ndarray) -> tuple[float | None, list[dict[str, Any]]]:
        """PSI of the PD and its bins vs the training reference: bin, training_share,
        portfolio_share, loans, psi."""
        ref = (self.model.reference or {}).get(PD_KEY)
        if ref is None:
            return None, []
        table = stability.psi_table_from_reference(ref, p)
        rows = [
            {
                "bin": str(r.bin),
                "training_share": float(r.expected_share),
                "portfolio_share": float(r.actual_share),
                "loans": int(r.actual_n),
                "psi": float(r.psi),
            }
            for r in table.itertuples()
        ]
        return float(table["psi"].sum()), rows

    def _drift(self, points: np.ndarray, p: np.ndarray) -> tuple[float | None, dict[str, float]]:
        ref = self.model.reference or {}
        psi_score = None
        if SCORE_KEY in ref:
            psi_score = stability.psi_from_reference(ref[SCORE_KEY], points)
        elif PD_KEY in ref:
            psi_score = stability.psi_from_reference(ref[PD_KEY], p)
        sample = pd.concat(self.sample) if self.sample else pd.DataFrame()
        psi: dict[str, float] = {}
        if len(sample):
            for name in self.model.feature_names:
                if name in ref:
                    psi[name] = stability.psi_from_reference(ref[name], sample[name])
        # largest first, so the summary reads as a ranking
        return psi_score, dict(sorted(psi.items(), key=lambda kv: (-kv[1], kv[0])))
