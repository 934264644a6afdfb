"""Out-of-time splits: test last, validation before it, training far enough before both."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.config import SplitConfig
from pipeline.core.errors import DataError
from pipeline.modelling.split import out_of_time, stratified_random


def _frame(n_dates: int = 12, rows: int = 5) -> pd.DataFrame:
    dates = pd.date_range("2020-01-01", periods=n_dates, freq="QS")
    return pd.DataFrame({"snapshot_date": np.repeat(dates, rows), "x": np.arange(n_dates * rows)})


def test_test_is_last_valid_before_and_no_overlap() -> None:
    df = _frame()
    split = out_of_time(df, SplitConfig(test_snapshots=2, valid_snapshots=2))
    d = split.dates
    assert d["test"] == ["2022-07-01", "2022-10-01"]
    assert d["valid"] == ["2022-01-01", "2022-04-01"]
    assert d["train"][-1] == "2021-10-01"
    idx = np.concatenate(list(split.index.values()))
    assert len(idx) == len(set(idx.tolist())) == len(df)


def test_gap_drops_training_dates_whose_window_reaches_validation() -> None:
    df = _frame()
    split = out_of_time(df, SplitConfig(), gap_months=12)
    # First validation date 2022-01-01: a 12-month window from 2021-01-01 ends exactly there.
    assert split.dates["train"][-1] == "2021-01-01"
    assert "2021-04-01" not in split.dates["train"]
    train_dates = df["snapshot_date"].iloc[split.index["train"]]
    first_valid = pd.Timestamp(split.dates["valid"][0])
    assert (train_dates + pd.DateOffset(months=12) <= first_valid).all()


def test_gap_longer_than_the_history_is_a_clear_error() -> None:
    with pytest.raises(DataError, match="split.gap_months"):
        out_of_time(_frame(n_dates=6), SplitConfig(), gap_months=12)


def test_too_few_dates_is_a_clear_error() -> None:
    with pytest.raises(DataError, match="at least 5 labelled snapshot dates"):
        out_of_time(_frame(n_dates=4), SplitConfig())


def test_random_split_is_stratified_and_reproducible() -> None:
    y = pd.Series(np.r_[np.ones(100), np.zeros(900)].astype(int))
    a, b = stratified_random(y, seed=3), stratified_random(y, seed=3)
    assert all(np.array_equal(a.index[k], b.index[k]) for k in a.index)
    rates = {k: y.iloc[v].mean() for k, v in a.index.items()}
    assert all(abs(r - 0.1) < 0.01 for r in rates.values())
    assert a.kind == "random"
