"""The rows the tuning trials see on a large book: a sample of whole customers.

Each trial is a full boosting run, so on a book of a million loan-snapshots 20 trials take an
hour; the choice of parameters needs far fewer rows than the final fit. Customers are kept whole
(their snapshots are not independent, and a customer split across sample and rest would let a
trial memorise them) and stratified by whether they ever default, so the sample keeps the
default rate. The final model is fitted on every training row afterwards (`tune.fit_full`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike


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
