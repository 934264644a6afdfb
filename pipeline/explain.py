"""Explain: which features, and which relationship factors, the model uses to lower or raise PD.

Exact tree SHAP values (LightGBM's `pred_contrib`, the same numbers `shap.TreeExplainer` gives
for a LightGBM model, in log-odds) on the whole test split. Per feature: mean |SHAP|, share of the
total, the direction of the dependence (does more of it lower PD?) and whether it turns; per
family: the totals; on the simulated book: the planted effects against what the model found.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import mlflow  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from pipeline import dataset, tracking, train  # noqa: E402
from pipeline.config import Config  # noqa: E402
from pipeline.metadata import FeatureSpec  # noqa: E402

log = logging.getLogger(__name__)
# A dependence whose SHAP rank correlation is weaker than this has no clear direction.
MIN_DIRECTION_CORR = 0.05


@dataclass
class Explanation:
    shap: np.ndarray  # n x features, log-odds
    base_value: float
    X: pd.DataFrame
    importance: pd.DataFrame  # one row per feature
    families: pd.DataFrame
    truth: pd.DataFrame | None  # planted vs found (simulated book only)


def run(cfg: Config) -> str:
    latest = train.latest(cfg)
    run_dir = Path(latest["run_dir"])
    tracking.setup(cfg.mlflow)
    model = mlflow.pyfunc.load_model(latest["model_uri"]).unwrap_python_model()
    data = dataset.load(cfg)
    X = model.prepare(data.frame.iloc[data.split.index["test"]])
    if cfg.explain.max_rows and len(X) > cfg.explain.max_rows:
        X = X.sample(cfg.explain.max_rows, random_state=cfg.seed)
    ex = explain(model.contributions(X), X, data.specs, _truth(cfg))
    figures = {
        "shap_by_family.png": family_plot(ex.families),
        "shap_top_features.png": importance_plot(ex.importance, cfg.explain.top_features_plot),
    }
    with mlflow.start_run(run_id=latest["run_id"]):
        for name, table in _tables(ex).items():
            path = run_dir / f"{name}.csv"
            table.to_csv(path, index=False)
            mlflow.log_artifact(str(path), "explain")
        for name, fig in figures.items():
            fig.savefig(run_dir / name, dpi=110, bbox_inches="tight")
            mlflow.log_figure(fig, f"explain/{name}")
            plt.close(fig)
        if ex.truth is not None:
            matched = int(ex.truth["matches"].sum())
            mlflow.log_metrics(
                {"truth_directions_matched": matched, "truth_effects_checked": len(ex.truth)}
            )
    return headline(ex)


def explain(
    contribs: np.ndarray, X: pd.DataFrame, specs: list[FeatureSpec], truth: dict | None = None
) -> Explanation:
    """Summaries of SHAP values `contribs` (n x (features + 1), last column the bias)."""
    shap_values = contribs[:, :-1]
    base = float(contribs[:, -1].mean())
    mean_abs = np.abs(shap_values).mean(axis=0)
    total = mean_abs.sum() or 1.0
    rows = []
    for j, s in enumerate(specs):
        direction, corr, turns = _direction(X[s.name], shap_values[:, j], s.kind)
        rows.append(
            {
                "feature": s.name,
                "family": s.family,
                "description": s.description,
                "mean_abs_shap": float(mean_abs[j]),
                "share": float(mean_abs[j] / total),
                "direction": direction,
                "rank_corr": corr,
                "turns": turns,
                "expected": s.expected,
                "agrees": _agrees(direction, s.expected),
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
    truth_table = _truth_table(truth, imp, X, shap_values, specs) if truth else None
    return Explanation(shap_values, base, X, imp, fam, truth_table)


def _direction(x: pd.Series, s: np.ndarray, kind: str) -> tuple[str, float, bool]:
    """Sign of the dependence: Spearman correlation of the feature with its SHAP value."""
    if kind == "categorical":
        return "n/a", float("nan"), False
    v = pd.to_numeric(x, errors="coerce").to_numpy(dtype=float)
    ok = np.isfinite(v)
    if ok.sum() < 10 or np.nanstd(v[ok]) == 0:
        return "none", float("nan"), False
    corr = float(pd.Series(v[ok]).rank().corr(pd.Series(s[ok]).rank()))
    if not np.isfinite(corr) or abs(corr) < MIN_DIRECTION_CORR:
        direction = "none"
    else:
        direction = "raises" if corr > 0 else "lowers"
    return direction, corr, _turns(v[ok], s[ok])


def _turns(v: np.ndarray, s: np.ndarray, bins: int = 10) -> bool:
    """Whether the binned dependence goes down and then up (or up then down) materially."""
    curve = binned_dependence(v, s, bins)
    if len(curve) < 3:
        return False
    y = curve["mean_shap"].to_numpy()
    spread = y.max() - y.min()
    if spread <= 0:
        return False
    lo, hi = int(np.argmin(y)), int(np.argmax(y))
    inner_min = 0 < lo < len(y) - 1 and min(y[0], y[-1]) - y[lo] > 0.25 * spread
    inner_max = 0 < hi < len(y) - 1 and y[hi] - max(y[0], y[-1]) > 0.25 * spread
    return bool(inner_min or inner_max)


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


def _truth_table(truth, imp, X, shap_values, specs) -> pd.DataFrame:
    """Planted effect vs the direction the model found, for every effect with a feature here."""
    pos = {s.name: j for j, s in enumerate(specs)}
    rank = dict(zip(imp["feature"], imp["rank"], strict=True))
    rows = []
    for name, eff in truth["effects"].items():
        feature = next((f for f in eff["features"] if f in pos), None)
        if feature is None:
            continue
        j = pos[feature]
        v = pd.to_numeric(X[feature], errors="coerce").to_numpy(dtype=float)
        s = shap_values[:, j]
        if "threshold_per_month" in eff:
            # Fatigue: the direction above the threshold is the planted one.
            above = np.isfinite(v) & (v > eff["threshold_per_month"])
            found = (
                _direction(pd.Series(v[above]), s[above], "numeric")[0]
                if above.sum() >= 10
                else "none"
            )
        else:
            found = _direction(X[feature], s, "numeric")[0]
        planted = eff["feature_direction"]
        rows.append(
            {
                "effect": name,
                "kind": eff["kind"],
                "planted_size": eff["size"],
                "feature": feature,
                "planted_direction": planted,
                "found_direction": found,
                "matches": (found == "none") if planted == "none" else (found == planted),
                "mean_abs_shap": float(np.abs(s).mean()),
                "rank": rank[feature],
            }
        )
    return pd.DataFrame(rows)


def headline(ex: Explanation) -> str:
    """The plain-words answer to "which relationship factors reduce default"."""
    rel = ex.importance[ex.importance["family"] == "relationship"]
    lowers = rel[rel["direction"] == "lowers"].head(5)
    parts = [f"{r.description} ({r.share:.1%} of attribution)" for r in lowers.itertuples()]
    fam = ", ".join(f"{r.family} {r.share:.0%}" for r in ex.families.itertuples())
    text = "Relationship factors that lower the predicted PD, strongest first: " + (
        "; ".join(parts) if parts else "none found"
    )
    text += f". Attribution by family: {fam}."
    if ex.truth is not None:
        text += (
            f" Planted effects recovered in direction: {int(ex.truth['matches'].sum())} of "
            f"{len(ex.truth)}."
        )
    return text


def _tables(ex: Explanation) -> dict[str, pd.DataFrame]:
    out = {"shap_importance": ex.importance, "shap_by_family": ex.families}
    out["relationship_factors"] = ex.importance[ex.importance["family"] == "relationship"]
    if ex.truth is not None:
        out["truth_recovery"] = ex.truth
    return out


def family_plot(families: pd.DataFrame):
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.barh(families["family"][::-1], families["share"][::-1], color="#4477aa")
    ax.set_xlabel("share of mean |SHAP| (log-odds attribution)")
    ax.set_title("Attribution by feature family")
    return fig


def importance_plot(imp: pd.DataFrame, top: int):
    t = imp.head(top)[::-1]
    colours = t["direction"].map({"lowers": "#228833", "raises": "#cc3311"}).fillna("#999999")
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(t) + 1.2))
    ax.barh(t["feature"], t["mean_abs_shap"], color=colours)
    ax.set_xlabel("mean |SHAP| (log-odds); green = more of it lowers PD, red = raises")
    ax.set_title(f"Top {len(t)} features")
    return fig
