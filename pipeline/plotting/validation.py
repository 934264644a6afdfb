"""Validation plots: does the ranking and the PD level hold up from one snapshot to the next?"""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import PercentFormatter

from pipeline.plotting.figures import blank_figure

SPLIT_COLOURS = {"train": "tab:blue", "valid": "tab:orange", "test": "tab:green"}


def over_time_plot(by_snapshot: pd.DataFrame) -> Figure:
    """Two panels sharing the snapshot axis: AUC per snapshot (top) and observed default rate
    against mean PD (bottom), points coloured by split.

    `by_snapshot` needs columns snapshot_date, split, auc, default_rate, mean_pd.
    """
    missing = {"snapshot_date", "split", "auc", "default_rate", "mean_pd"} - set(by_snapshot)
    if missing or by_snapshot.empty:
        raise ValueError(f"over_time_plot: no rows or missing columns {sorted(missing)}")
    fig = blank_figure((8, 6))
    top, bottom = fig.subplots(2, 1, sharex=True)
    frame = by_snapshot.assign(snapshot_date=pd.to_datetime(by_snapshot["snapshot_date"]))
    frame = frame.sort_values("snapshot_date")
    for split, part in frame.groupby("split", sort=False, observed=True):
        colour = SPLIT_COLOURS.get(str(split), "grey")
        top.plot(part["snapshot_date"], part["auc"], "o-", color=colour, label=str(split))
        bottom.plot(part["snapshot_date"], part["default_rate"], "o-", color=colour)
        bottom.plot(part["snapshot_date"], part["mean_pd"], "x--", color=colour)
    top.set(title="Ranking per snapshot", ylabel="AUC")
    top.legend(title="split", loc="best", fontsize="small")
    bottom.set(title="Default rate: observed vs predicted", ylabel="default rate")
    bottom.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=1))
    # Colours are the splits (top legend); the line style tells observed from predicted.
    styles = [
        Line2D([], [], color="black", marker="o"),
        Line2D([], [], color="black", ls="--", marker="x"),
    ]
    bottom.legend(styles, ["observed", "mean PD"], loc="best", fontsize="small")
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
    bottom.set_xlabel("snapshot date")
    fig.autofmt_xdate()
    return fig
