"""Train / validation / test splits: out of time by snapshot date, or stratified random."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from pipeline.config import SplitConfig
from pipeline.core.errors import DataError

SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class Split:
    """Row positions of each split in the labelled frame, and how the split was made."""

    index: dict[str, np.ndarray]
    kind: str  # "out_of_time" or "random"
    dates: dict[str, list[str]]

    def frames(self, df: pd.DataFrame) -> dict[str, pd.DataFrame]:
        return {k: df.iloc[v] for k, v in self.index.items()}


def out_of_time(
    df: pd.DataFrame, cfg: SplitConfig, time_col: str = "snapshot_date", gap_months: int = 0
) -> Split:
    """The last `test_snapshots` dates are test, the `valid_snapshots` before them validation.

    Training keeps the dates at least `gap_months` before the first validation date: a label
    window of that length starting earlier overlaps the validation windows, so a loan that
    defaults there would be a training and a validation positive at once. The model would be
    tuned to memorise loans, which pays on validation and not on new dates.
    """
    dates = np.sort(df[time_col].dropna().unique())
    need = cfg.test_snapshots + cfg.valid_snapshots + 1
    if len(dates) < need:
        raise DataError(
            f"out-of-time split needs at least {need} labelled snapshot dates "
            f"(split.test_snapshots={cfg.test_snapshots}, split.valid_snapshots="
            f"{cfg.valid_snapshots}, plus one for training); the data has {len(dates)}. "
            "Use more history, monthly snapshots (features.snapshot_freq=monthly) or fewer "
            "validation/test snapshots."
        )
    test_d = dates[-cfg.test_snapshots :]
    valid_d = dates[-need + 1 : -cfg.test_snapshots]
    last_train = pd.Timestamp(valid_d[0]) - pd.DateOffset(months=gap_months)
    train_d = dates[: -need + 1]
    train_d = train_d[train_d <= last_train.to_datetime64()]
    if len(train_d) == 0:
        raise DataError(
            f"out-of-time split: no training snapshot is {gap_months} months (split.gap_months, "
            f"default the performance window) before the first validation date "
            f"{pd.Timestamp(valid_d[0]).date()}; the first labelled date is "
            f"{pd.Timestamp(dates[0]).date()}. Use more history, a smaller split.gap_months or "
            "fewer validation/test snapshots."
        )
    t = df[time_col].to_numpy()
    index = {
        "train": np.flatnonzero(np.isin(t, train_d)),
        "valid": np.flatnonzero(np.isin(t, valid_d)),
        "test": np.flatnonzero(np.isin(t, test_d)),
    }
    as_str = {
        k: [str(pd.Timestamp(d).date()) for d in v]
        for k, v in {"train": train_d, "valid": valid_d, "test": test_d}.items()
    }
    return Split(index, "out_of_time", as_str)


def stratified_random(y: pd.Series, seed: int, valid: float = 0.2, test: float = 0.2) -> Split:
    """Used when a prepared table has no time column; reports say the split is random."""
    pos = np.arange(len(y))
    rest, test_i = train_test_split(pos, test_size=test, stratify=y, random_state=seed)
    train_i, valid_i = train_test_split(
        rest, test_size=valid / (1 - test), stratify=y.iloc[rest], random_state=seed
    )
    index = {"train": np.sort(train_i), "valid": np.sort(valid_i), "test": np.sort(test_i)}
    return Split(index, "random", {})


def split_label(kind: str) -> str:
    """How the console names a split: only a split by date is out of time."""
    return "OOT" if kind == "out_of_time" else f"{kind}-split"
