"""The one hook through which the stages get the simulated book's known truth.

The generated book carries its truth beside the tables (`truth/truth.json`: every planted effect,
its direction, size in the oracle and confounding; `truth/true_pd.parquet`: the oracle PD of
every loan and snapshot). `known_truth(cfg)` returns it, or None for any other data, so a stage
asks once and every check of a model against the truth lives here, not in the stages:
the oracle AUC (evaluate) and the planted effects against what SHAP found (explain).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from pipeline.config import Config
from pipeline.core import catalogue, privacy
from pipeline.core.metadata import LABEL_COLUMN
from pipeline.riskmath.attribution import Explanation
from pipeline.riskmath.dependence import dependence

log = logging.getLogger(__name__)
# Oracle mean |SHAP| (log-odds) below which a model is not expected to show a planted effect.
# Measured over 6 seeds: at 20k customers LightGBM found every effect of 0.1 and more; at 10k
# it missed one of 0.17 once and one of 0.045 (unresolved complaints, 6% of loans) once.
MIN_ATTRIBUTION = 0.05


@dataclass(frozen=True)
class KnownTruth:
    """The simulated book's truth: `spec` is truth.json, `folder` holds true_pd.parquet."""

    folder: Path
    spec: dict

    def oracle_auc(self, test: pd.DataFrame, cfg: Config) -> float | None:
        """AUC of the true PD on the test rows (loan_id, snapshot_date, label): the best any
        model could do. Ids are pseudonymised like the predictions when privacy asks for it."""
        tp = privacy.pseudonymise_ids(pd.read_parquet(self.folder / catalogue.TRUE_PD), cfg.privacy)
        merged = test.merge(tp, on=["loan_id", "snapshot_date"], how="inner")
        if len(merged) < 0.95 * len(test):
            log.warning("true PD found for only %d of %d test rows", len(merged), len(test))
        if merged[LABEL_COLUMN].nunique() < 2:
            return None
        return float(roc_auc_score(merged[LABEL_COLUMN], merged["true_pd"]))

    def check(self, ex: Explanation, min_attribution: float = MIN_ATTRIBUTION) -> Explanation:
        """`ex` with its truth table: the planted effects against what the model found."""
        return with_truth(ex, self.spec, min_attribution)


def known_truth(cfg: Config) -> KnownTruth | None:
    """The truth of the configured raw tables when they are a generated book, else None."""
    folder = catalogue.truth_dir(cfg.data.raw_dir)
    path = folder / catalogue.TRUTH_JSON
    if cfg.data.kind != "tables" or not path.exists():
        return None
    return KnownTruth(folder, json.loads(path.read_text()))


def with_truth(
    ex: Explanation, truth: dict, min_attribution: float = MIN_ATTRIBUTION
) -> Explanation:
    """`ex` with `truth` (a truth.json dict) checked against it; the features the model was
    trained monotone in are read from `ex.importance["constrained"]`."""
    imp = ex.importance
    constrained = (
        frozenset(imp.loc[imp["constrained"].astype(bool), "feature"])
        if "constrained" in imp
        else frozenset()
    )
    table = recovery_table(truth, imp, ex.X, ex.shap, ex.specs, min_attribution, constrained)
    return dataclasses.replace(ex, truth=table)


def recovery_table(
    truth,
    imp,
    X,
    shap_values,
    specs,
    min_attribution: float = MIN_ATTRIBUTION,
    constrained: frozenset[str] = frozenset(),
) -> pd.DataFrame:
    """Planted effect vs what the model found, for every effect with a feature here.

    truth: the simulator's truth.json ({"effects": {name: {features, feature_direction, kind,
    size, attribution, confounding[, threshold_per_month]}}}). An effect's SHAP is the sum over
    its features present (SHAP is additive, and correlated features share one signal out
    between them), its direction the sign of that sum against the first feature's value.

    An effect is checked when SHAP can show it: its oracle attribution (its mean |SHAP| in the
    oracle) is at least `min_attribution`, and who gets the exposure does not bias the
    association against the effect ("opposite" confounding: lenders contact the customers they
    see as risky). Those are for the effect study, which adjusts for the targeting. The planted
    null must rank below every checked effect; markers (signs of distress) are listed, not
    checked. A fatigue effect (with a threshold) is checked above its threshold, where its
    direction applies. `constrained`: features the model was trained monotone in; their
    direction is imposed, not found."""
    pos = {s.name: j for j, s in enumerate(specs)}
    rank = dict(zip(imp["feature"], imp["rank"], strict=True))
    rows = []
    for name, eff in truth.get("effects", {}).items():
        features = [f for f in eff.get("features", []) if f in pos]
        if not features:
            continue
        feature = features[0]
        j = pos[feature]
        v = pd.to_numeric(X[feature], errors="coerce").to_numpy(dtype=float)
        s = shap_values[:, [pos[f] for f in features]].sum(axis=1)
        whole = dependence(X[feature], s, specs[j])
        if eff.get("threshold_per_month") is not None:
            above = np.isfinite(v) & (v > eff["threshold_per_month"])
            found = dependence(pd.Series(v[above]), s[above]).direction
        else:
            found = whole.direction
        planted = eff["feature_direction"]
        attribution = eff.get("attribution")
        if planted == "none":
            checked, why = True, ""
        elif eff.get("kind") == "marker":
            checked = False
            why = "not checked: a sign of distress before default, not a planted effect"
        elif eff.get("confounding") == "opposite":
            checked = False
            why = f"not checked: {eff.get('confounding_note', 'confounded')}; see the effect study"
        elif attribution is not None and attribution < min_attribution:
            checked = False
            why = f"not checked: too small to show (oracle {attribution:.3f} < {min_attribution:g})"
        else:
            checked, why = True, ""
        rows.append(
            {
                "effect": name,
                "kind": eff.get("kind", ""),
                "planted_size": eff.get("size"),
                "planted_attribution": attribution,
                "confounding": eff.get("confounding", ""),
                "lever": eff.get("lever"),
                "feature": feature,
                "n_features": len(features),
                "planted_direction": planted,
                "found_direction": found,
                "turns": whole.turns,
                "turn_at": whole.turn_at,
                "mean_abs_shap": float(np.abs(s).mean()),
                "rank": rank[feature],
                "constrained": feature in constrained,
                "checked": checked,
                "matches": None,
                "verdict": why,
            }
        )
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    null = out["planted_direction"].eq("none")
    effect = out["checked"] & ~null
    floor = out.loc[effect, "mean_abs_shap"].min() if effect.any() else np.inf
    matches = np.where(
        null, out["mean_abs_shap"] < floor, out["found_direction"] == out["planted_direction"]
    )
    out["matches"] = pd.array(np.where(out["checked"], matches, None), dtype="boolean")
    ok, bad = out["matches"].eq(True), out["matches"].eq(False)
    out.loc[ok & ~null, "verdict"] = "recovered"
    out.loc[bad & ~null, "verdict"] = "NOT recovered: the direction differs"
    out.loc[ok & null, "verdict"] = "recovered: the null ranks below every checked effect"
    out.loc[bad & null, "verdict"] = "NOT recovered: the null ranks above a checked effect"
    fixed = out["checked"] & out["constrained"]
    out.loc[fixed, "verdict"] += " (direction imposed by a monotone constraint)"
    return out


def truth_counts(truth: pd.DataFrame) -> tuple[int, int]:
    """(effects recovered, effects checked) of a truth table."""
    checked = truth["checked"].astype(bool)
    return int(truth.loc[checked, "matches"].astype(bool).sum()), int(checked.sum())
