"""Figures without global state: matplotlib's object API, and a fence around pyplot.

Our own plots are `matplotlib.figure.Figure` objects drawn by the Agg canvas (`new_figure`):
nothing is registered in pyplot's global list of figures, so nothing can leak into another plot
and nothing needs closing. Some library functions only draw on pyplot's current figure (shap's
waterfall, Optuna's matplotlib plots; shap's dependence plot adds its colour bar through
`pyplot.colorbar`). `pyplot_scope` gives them a fresh current figure and closes every pyplot
figure they opened, so a figure left open by one plot is never drawn over by the next. No module
selects a matplotlib backend: Agg draws our figures whatever backend pyplot uses.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from pipeline.core.io import atomic_path

DPI = 110


def blank_figure(size: tuple[float, float], layout: str | None = "constrained") -> Figure:
    """A figure of `size` inches without axes, drawn by Agg, unknown to pyplot."""
    fig = Figure(figsize=size, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def new_figure(
    size: tuple[float, float], layout: str | None = "constrained"
) -> tuple[Figure, Axes]:
    """A figure of `size` inches with one axes, drawn by Agg, unknown to pyplot."""
    fig = blank_figure(size, layout)
    return fig, fig.subplots()


@contextmanager
def pyplot_scope(size: tuple[float, float] | None = None) -> Iterator[Figure]:
    """A fresh pyplot figure, current for the block; afterwards every pyplot figure the block
    opened is closed (the yielded one stays usable for saving) and matplotlib's settings are
    restored (Optuna's plots switch the global style to ggplot, which would restyle every later
    figure of the process)."""
    import matplotlib.pyplot as plt

    before = set(plt.get_fignums())
    with matplotlib.rc_context():
        fig = plt.figure(figsize=size)
        try:
            yield fig
        finally:
            for num in set(plt.get_fignums()) - before:
                plt.close(num)


@contextmanager
def global_numpy_seed(seed: int) -> Iterator[None]:
    """numpy's global random state seeded for the block, then restored. shap's beeswarm and
    dependence plots shuffle their points with it: without a seed a plot depends on what else
    the process drew before (a stage run alone and within `loanrisk run` differed)."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def save_png(fig: Figure, path: Path | str, dpi: int = DPI, tight: bool = True) -> Path:
    """Write `fig` as PNG to `path` atomically; returns the path."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight" if tight else None)
    return path
