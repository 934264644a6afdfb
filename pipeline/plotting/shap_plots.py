"""SHAP plots of the explain stage, saved as PNG beside the tables (stable file names).

    shap_by_family.png                 bar chart of attribution by feature family
    shap_top_features.png              mean |SHAP| of the top features, coloured by direction
    shap_beeswarm.png                  shap.plots.beeswarm of the top features
    shap_dependence_<feature>.png      one per relationship factor the model uses (SHAP not 0
                                       everywhere), coloured by the interaction feature
                                       shap.utils.approximate_interactions picks
    shap_waterfall_{low,median,high}.png   three example loans, labelled from the metadata

The plots use a seeded sample of `plot_rows` rows (a beeswarm of 100k points says no more than
one of 5k, and costs far more); the waterfall loans are picked on the whole split. The beeswarm
and dependence plots draw on our own `Figure`; shap's waterfall only draws on pyplot's current
figure, so it runs inside `pyplot_scope` (a fresh figure, closed afterwards).
"""

from __future__ import annotations

import textwrap
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import shap
from matplotlib.figure import Figure
from scipy.special import expit

from pipeline.core import catalogue
from pipeline.core.catalogue import RunFiles
from pipeline.core.metadata import FeatureSpec
from pipeline.plotting.figures import (
    DPI,
    global_numpy_seed,
    new_figure,
    pyplot_scope,
    save_png,
)
from pipeline.riskmath.attribution import Explanation
from pipeline.riskmath.reasons import top_k_indices

# Quantiles of the predicted log-odds that pick the three example loans: extreme enough to
# show a clearly low and a clearly high risk, not the single most extreme (often odd) loan.
EXAMPLE_QUANTILES = {"low": 0.02, "median": 0.5, "high": 0.98}
WATERFALL_FEATURES = 10
LABEL_CHARS = 70
TITLE_CHARS = 60
# The report shows the dependence plots two abreast (about 540 px each at 1280 px): drawn at
# that size, their dozens of scatters weigh half what they do at the default dpi.
DEPENDENCE_DPI = 80
INTERACTION_ROWS = 1000
# Values that describe the person behind a loan: shown by name only beside a loan id.
PERSONAL_FEATURES = frozenset({"annual_income", "customer_age_years"})


@dataclass
class PlotSet:
    """What was drawn: file names by kind, the rows used, the example loans, the interactions."""

    files: dict = field(default_factory=dict)  # kind -> file name, or {feature: file name}
    rows: int = 0
    examples: list[dict] = field(default_factory=list)
    interactions: dict[str, str] = field(default_factory=dict)  # feature -> colour feature
    unused: list[str] = field(default_factory=list)  # relationship factors with SHAP 0 everywhere

    def all_files(self) -> list[str]:
        out = []
        for v in self.files.values():
            out += list(v.values()) if isinstance(v, dict) else [v]
        return out


def sample_rows(n: int, size: int, seed: int) -> np.ndarray:
    """At most `size` of `n` row positions, drawn without replacement, in order (the plots'
    sample, and the rows explain reads the stability refits on)."""
    if n <= size:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size, replace=False))


def make_all(
    ex: Explanation, files: RunFiles, ids: np.ndarray, top: int, plot_rows: int, seed: int = 0
) -> PlotSet:
    """Draw and save every plot into the run's folder; `ids` are the loan ids of the rows of
    `ex.X`."""
    specs = _specs(ex)
    out = PlotSet()
    sample = sample_rows(len(ex.X), plot_rows, seed)
    out.rows = len(sample)
    values = ex.shap[sample]
    X_num = numeric_frame(ex.X.iloc[sample])

    out.files["family"] = _save(family_plot(ex.families), files.png(catalogue.SHAP_FAMILY_PNG))
    out.files["top_features"] = _save(
        importance_plot(ex.importance, top), files.png(catalogue.SHAP_TOP_PNG)
    )
    out.files["beeswarm"] = _save(
        beeswarm_plot(values, ex.base_value, X_num, top), files.png(catalogue.SHAP_BEESWARM_PNG)
    )
    dep = {}
    # An earlier explain of this run may have drawn another set of factors.
    for old in files.root.glob(catalogue.shap_dependence_png("*")):
        old.unlink()
    rel = ex.relationship
    for name, used in zip(rel["feature"], rel["mean_abs_shap"] > 0, strict=True):
        if not used:  # the model never splits on it: a flat line at zero says nothing
            out.unused.append(name)
            continue
        fig, partner = dependence_plot(name, values, X_num, specs[name])
        out.interactions[name] = partner
        # shap's colour bar escapes the layout engine: only the tight bounding box keeps its
        # label and the title on the picture (it draws the figure twice).
        dep[name] = _save(fig, files.png(catalogue.shap_dependence_png(name)), DEPENDENCE_DPI)
    out.files["dependence"] = dep

    log_odds = ex.shap.sum(axis=1) + ex.base_value
    wf = {}
    for label, i in example_rows(log_odds).items():
        fig = waterfall_plot(ex, i, specs, title=f"Loan {ids[i]}: {label} risk")
        wf[label] = _save(fig, files.png(catalogue.shap_waterfall_png(label)))
        labels = loan_labels(ex, i, specs)
        up, down = top_k_indices(ex.shap[[i]], 3)[0], top_k_indices(-ex.shap[[i]], 3)[0]
        out.examples.append(
            {
                "label": label,
                "loan_id": _plain(ids[i]),
                "pd_raw": float(expit(log_odds[i])),
                "raises_pd": [labels[j] for j in up if ex.shap[i, j] > 0],
                "lowers_pd": [labels[j] for j in down if ex.shap[i, j] < 0],
                "file": wf[label],
            }
        )
    out.files["waterfall"] = wf
    return out


def example_rows(log_odds: np.ndarray) -> dict[str, int]:
    """Row index of the loan nearest each of EXAMPLE_QUANTILES of the predicted log-odds."""
    if not len(log_odds):
        return {}
    order = np.argsort(log_odds, kind="stable")
    return {
        k: int(order[min(int(round(q * (len(order) - 1))), len(order) - 1)])
        for k, q in EXAMPLE_QUANTILES.items()
    }


def numeric_frame(X: pd.DataFrame) -> pd.DataFrame:
    """Categoricals as their codes (missing -> NaN): shap's colouring and interaction search need
    numbers."""
    out = {}
    for c in X.columns:
        col = X[c]
        if isinstance(col.dtype, pd.CategoricalDtype):
            codes = col.cat.codes.to_numpy(dtype=float)
            codes[codes < 0] = np.nan
            out[c] = codes
        else:
            out[c] = pd.to_numeric(col, errors="coerce").to_numpy(dtype=float)
    return pd.DataFrame(out, index=X.index)


def family_plot(families: pd.DataFrame) -> Figure:
    fig, ax = new_figure((6, 3), layout=None)
    ax.barh(families["family"][::-1], families["share"][::-1], color="#4477aa")
    ax.set_xlabel("share of mean |SHAP| (log-odds attribution)")
    ax.set_title("Attribution by feature family")
    return fig


def importance_plot(imp: pd.DataFrame, top: int) -> Figure:
    t = imp.head(top)[::-1]
    colours = t["direction"].map({"lowers": "#228833", "raises": "#cc3311"}).fillna("#999999")
    fig, ax = new_figure((7, 0.3 * len(t) + 1.2), layout=None)
    ax.barh(t["feature"], t["mean_abs_shap"], color=colours)
    ax.set_xlabel("mean |SHAP| (log-odds); green = more of it lowers PD, red = raises")
    ax.set_title(f"Top {len(t)} features")
    return fig


def beeswarm_plot(values: np.ndarray, base: float, X_num: pd.DataFrame, top: int) -> Figure:
    explanation = shap.Explanation(
        values=values,
        base_values=np.full(len(values), base),
        data=X_num.to_numpy(),
        feature_names=list(X_num.columns),
    )
    fig, ax = new_figure((8, 0.35 * top + 1.5), layout=None)
    with global_numpy_seed(0):
        shap.plots.beeswarm(explanation, max_display=top, show=False, ax=ax, plot_size=None)
    ax.set_title(f"SHAP values (log-odds) of the top {top} features")
    return fig


def dependence_plot(
    name: str, values: np.ndarray, X_num: pd.DataFrame, spec: FeatureSpec
) -> tuple[Figure, str]:
    """(figure, name of the interaction feature used for colour)."""
    j = X_num.columns.get_loc(name)
    # The partner ranking settles on a thousand rows; on all plot rows it cost ~0.8 s a plot.
    step = max(1, len(X_num) // INTERACTION_ROWS)  # strided: the rows are in date order
    order = shap.utils.approximate_interactions(j, values[::step], X_num.iloc[::step])
    partner = next(int(k) for k in order if int(k) != j) if X_num.shape[1] > 1 else j
    fig, ax = new_figure((6, 4))
    # shap adds the colour bar through pyplot.colorbar, on pyplot's current figure, which
    # matplotlib places beside our axes (and warns about); the scope closes that figure.
    with pyplot_scope(), global_numpy_seed(0), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Adding colorbar to a different Figure")
        shap.dependence_plot(
            j,
            values,
            X_num,
            interaction_index=partner,
            ax=ax,
            show=False,
        )
    # shap's 13-point title runs off a 6-inch figure past ~55 characters: wrap it instead.
    ax.set_title(textwrap.fill(spec.description, TITLE_CHARS), fontsize=11)
    ax.set_ylabel("SHAP value (log-odds)")
    return fig, str(X_num.columns[partner])


def waterfall_plot(ex: Explanation, i: int, specs: dict[str, FeatureSpec], title: str) -> Figure:
    """Waterfall of one loan with readable labels ("3 late instalments in the last 6 months")
    in place of column names."""
    labels = [_short(t) for t in loan_labels(ex, i, specs)]
    explanation = shap.Explanation(
        values=ex.shap[i], base_values=ex.base_value, data=None, feature_names=labels
    )
    with pyplot_scope() as fig:  # shap's waterfall draws on pyplot's current figure only
        shap.plots.waterfall(explanation, max_display=WATERFALL_FEATURES, show=False)
    p = float(expit(ex.shap[i].sum() + ex.base_value))
    fig.suptitle(f"{title}, raw PD {p:.1%} (log-odds contributions)", y=1.02)
    return fig


def loan_labels(ex: Explanation, i: int, specs: dict[str, FeatureSpec]) -> list[str]:
    """Readable label of every feature of row i, in column order; personal features (income,
    age) by their description only, so a report naming a loan id shows no personal value."""
    row = ex.X.iloc[i]
    return [
        specs[c].description
        if c in PERSONAL_FEATURES
        else specs[c].readable(None if pd.isna(row[c]) else row[c])
        for c in ex.X.columns
    ]


def _specs(ex: Explanation) -> dict[str, FeatureSpec]:
    return {sp.name: sp for sp in ex.specs}


def _short(text: str) -> str:
    return text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1] + "…"


def _plain(v):
    return v.item() if isinstance(v, np.generic) else v


def _save(fig: Figure, path: Path, dpi: int = DPI) -> str:
    return save_png(fig, path, dpi=dpi).name
