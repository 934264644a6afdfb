"""Explain: which features, and which relationship factors, the model uses to lower or raise PD.

Exact tree SHAP values (LightGBM's `pred_contrib`, the same numbers `shap.TreeExplainer` gives
for a LightGBM model, in log-odds) on the whole test split. Per feature: mean |SHAP|, share of the
total, PD points at a typical loan, the direction of the dependence (does more of it lower PD?)
and where it turns; per family: the totals; on the simulated book: the planted effects against
what the model found. Writes into reports/<run_id>/ (stable names, read by the HTML report):

    shap_importance.csv, shap_by_family.csv, relationship_factors.csv, truth_recovery.csv
    explain_summary.json   headline, ranked relationship factors, PD-points translation, caveats
    shap_*.png             plots (`pipeline.shap_plots`), listed in explain_summary.json
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from scipy.special import expit

from pipeline.config import Config
from pipeline.core.io import atomic_path, write_json
from pipeline.core.metadata import LABEL_COLUMN, FeatureSpec, specs_for_contributions
from pipeline.modelling import dataset, shap_stability
from pipeline.plotting import shap_plots
from pipeline.runs import tracking
from pipeline.stages import train

log = logging.getLogger(__name__)
# A dependence whose SHAP rank correlation is weaker than this has no clear direction.
MIN_DIRECTION_CORR = 0.05
# A turn counts when the inner extreme of the binned dependence stands out from both ends by
# this share of its range (smaller wiggles are noise of the bins).
TURN_SHARE = 0.25
# Oracle mean |SHAP| (log-odds) below which a model is not expected to show a planted effect.
# Measured over 6 seeds: at 20k customers LightGBM found every effect of 0.1 and more; at 10k
# it missed one of 0.17 once and one of 0.045 (unresolved complaints, 6% of loans) once.
TRUTH_MIN_ATTRIBUTION = 0.05
SUMMARY_FILE = "explain_summary.json"
CAUSAL_CAVEAT = (
    "SHAP shows what the model uses to predict default, not what causes it: lenders contact "
    "customers they already see as risky (reminders and check-ins go to customers paying late), "
    "so a contact feature can look harmful even where the contact itself helps. The effects "
    "study (EconML) estimates the causal effect of the levers."
)
PD_POINTS_METHOD = (
    "PD points: half the change in PD between adding and removing a feature's mean |SHAP| "
    "(log-odds) at a typical loan, the test split's median log-odds; on the model's raw "
    "(uncalibrated) scale."
)


@dataclass
class Explanation:
    shap: np.ndarray  # n x features, log-odds
    base_value: float
    X: pd.DataFrame
    importance: pd.DataFrame  # one row per feature
    families: pd.DataFrame
    truth: pd.DataFrame | None  # planted vs found (simulated book only)
    median_log_odds: float = 0.0  # the typical loan the PD points refer to
    specs: list[FeatureSpec] = field(default_factory=list)  # in the order of X.columns

    @property
    def median_pd(self) -> float:
        return float(expit(self.median_log_odds))

    @property
    def relationship(self) -> pd.DataFrame:
        return self.importance[self.importance["family"] == "relationship"].reset_index(drop=True)


def run(cfg: Config) -> str:
    latest = train.latest(cfg)
    run_dir = Path(latest["run_dir"])
    tracking.setup(cfg.mlflow)
    model = mlflow.pyfunc.load_model(latest["model_uri"]).unwrap_python_model()
    data = dataset.load(cfg)
    test = data.frame.iloc[data.split.index["test"]]
    if cfg.explain.max_rows and len(test) > cfg.explain.max_rows:
        test = test.sample(cfg.explain.max_rows, random_state=cfg.seed)
    X = model.prepare(test)
    ids = test[data.id_col].to_numpy() if data.id_col in test.columns else X.index.to_numpy()
    ex = explain(
        model.contributions(X),
        X,
        model.specs,
        _truth(cfg),
        cfg.explain.truth_min_attribution,
        monotone_features(model.booster),
    )
    if cfg.explain.stability_refits:
        train_rows = data.frame.iloc[data.split.index["train"]]
        eval_rows = shap_plots.sample_rows(len(X), cfg.explain.stability_rows, cfg.seed)
        refits = shap_stability.refit_contributions(
            model.booster,
            model.prepare(train_rows),
            train_rows[LABEL_COLUMN].to_numpy(),
            train_rows["customer_id"].to_numpy() if "customer_id" in train_rows else None,
            X.iloc[eval_rows],
            cfg.explain.stability_refits,
            cfg.seed,
            cfg.train.n_jobs,
        )
        add_stability(ex, eval_rows, refits)
    files = write_outputs(ex, run_dir, cfg, ids=ids)
    with mlflow.start_run(run_id=latest["run_id"]):
        for path in files:
            mlflow.log_artifact(str(path), "explain")
        metrics = {"explain_rows": len(X), "explain_median_pd_raw": ex.median_pd}
        if ex.truth is not None:
            matched, checked = truth_counts(ex.truth)
            metrics["truth_directions_matched"] = matched
            metrics["truth_effects_checked"] = checked
        mlflow.log_metrics(metrics)
    return headline(ex)


def add_stability(ex: Explanation, rows: np.ndarray, refits: list[np.ndarray]) -> None:
    """Adds `stable_share` to the importance table: the share of refits (SHAP values on
    `ex.X.iloc[rows]`, columns as `ex.specs`) whose direction for a feature is the one this
    model gives on the same rows."""
    X = ex.X.iloc[rows]
    main = [dependence(X[s.name], ex.shap[rows, j], s).direction for j, s in enumerate(ex.specs)]
    agree = np.zeros(len(ex.specs))
    for contribs in refits:
        for j, spec in enumerate(ex.specs):
            agree[j] += dependence(X[spec.name], contribs[:, j], spec).direction == main[j]
    share = dict(zip([s.name for s in ex.specs], agree / max(len(refits), 1), strict=True))
    ex.importance["stable_share"] = ex.importance["feature"].map(share)


def monotone_features(booster) -> frozenset[str]:
    """Features the booster was trained monotone in (its saved parameters)."""
    signs = booster.params.get("monotone_constraints") or []
    names = booster.feature_name()
    return frozenset(n for n, c in zip(names, signs, strict=False) if int(c) != 0)


def write_outputs(
    ex: Explanation, run_dir: Path, cfg: Config, ids: np.ndarray | None = None
) -> list[Path]:
    """Tables (CSV), plots (PNG) and explain_summary.json into `run_dir`; returns the paths.

    ids: loan id of each row of `ex.X` (the waterfall titles and example loans; ids only)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    ids = np.asarray(ids) if ids is not None else ex.X.index.to_numpy()
    written: dict[str, Path] = {}
    for name, table in _tables(ex).items():
        path = run_dir / f"{name}.csv"
        with atomic_path(path) as tmp:
            table.to_csv(tmp, index=False)
        written[name] = path
    plots = shap_plots.make_all(
        ex,
        run_dir,
        ids,
        top=cfg.explain.top_features_plot,
        plot_rows=cfg.explain.plot_rows,
        seed=cfg.seed,
    )
    summary = summary_dict(ex, ids, plots)
    summary["files"] = {
        "tables": {k: p.name for k, p in written.items()},
        "plots": {k: v for k, v in plots.files.items()},
    }
    written["summary"] = write_json(summary, run_dir / SUMMARY_FILE)
    return [*written.values(), *(run_dir / f for f in plots.all_files())]


def explain(
    contribs: np.ndarray,
    X: pd.DataFrame,
    specs: list[FeatureSpec],
    truth: dict | None = None,
    truth_min_attribution: float = TRUTH_MIN_ATTRIBUTION,
    constrained: frozenset[str] = frozenset(),
) -> Explanation:
    """Summaries of SHAP values `contribs` (n x (features + 1), last column the bias), columns
    in the order of `X.columns`; `specs` give family, expected direction and labels; `truth`
    (the simulator's truth.json) adds the planted-vs-found table (see `_truth_table`);
    `constrained` names the features the model was trained monotone in."""
    contribs, specs = specs_for_contributions(contribs, X, specs)
    shap_values = contribs[:, :-1]
    base = float(contribs[:, -1].mean())
    median_lo = float(np.median(contribs.sum(axis=1))) if len(contribs) else 0.0
    mean_abs = np.abs(shap_values).mean(axis=0)
    total = mean_abs.sum() or 1.0
    points = pd_points(mean_abs, median_lo)
    rows = []
    for j, s in enumerate(specs):
        d = dependence(X[s.name], shap_values[:, j], s)
        rows.append(
            {
                "feature": s.name,
                "family": s.family,
                "description": s.description,
                "mean_abs_shap": float(mean_abs[j]),
                "share": float(mean_abs[j] / total),
                "pd_points": float(points[j]),
                "direction": d.direction,
                "rank_corr": d.corr,
                "turns": d.turns,
                "turn_at": d.turn_at,
                "monotonicity": d.note,
                "expected": s.expected,
                "agrees": _agrees(d.direction, s.expected),
                "constrained": s.name in constrained,
            }
        )
    imp = pd.DataFrame(rows).sort_values("mean_abs_shap", ascending=False, ignore_index=True)
    imp.insert(0, "rank", np.arange(1, len(imp) + 1))
    fam = (
        imp.groupby("family", as_index=False)
        .agg(
            mean_abs_shap=("mean_abs_shap", "sum"),
            share=("share", "sum"),
            n_features=("feature", "size"),
        )
        .sort_values("mean_abs_shap", ascending=False, ignore_index=True)
    )
    fam["pd_points"] = pd_points(fam["mean_abs_shap"].to_numpy(), median_lo)
    truth_table = (
        _truth_table(truth, imp, X, shap_values, specs, truth_min_attribution, constrained)
        if truth
        else None
    )
    return Explanation(shap_values, base, X, imp, fam, truth_table, median_lo, specs)


def pd_points(mean_abs_shap: np.ndarray, center_log_odds: float) -> np.ndarray:
    """PD percentage points of a log-odds push of size `mean_abs_shap` at a loan whose log-odds
    are `center_log_odds`: (PD(center + a) - PD(center - a)) / 2 * 100. Symmetric in the sign
    of the push, and for small a about 100 * a * p * (1 - p)."""
    a = np.asarray(mean_abs_shap, dtype=float)
    return 100 * (expit(center_log_odds + a) - expit(center_log_odds - a)) / 2


@dataclass(frozen=True)
class Dependence:
    direction: str  # lowers | raises | none | n/a (categorical)
    corr: float  # Spearman of feature value vs its SHAP value
    turns: bool
    turn_at: float  # feature value at the inner extreme of the binned dependence (NaN if none)
    note: str  # plain words, e.g. "turns at 2.0 contacts a month: up to there more of it ..."


def dependence(x: pd.Series, s: np.ndarray, spec: FeatureSpec | None = None) -> Dependence:
    """Sign of the dependence (Spearman correlation of the feature with its SHAP value) and
    where it turns, if it does."""
    if spec is not None and spec.kind == "categorical":
        return Dependence("n/a", float("nan"), False, float("nan"), "categorical")
    v = pd.to_numeric(x, errors="coerce").to_numpy(dtype=float)
    s = np.asarray(s, dtype=float)
    ok = np.isfinite(v)
    if ok.sum() < 10 or np.nanstd(v[ok]) == 0:
        return Dependence("none", float("nan"), False, float("nan"), "constant or too few values")
    corr = float(pd.Series(v[ok]).rank().corr(pd.Series(s[ok]).rank()))
    if not np.isfinite(corr) or abs(corr) < MIN_DIRECTION_CORR:
        direction = "none"
    else:
        direction = "raises" if corr > 0 else "lowers"
    shape, at = _turn(v[ok], s[ok])
    fmt = spec.readable if spec is not None else (lambda value: f"{value:g}")
    if shape == "valley":
        note = f"turns at {fmt(at)}: up to there more of it lowers PD, beyond it raises PD"
    elif shape == "peak":
        note = f"turns at {fmt(at)}: up to there more of it raises PD, beyond it lowers PD"
    elif direction == "none":
        note = "no clear direction"
    else:
        note = f"monotone: more of it {direction} PD"
    return Dependence(direction, corr, shape is not None, at, note)


def _turn(v: np.ndarray, s: np.ndarray, bins: int = 10) -> tuple[str | None, float]:
    """("valley" | "peak" | None, feature value at the turn): whether the binned dependence goes
    down and then up (or up then down) materially, and at which bin's mean value."""
    curve = binned_dependence(v, s, bins)
    if len(curve) < 3:
        return None, float("nan")
    y = curve["mean_shap"].to_numpy()
    spread = y.max() - y.min()
    if spread <= 0:
        return None, float("nan")
    lo, hi = int(np.argmin(y)), int(np.argmax(y))
    inner_min = 0 < lo < len(y) - 1 and min(y[0], y[-1]) - y[lo] > TURN_SHARE * spread
    inner_max = 0 < hi < len(y) - 1 and y[hi] - max(y[0], y[-1]) > TURN_SHARE * spread
    if inner_min and (not inner_max or min(y[0], y[-1]) - y[lo] >= y[hi] - max(y[0], y[-1])):
        return "valley", float(curve["value"].iloc[lo])
    if inner_max:
        return "peak", float(curve["value"].iloc[hi])
    return None, float("nan")


def binned_dependence(v: np.ndarray, s: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Mean SHAP value per quantile bin of the feature (distinct values when there are few)."""
    df = pd.DataFrame({"v": v, "s": s})
    if df["v"].nunique() <= bins:
        g = df.groupby("v")
    else:
        g = df.groupby(pd.qcut(df["v"], bins, duplicates="drop"), observed=True)
    out = g.agg(value=("v", "mean"), mean_shap=("s", "mean"), n=("s", "size"))
    return out.reset_index(drop=True)


def _agrees(direction: str, expected: str) -> bool | None:
    if expected == "unknown" or direction in ("n/a", "none"):
        return None
    return direction == expected


def _truth(cfg: Config) -> dict | None:
    path = Path(cfg.data.raw_dir) / "truth" / "truth.json"
    if cfg.data.kind != "tables" or not path.exists():
        return None
    return json.loads(path.read_text())


def _truth_table(
    truth,
    imp,
    X,
    shap_values,
    specs,
    min_attribution: float = TRUTH_MIN_ATTRIBUTION,
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


def relationship_answer(ex: Explanation, top: int = 5) -> list[str]:
    """Plain-words, ranked answer to "which relationship factors reduce default"."""
    rel = ex.relationship
    lowers = rel[rel["direction"] == "lowers"]
    raises = rel[rel["direction"] == "raises"]
    lines = []
    if lowers.empty:
        lines.append("No relationship factor lowers the predicted PD clearly.")
    for i, r in enumerate(lowers.head(top).itertuples(), start=1):
        lines.append(
            f"{i}. {r.description}: more of it lowers PD, about {r.pd_points:.2f} PD points "
            f"for a typical loan ({r.share:.1%} of all attribution)" + _turn_clause(r) + "."
        )
    if not raises.empty:
        worst = "; ".join(
            f"{r.description} ({r.pd_points:.2f} PD points)" for r in raises.head(3).itertuples()
        )
        lines.append(f"Relationship factors that go with higher PD: {worst}.")
    return lines


def caveats(ex: Explanation) -> list[str]:
    """One sentence per relationship factor whose direction disagrees with the expected one."""
    rel = ex.relationship
    out = []
    for r in rel[rel["agrees"].eq(False)].itertuples():  # None (no expectation) is not False
        out.append(
            f"{r.description}: the business expects more of it to {_verb(r.expected)} PD, but in "
            f"the model it {r.direction} PD. This is an association, not a cause: lenders "
            "contact and follow up risky customers more, and SHAP is not causal."
        )
    return out


def _verb(direction: str) -> str:
    return {"lowers": "lower", "raises": "raise"}.get(direction, direction)


def _turn_clause(r) -> str:
    return f"; it {r.monotonicity}" if r.turns else ""


def headline(ex: Explanation) -> str:
    """The plain-words answer to "which relationship factors reduce default", in one paragraph."""
    rel = ex.relationship
    lowers = rel[rel["direction"] == "lowers"].head(5)
    parts = [
        f"{r.description} ({r.pd_points:.2f} PD points, {r.share:.1%} of attribution)"
        for r in lowers.itertuples()
    ]
    fam = ", ".join(f"{r.family} {r.share:.0%}" for r in ex.families.itertuples())
    text = "Relationship factors that lower the predicted PD, strongest first: " + (
        "; ".join(parts) if parts else "none found"
    )
    text += (
        f". PD points are for a typical loan (median PD {ex.median_pd:.2%}). "
        f"Attribution by family: {fam}."
    )
    for r in rel[rel["turns"]].head(2).itertuples():
        text += f" {r.description}: {r.monotonicity}."
    n_disagree = int(rel["agrees"].eq(False).sum())
    if n_disagree:
        text += (
            f" {n_disagree} relationship factor(s) go against the expected direction; SHAP is "
            "not causal (see the caveats)."
        )
    if ex.truth is not None:
        matched, checked = truth_counts(ex.truth)
        text += f" Planted effects recovered: {matched} of the {checked} SHAP can show."
    return text


def summary_dict(ex: Explanation, ids: np.ndarray, plots=None) -> dict:
    """explain_summary.json: what the HTML report shows first (JSON-able).

    headline (str), answer (ranked plain-words lines), relationship_factors (ranked records:
    relationship_rank, rank, feature, description, mean_abs_shap, share, pd_points, direction,
    turns, turn_at, monotonicity, expected, agrees), families, pd_translation (method,
    median_log_odds, median_pd, base_value), caveats (one per disagreeing factor),
    causal_caveat, n_rows, truth (matched, checked, table) or None; with plots: plot_rows,
    example_loans (label, loan_id, pd_raw, raises_pd, lowers_pd, file), interactions
    ({feature: colour feature}), unused_relationship_factors; `write_outputs` adds files
    ({tables: {name: csv}, plots: {kind: png or {feature: png}}})."""
    rel_cols = [
        "rank",
        "feature",
        "description",
        "mean_abs_shap",
        "share",
        "pd_points",
        "direction",
        "turns",
        "turn_at",
        "monotonicity",
        "expected",
        "agrees",
        "constrained",
        "stable_share",
    ]
    rel = ex.relationship[[c for c in rel_cols if c in ex.importance.columns]].copy()
    rel.insert(0, "relationship_rank", np.arange(1, len(rel) + 1))
    out = {
        "headline": headline(ex),
        "answer": relationship_answer(ex),
        "relationship_factors": _records(rel),
        "families": _records(ex.families),
        "pd_translation": {
            "method": PD_POINTS_METHOD,
            "median_log_odds": ex.median_log_odds,
            "median_pd": ex.median_pd,
            "base_value": ex.base_value,
        },
        "caveats": caveats(ex),
        "causal_caveat": CAUSAL_CAVEAT,
        "n_rows": len(ex.X),
        "truth": None,
    }
    if ex.truth is not None:
        matched, checked = truth_counts(ex.truth)
        out["truth"] = {"matched": matched, "checked": checked, "table": _records(ex.truth)}
    if plots is not None:
        out["plot_rows"] = plots.rows
        out["example_loans"] = plots.examples
        out["interactions"] = plots.interactions
        out["unused_relationship_factors"] = plots.unused
    return out


def _records(df: pd.DataFrame) -> list[dict]:
    """Rows as JSON-able dicts (NaN -> None, numpy scalars -> Python)."""
    clean = df.astype(object).where(df.notna(), None)
    return [
        {k: (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()}
        for row in clean.to_dict(orient="records")
    ]


def _tables(ex: Explanation) -> dict[str, pd.DataFrame]:
    out = {"shap_importance": ex.importance, "shap_by_family": ex.families}
    out["relationship_factors"] = ex.relationship
    if ex.truth is not None:
        out["truth_recovery"] = ex.truth
    return out
