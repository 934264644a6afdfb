"""A tiny synthetic book, booster and MLflow store, shared by the model, registry, scoring,
reasons and Spark tests; conftest.py's `logged` fixture logs the model once per module."""

from __future__ import annotations

from pathlib import Path

import lightgbm as lgb
import mlflow
import numpy as np
import pandas as pd

from pipeline.config import ScoringConfig
from pipeline.config.schema import OutputConfig
from pipeline.core.metadata import FeatureSpec
from pipeline.modelling.calibration import fit_calibrator
from pipeline.modelling.model import build_reference

CATS = ["auto", "card", "personal"]
NUMERIC = ["dpd_now", "late_count_6m", "tenure_months"]
FEATURES = [*NUMERIC, "product"]


def make_book(n: int = 500, seed: int = 0, shift: float = 0.0) -> pd.DataFrame:
    """Feature matrix as the features stage writes it: ids, label, features (product as str).

    shift moves the portfolio towards riskier loans (for drift tests)."""
    rng = np.random.default_rng(seed)
    dpd = rng.gamma(0.6 + shift * 3, 8.0, n)
    late = rng.poisson(0.8 + shift * 4, n).astype(float)
    tenure = rng.uniform(1, 120 - shift * 100, n)
    tenure[rng.random(n) < 0.05] = np.nan
    product = rng.choice(CATS, size=n, p=[0.3, 0.5, 0.2] if not shift else [0.05, 0.15, 0.8])
    z = -3 + 0.06 * dpd + 0.5 * late - 0.01 * np.nan_to_num(tenure, nan=60) + (product == "card")
    label = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(int)
    return pd.DataFrame(
        {
            "loan_id": np.arange(n) + 10_000 * seed,
            "customer_id": np.arange(n) % 97,
            "snapshot_date": pd.Timestamp("2024-03-31"),
            "label": label,
            "dpd_now": dpd,
            "late_count_6m": late,
            "tenure_months": tenure,
            "product": pd.Series(product, dtype="str"),
        }
    )


def training_frame(book: pd.DataFrame) -> pd.DataFrame:
    X = book[FEATURES].copy()
    X["product"] = pd.Categorical(X["product"], categories=CATS)
    return X


SPECS = [
    FeatureSpec(
        "dpd_now", "repayment", "Days past due now", "raises", label="{value:.0f} days past due"
    ),
    FeatureSpec("late_count_6m", "repayment", "Late instalments, 6 months", "raises"),
    FeatureSpec("tenure_months", "relationship", "Months as a customer", "lowers"),
    FeatureSpec(
        "product", "customer_loan", "Product", kind="categorical", label="Product: {value}"
    ),
]


def train_tiny(book: pd.DataFrame) -> lgb.Booster:
    X = training_frame(book)
    params = {
        "objective": "binary",
        "num_threads": 1,
        "verbose": -1,
        "num_leaves": 7,
        "min_data_in_leaf": 10,
        "seed": 1,
        "deterministic": True,
    }
    return lgb.train(params, lgb.Dataset(X, book["label"]), num_boost_round=30)


def tiny_parts(seed: int = 0) -> dict:
    """Everything log_model takes, from a 500-row synthetic book (first half train)."""
    book = make_book(1000, seed=seed)
    train, valid = book.iloc[:500], book.iloc[500:]
    booster = train_tiny(train)
    cal, _ = fit_calibrator(valid["label"], booster.predict(training_frame(valid)), "platt")
    scoring = ScoringConfig()
    X_train = training_frame(train)
    return {
        "booster": booster,
        "calibrator": cal,
        "specs": SPECS,
        "categories": {"product": CATS},
        "scoring_cfg": scoring,
        "reference": build_reference(X_train, cal.apply(booster.predict(X_train)), scoring),
        "input_example": train,
    }


def use_store(root: Path) -> str:
    """Point MLflow at a sqlite store + artefact folder under `root`; returns the tracking URI."""
    uri = f"sqlite:///{root / 'mlruns.db'}"
    mlflow.set_tracking_uri(uri)
    name = "loanrisk-test"
    if mlflow.get_experiment_by_name(name) is None:
        mlflow.create_experiment(name, artifact_location=(root / "artifacts").as_uri())
    mlflow.set_experiment(name)
    return uri


def own_output(logged: tuple) -> OutputConfig:
    """Reports and scores folders beside the `logged` fixture's store, never the checkout's
    (whose reports/ holds a real run's effect study after `make train`)."""
    root = Path(logged[2].removeprefix("sqlite:///")).parent
    return OutputConfig(reports_dir=root / "reports", scores_dir=root / "scores")
