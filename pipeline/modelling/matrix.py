"""The model's view of a feature matrix: fixed column order, categoricals with fixed levels."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.core.metadata import FeatureSpec


def categories_of(df: pd.DataFrame, specs: list[FeatureSpec]) -> dict[str, list[str]]:
    """Sorted levels of each categorical feature as seen in training (strings)."""
    out = {}
    for s in specs:
        if s.kind == "categorical":
            values = df[s.name].dropna().astype(str).unique()
            out[s.name] = sorted(values.tolist())
    return out


def to_model_frame(
    df: pd.DataFrame, specs: list[FeatureSpec], categories: dict[str, list[str]]
) -> pd.DataFrame:
    """Feature columns in spec order; numerics as float64, categoricals as `category` with the
    training levels (an unseen level becomes missing, which LightGBM sends down its missing branch).
    """
    cols = {}
    for s in specs:
        col = df[s.name]
        if s.kind == "categorical":
            as_str = col.astype("string")
            cols[s.name] = pd.Categorical(
                as_str.to_numpy(dtype=object, na_value=None), categories=categories[s.name]
            )
        else:
            cols[s.name] = pd.to_numeric(col, errors="coerce").astype(np.float64).to_numpy()
    return pd.DataFrame(cols, index=df.index)
