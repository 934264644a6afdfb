"""A logistic regression on the model's features: the plain baseline the boosted trees must beat."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from pipeline.modelling import dataset

# The predictions file's column of the baseline's test PDs (train fits it for the promotion
# gate; evaluate reads it back rather than fitting it again)
BASELINE_PD = "pd_baseline"


def baseline_pd(data: dataset.Dataset) -> np.ndarray:
    """Test-split PDs of a logistic regression on the same features, fitted on the training
    split: what the boosted trees must beat."""
    parts = data.parts()
    num = [s.name for s in data.specs if s.kind == "numeric"]
    cat = [s.name for s in data.specs if s.kind == "categorical"]
    pre = ColumnTransformer(
        [
            (
                "num",
                make_pipeline(
                    SimpleImputer(strategy="median", add_indicator=True), StandardScaler()
                ),
                num,
            ),
            (
                "cat",
                make_pipeline(
                    SimpleImputer(strategy="constant", fill_value="missing"),
                    OneHotEncoder(handle_unknown="ignore"),
                ),
                cat,
            ),
        ]
    )
    model = make_pipeline(pre, LogisticRegression(max_iter=2000))
    X_train, y_train = parts["train"]
    model.fit(_as_object(X_train, cat), y_train)
    return model.predict_proba(_as_object(parts["test"][0], cat))[:, 1]


def _as_object(X: pd.DataFrame, cat: list[str]) -> pd.DataFrame:
    X = X.copy()
    for c in cat:
        X[c] = X[c].astype(object).where(X[c].notna(), "missing")
    return X
