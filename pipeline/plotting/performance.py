"""Credit-risk plots for the evaluation report and MLflow.

Every function builds and returns a `matplotlib.figure.Figure` drawn by the Agg canvas. The
figures are created without pyplot, so nothing is registered in pyplot's global figure list:
no `plt.show()`, nothing to close, no memory kept after the caller drops the figure, and the
caller's own backend and figures are untouched. Save with `fig.savefig(path, dpi=...)` or log
with `mlflow.log_figure(fig, "plots/roc.png")`.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter, PercentFormatter
from numpy.typing import ArrayLike

from pipeline.config import ScoringConfig
from pipeline.plotting.figures import blank_figure, new_figure
from pipeline.riskmath import metrics, stability
from pipeline.riskmath.scaling import PD_CLIP, points, tier_bounds_points

__all__ = [
    "STATUS_COLOURS",
    "calibration_plot",
    "gains_plot",
    "ks_plot",
    "psi_plot",
    "roc_curve_plot",
    "score_distribution_plot",
]

STATUS_COLOURS = {"stable": "#2e7d32", "warning": "#f9a825", "alert": "#c62828", "n/a": "#9e9e9e"}
_GOOD_COLOUR = "#1f77b4"
_BAD_COLOUR = "#d62728"


def roc_curve_plot(
    y: ArrayLike | Mapping[str, tuple[ArrayLike, ArrayLike]],
    p: ArrayLike | None = None,
    label: str = "model",
) -> Figure:
    """ROC curves: one line per split plus the random diagonal (1 axes, n_splits + 1 lines).

    Call as `roc_curve_plot(y, p, "test")` or with several splits
    `roc_curve_plot({"train": (y_tr, p_tr), "test": (y_te, p_te)})`. Each legend entry gives
    the AUC. A split with a single class raises ValueError.
    """
    curves = _as_curves(y, p, label)
    fig, ax = new_figure((6, 5.5))
    for name, (y_s, p_s) in curves.items():
        curve = _split_curve(name, y_s, p_s)
        fpr = np.r_[0.0, curve["cum_good_share"].to_numpy()]
        tpr = np.r_[0.0, curve["cum_bad_share"].to_numpy()]
        ax.plot(fpr, tpr, lw=1.8, label=f"{name} (AUC {metrics.auc(y_s, p_s):.3f})")
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="random (AUC 0.5)")
    ax.set(xlim=(0, 1), ylim=(0, 1.01), title="ROC curve")
    ax.set_xlabel("False positive rate (% of non-defaults flagged)")
    ax.set_ylabel("True positive rate (% of defaults flagged)")
    _percent_axes(ax, "xy")
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    return fig


def ks_plot(y: ArrayLike, p: ArrayLike, cfg: ScoringConfig | None = None) -> Figure:
    """Cumulative distributions of defaults and non-defaults with the KS gap marked.

    With `cfg` the x axis is the score in points (ascending, riskiest left) and the curves give
    the share of each class scoring at or below x; without it the x axis is the PD cut-off on a
    log scale, reversed so the riskiest loans are again on the left, and the curves give the
    share with PD >= x. Both read the same: the KS is the largest vertical gap.
    1 axes, 3 lines (defaults, non-defaults, the KS marker).
    """
    curve = metrics.ks_curve(y, p)
    result = metrics.ks(y, p)
    cutoffs = curve["cutoff"].to_numpy()
    fig, ax = new_figure((7, 5))
    if cfg is not None:
        x = points(cutoffs, cfg)
        ks_x = float(points(np.array([result.cutoff]), cfg)[0])
        ax.set_xlabel("Score (points; higher = safer)")
        where = f"score {ks_x:.0f}"
    else:
        x = np.clip(cutoffs, PD_CLIP, 1.0)
        ks_x = max(result.cutoff, PD_CLIP)
        ax.set_xscale("log")
        ax.set_xlabel("PD cut-off (probability of default, log scale; riskiest left)")
        _log_percent_axis(ax, float(np.nanmin(x)), float(np.nanmax(x)))
        where = f"PD {result.cutoff:.2%}"
    bad = curve["cum_bad_share"].to_numpy()
    good = curve["cum_good_share"].to_numpy()
    ax.plot(x, bad, drawstyle="steps-post", color=_BAD_COLOUR, lw=1.8, label="defaults")
    ax.plot(x, good, drawstyle="steps-post", color=_GOOD_COLOUR, lw=1.8, label="non-defaults")
    best = int(np.argmax(curve["gap"].to_numpy()))
    ax.plot(
        [ks_x, ks_x],
        [good[best], bad[best]],
        color="black",
        lw=2,
        marker="_",
        label=f"KS = {result.statistic:.3f}" + ("" if np.isnan(result.cutoff) else f" at {where}"),
    )
    if cfg is None:
        ax.invert_xaxis()
    else:
        # Near-certain defaults (PD ~ 1) score far below the rest: show the central 99.8%.
        n_bad = float(np.sum(np.asarray(y, dtype="float64")))
        n_good = float(np.size(y)) - n_bad
        pooled = (bad * n_bad + good * n_good) / (n_bad + n_good)  # share with PD >= cut-off
        inside = x[(pooled >= 0.001) & (pooled <= 0.999)]
        if inside.size >= 2:
            pad = 0.03 * (inside.max() - inside.min())
            ax.set_xlim(inside.min() - pad, inside.max() + pad)
    ax.set_ylim(0, 1.01)
    ax.set_ylabel("Cumulative share of class (%)")
    _percent_axes(ax, "y")
    ax.set_title("Kolmogorov-Smirnov separation")
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    return fig


def gains_plot(gains_table: pd.DataFrame) -> Figure:
    """Cumulative capture curve (left) and lift by decile (right) from `metrics.gains_table`.

    Left: share of all defaults captured vs share of loans reviewed, riskiest first, with the
    random and perfect-model curves (3 lines). Right: lift bars per decile, the cumulative
    lift line and the lift = 1 line (2 lines). 2 axes.
    """
    _require(gains_table, ["decile", "n", "cum_n", "cum_defaults", "cum_capture", "lift"])
    if gains_table.empty:
        raise ValueError("gains_plot: the gains table is empty")
    total_n = float(gains_table["cum_n"].iloc[-1])
    total_bad = float(gains_table["cum_defaults"].iloc[-1])
    fig = blank_figure((11, 4.8))
    ax_cap, ax_lift = fig.subplots(1, 2)

    share = np.r_[0.0, gains_table["cum_n"].to_numpy() / total_n]
    capture = np.r_[0.0, gains_table["cum_capture"].to_numpy()]
    ax_cap.plot(share, capture, marker="o", lw=1.8, label="model")
    ax_cap.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="random")
    rate = total_bad / total_n if total_n else np.nan
    grid = np.linspace(0, 1, 201)
    perfect = np.minimum(grid / rate, 1.0) if rate > 0 else np.full_like(grid, np.nan)
    ax_cap.plot(grid, perfect, ls=":", color="black", lw=1, label="perfect")
    ax_cap.set(xlim=(0, 1), ylim=(0, 1.01), title="Cumulative capture of defaults")
    ax_cap.set_xlabel("Loans reviewed, riskiest first (% of portfolio)")
    ax_cap.set_ylabel("Defaults captured (% of all defaults)")
    _percent_axes(ax_cap, "xy")
    ax_cap.legend(loc="lower right")
    ax_cap.grid(alpha=0.3)

    deciles = gains_table["decile"].to_numpy()
    ax_lift.bar(deciles, gains_table["lift"].to_numpy(), color="#5c6bc0", label="lift")
    if "cum_lift" in gains_table:
        ax_lift.plot(
            deciles,
            gains_table["cum_lift"].to_numpy(),
            marker="o",
            color="black",
            label="cum. lift",
        )
    ax_lift.axhline(1.0, ls="--", color="grey", lw=1, label="no lift")
    ax_lift.set_xticks(deciles)
    ax_lift.set_title("Lift by PD decile")
    ax_lift.set_xlabel("PD decile (1 = riskiest)")
    ax_lift.set_ylabel("Lift (default rate / overall default rate, x)")
    ax_lift.legend(loc="upper right")
    ax_lift.grid(alpha=0.3, axis="y")
    return fig


def calibration_plot(calibration_tables: Mapping[str, pd.DataFrame]) -> Figure:
    """Reliability curves: observed default rate vs mean PD per bin, one line per table, with
    Wilson 95% intervals as vertical bars, and the diagonal of perfect calibration.

    `calibration_tables` maps a split name to `metrics.calibration_table(...)`. 1 axes,
    len(tables) + 1 lines. Axes span the data (PDs are usually small), not [0, 1].
    """
    if not calibration_tables:
        raise ValueError("calibration_plot: no tables given")
    fig, ax = new_figure((6, 5.5))
    top = 0.0
    for name, table in calibration_tables.items():
        _require(table, ["mean_pd", "observed_rate"])
        x = table["mean_pd"].to_numpy()
        obs = table["observed_rate"].to_numpy()
        hl = table.attrs.get("hosmer_lemeshow")
        label = name if hl is None else f"{name} (HL chi2 {hl:.1f})"
        (line,) = ax.plot(x, obs, marker="o", lw=1.5, label=label)
        if {"observed_lo", "observed_hi"} <= set(table.columns):
            ax.vlines(
                x, table["observed_lo"], table["observed_hi"], color=line.get_color(), alpha=0.4
            )
            top = max(top, float(np.nanmax(table["observed_hi"].to_numpy())))
        top = max(top, float(np.nanmax(x)), float(np.nanmax(obs)))
    top = min(1.0, top * 1.05) if top > 0 else 1.0
    ax.plot([0, top], [0, top], ls="--", color="grey", lw=1, label="perfect calibration")
    ax.set(xlim=(0, top), ylim=(0, top), title="Calibration (reliability)")
    ax.set_xlabel("Mean predicted PD in bin (%)")
    ax.set_ylabel("Observed default rate in bin (%)")
    _percent_axes(ax, "xy")
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    return fig


def score_distribution_plot(
    score: ArrayLike, y: ArrayLike, cfg: ScoringConfig | None = None, bins: int = 40
) -> Figure:
    """Histograms of the score (points) for defaults and non-defaults, each normalised to its
    own class (defaults are rare, raw counts would hide them). With `cfg`, a dashed vertical
    line marks each tier boundary inside the plotted range (at most len(tiers) - 1 lines) and
    the tier names stand above their spans. 1 axes.
    """
    s = np.asarray(score, dtype="float64")
    y_arr = np.asarray(y, dtype="float64")
    if s.shape != y_arr.shape or s.ndim != 1:
        raise ValueError(f"score and y must be 1-D of equal length, got {s.shape}, {y_arr.shape}")
    keep = ~np.isnan(s)
    s, y_arr = s[keep], y_arr[keep]
    if s.size == 0:
        raise ValueError("score_distribution_plot: no scores")
    # The 0.1% tails on each side are piled into the end bins so a few extreme scores do not
    # squeeze the bulk of the distribution.
    lo, hi = np.quantile(s, [0.001, 0.999])
    if hi <= lo:
        lo, hi = s.min() - 0.5, s.max() + 0.5
    s = np.clip(s, lo, hi)
    edges = np.linspace(lo, hi, bins + 1)
    fig, ax = new_figure((7, 4.8))
    for value, name, colour in ((0, "non-defaults", _GOOD_COLOUR), (1, "defaults", _BAD_COLOUR)):
        part = s[y_arr == value]
        if part.size:
            weights = np.full(part.size, 1.0 / part.size)
            ax.hist(part, bins=edges, weights=weights, alpha=0.55, color=colour, label=name)
            ax.hist(part, bins=edges, weights=weights, histtype="step", color=colour, lw=1.2)
    if cfg is not None:
        _mark_tiers(ax, cfg, lo, hi)
    ax.set_title("Score distribution by outcome", pad=14 if cfg is not None else 6)
    ax.set_xlabel("Score (points; higher = safer)")
    ax.set_ylabel("Share of class per bin (%)")
    _percent_axes(ax, "y")
    ax.legend(loc="upper right")
    ax.grid(alpha=0.3)
    return fig


def psi_plot(psi_frame: pd.DataFrame, top: int = 30) -> Figure:
    """Horizontal PSI bars for the `top` largest features of `stability.psi_frame`, coloured by
    status, largest at the top, with the 0.1 and 0.25 thresholds (1 axes, 2 lines)."""
    _require(psi_frame, ["feature", "psi"])
    if psi_frame.empty:
        raise ValueError("psi_plot: the PSI frame is empty")
    data = psi_frame.sort_values(["psi", "feature"], ascending=[False, True], kind="stable")
    data = data.head(top).iloc[::-1]
    status = (
        data["status"] if "status" in data else data["psi"].map(stability.psi_status)
    ).to_numpy()
    colours = [STATUS_COLOURS.get(s, STATUS_COLOURS["n/a"]) for s in status]
    fig, ax = new_figure((7, max(2.5, 0.28 * len(data) + 1.2)))
    ax.barh(data["feature"].astype(str), data["psi"].to_numpy(), color=colours)
    ax.axvline(stability.PSI_WARNING, ls="--", color=STATUS_COLOURS["warning"], lw=1)
    ax.axvline(stability.PSI_ALERT, ls="--", color=STATUS_COLOURS["alert"], lw=1)
    handles = [Patch(color=c, label=s) for s, c in STATUS_COLOURS.items() if s in set(status)]
    ax.legend(handles=handles, loc="lower right", title="status")
    shown = f"top {len(data)} of {len(psi_frame)}" if len(psi_frame) > len(data) else "all"
    ax.set_title(f"Population stability index by feature ({shown})")
    ax.set_xlabel("PSI (unitless; 0.1 warning, 0.25 alert)")
    ax.set_ylabel("Feature")
    ax.grid(alpha=0.3, axis="x")
    return fig


def _mark_tiers(ax: Axes, cfg: ScoringConfig, lo: float, hi: float) -> None:
    """Dashed lines at the tier boundaries inside [lo, hi] and each tier's name above its span."""
    bounds = tier_bounds_points(cfg)  # lowest score of each tier, best tier first
    names = list(bounds)
    # Tier i spans [bounds[i], bounds[i-1]) in points; the best tier is open to the right.
    uppers = [hi, *(bounds[n] for n in names[:-1])]
    lowers = [bounds[n] for n in names[:-1]] + [lo]
    for x in lowers[:-1]:
        if lo < x < hi:
            ax.axvline(x, ls="--", color="black", lw=0.8)
    for name, a, b in zip(names, lowers, uppers, strict=True):
        a, b = max(a, lo), min(b, hi)
        if b > a:
            ax.annotate(
                name,
                ((a + b) / 2, 1.0),
                xycoords=("data", "axes fraction"),
                ha="center",
                va="bottom",
                fontsize=9,
                fontweight="bold",
            )


def _as_curves(
    y: ArrayLike | Mapping[str, tuple[ArrayLike, ArrayLike]], p: ArrayLike | None, label: str
) -> dict[str, tuple[ArrayLike, ArrayLike]]:
    if isinstance(y, Mapping):
        if p is not None:
            raise ValueError("pass either a dict of splits or y and p, not both")
        if not y:
            raise ValueError("no splits given")
        return dict(y)
    if p is None:
        raise ValueError("p is required when y is an array")
    return {label: (y, p)}


def _split_curve(name: str, y: ArrayLike, p: ArrayLike) -> pd.DataFrame:
    try:
        return metrics.ks_curve(y, p)
    except ValueError as exc:
        raise ValueError(f"split {name!r}: {exc}") from None


def _log_percent_axis(ax: Axes, lo: float, hi: float) -> None:
    """Percent ticks on a log x axis, as many as fit: one per decade over a wide range, 1-2-5
    per decade over one or two, every integer multiple over less. PercentFormatter rounds 0.1%
    to "0%" on a log axis and matplotlib labels minor ticks on a short one (they overlapped on
    German Credit), so the labels are written here and minor ticks stay unlabelled."""
    decades = np.log10(hi / lo) if lo > 0 and hi > lo else 0.0
    subs = (1.0,) if decades > 2.5 else (1.0, 2.0, 5.0) if decades > 0.8 else np.arange(1.0, 10.0)
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=subs))
    ax.xaxis.set_major_formatter(
        FuncFormatter(lambda v, _: f"{v * 100:.4f}".rstrip("0").rstrip(".") + "%")
    )
    ax.xaxis.set_minor_formatter(NullFormatter())


def _percent_axes(ax: Axes, which: str) -> None:
    if "x" in which:
        ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    if "y" in which:
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))


def _require(df: pd.DataFrame, columns: list[str]) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"missing column(s) {missing}; got {list(df.columns)}")
