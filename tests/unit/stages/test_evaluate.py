"""The evaluate stage's customer-disjoint view of the test split."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd

from pipeline.config import Config
from pipeline.stages.evaluate import unseen_customers


def _data(customers: list[int], labels: list[int], split: dict[str, list[int]]):
    frame = pd.DataFrame({"customer_id": customers, "label": labels})
    index = {k: np.array(v) for k, v in split.items()}
    return SimpleNamespace(frame=frame, split=SimpleNamespace(index=index))


def test_unseen_customers_keeps_only_test_customers_absent_from_train_and_valid():
    # Customers 1 (train) and 2 (valid) come back in the test split; 3 and 4 are new there.
    data = _data(
        customers=[1, 2, 1, 2, 3, 3, 4, 4],
        labels=[0, 1, 1, 0, 1, 0, 0, 1],
        split={"train": [0], "valid": [1], "test": [2, 3, 4, 5, 6, 7]},
    )
    test = data.frame.iloc[2:].assign(pd=[0.1, 0.9, 0.8, 0.2, 0.3, 0.7])
    out = unseen_customers(data, test, None, Config())
    # The seen customers are ranked backwards, the new ones perfectly: only the latter count.
    assert out["auc"] == 1.0
    assert (out["n"], out["n_customers"], out["n_defaults"]) == (4, 2, 2)
    assert out["share_of_test"] == 4 / 6
    assert out["oracle_auc"] is None


def test_unseen_customers_without_ids_or_with_one_class():
    data = _data([1, 2, 3], [0, 1, 0], {"train": [0], "valid": [1], "test": [2]})
    test = data.frame.iloc[2:].assign(pd=[0.5])
    assert unseen_customers(data, test, None, Config())["auc"] is None
    data.frame = data.frame.drop(columns="customer_id")
    assert unseen_customers(data, test, None, Config()) is None
