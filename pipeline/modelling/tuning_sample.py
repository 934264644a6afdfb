"""The rows the tuning trials and the diagnostic refits see on a large book: a sample of whole
customers.

Each trial is a full boosting run, so on a book of a million loan-snapshots 20 trials take an
hour; the choice of parameters needs far fewer rows than the final fit. So do the refits that
only compare (the cost of the protected attributes: two refits equal but for them; the SHAP
stability refits: directions, not levels), each another full boosting run. Customers are kept whole
(their snapshots are not independent, and a customer split across sample and rest would let a
trial memorise them) and stratified by whether they ever default, so the sample keeps the
default rate. The final model is fitted on every training row afterwards (`tune.fit_full`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from pipeline.modelling.dataset import Dataset

# LightGBM's name for a leaf's minimum rows, and the alias the tuner's search space uses.
_MIN_LEAF = ("min_data_in_leaf", "min_child_samples")


def training_sample(data: Dataset, max_rows: int | None, seed: int) -> np.ndarray | None:
    """Positions within the training split of a sample of whole customers holding about
    `max_rows` rows, or None for all of them (`max_rows` unset, the split not larger, or no
    customer ids to keep whole)."""
    train = data.split.index["train"]
    if max_rows is None or len(train) <= max_rows or "customer_id" not in data.frame.columns:
        return None
    customers = data.frame["customer_id"].to_numpy()[train]
    return customer_sample(customers, data.y[train], max_rows, seed)


def scale_min_leaf(params: dict, ratio: float) -> dict:
    """`params` with the minimum rows per leaf multiplied by `ratio` (a leaf of 50 of 200k rows
    is a leaf of 250 of 1M): the same share of the rows, so the trees keep their shape when
    refitted on more or fewer rows."""
    out = dict(params)
    for key in _MIN_LEAF:
        if key in out:
            out[key] = max(1, round(out[key] * ratio))
    return out


def customer_sample(customers: ArrayLike, y: ArrayLike, max_rows: int, seed: int) -> np.ndarray:
    """Sorted row positions of a sample of customers holding about `max_rows` rows (all rows
    when there are no more): the same share of the customers who ever default and of those who
    never do, drawn with `seed`. A customer's rows are all in or all out."""
    ids = pd.Series(np.asarray(customers))
    labels = np.asarray(y)
    n = len(ids)
    if n <= max_rows:
        return np.arange(n)
    share = max_rows / n
    ever = pd.Series(labels).groupby(ids.to_numpy()).max()
    rng = np.random.default_rng(seed)
    chosen = []
    for flag in (0, 1):
        group = np.sort(ever.index[ever.to_numpy() == flag].to_numpy())
        k = int(round(share * len(group)))
        chosen.append(rng.choice(group, size=k, replace=False) if k else group[:0])
    keep = np.isin(ids.to_numpy(), np.concatenate(chosen))
    return np.flatnonzero(keep)
