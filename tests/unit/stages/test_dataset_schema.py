"""The schema train logs with each split's dataset is the one MLflow would infer."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from mlflow.types.utils import _infer_schema

from pipeline.stages.train import _schema


def test_schema_equals_mlflows_inference_with_a_missing_value_past_the_first_rows():
    n = 500
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "loan_id": np.arange(n, dtype="int64"),
            "snapshot_date": pd.Timestamp("2024-01-01"),
            "balance": rng.random(n),
            "late_share": np.r_[rng.random(n - 1), np.nan],  # missing only in the last row
            "product": pd.Series(rng.choice(["card", "auto"], n), dtype="str"),
            "region": pd.Series([*rng.choice(["N", "S"], n - 1), None], dtype="str"),
            "label": rng.integers(0, 2, n),
        }
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = _infer_schema(frame)
    got = _schema(frame)
    assert got == expected
    required = {c.name: c.required for c in got.inputs}
    assert required["late_share"] is False and required["region"] is False
    assert required["balance"] is True
