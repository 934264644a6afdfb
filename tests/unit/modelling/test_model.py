"""The MLflow PD model: logged from code, loaded back, same numbers as the parts computed by hand.

The tiny book, booster and store come from tests/tiny_model.py.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException
from tiny_model import (
    CATS,
    FEATURES,
    SPECS,
    make_book,
    tiny_parts,
    training_frame,
)

from pipeline.core.errors import ModelError
from pipeline.modelling.model import LoanRiskModel
from pipeline.riskmath import scaling


@pytest.fixture(scope="module")
def loaded(logged):
    info, _, _ = logged
    return mlflow.pyfunc.load_model(info.model_uri)


def _by_hand(parts: dict, book: pd.DataFrame) -> pd.DataFrame:
    p_raw = parts["booster"].predict(training_frame(book))
    p = parts["calibrator"].apply(p_raw)
    return pd.DataFrame(
        {
            "pd": p,
            "pd_raw": p_raw,
            "points": scaling.points(p, parts["scoring_cfg"]),
            "tier": scaling.tier(p, parts["scoring_cfg"]),
        }
    )


# --------------------------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------------------------
def test_logged_model_is_models_from_code_with_all_artefacts(logged):
    info, _, _ = logged
    flavor = info.flavors["python_function"]
    assert flavor.get("model_code_path", "").endswith("model_code.py")
    local = Path(mlflow.artifacts.download_artifacts(info.model_uri))
    for fname in (
        "model.txt",
        "calibrator.json",
        "features.json",
        "categories.json",
        "scoring.json",
        "reference.json",
    ):
        assert (local / "artifacts" / fname).exists(), fname
    assert (local / "code" / "pipeline" / "modelling" / "model.py").exists()
    reqs = (local / "requirements.txt").read_text()
    assert "lightgbm==" in reqs and "mlflow==" in reqs
    # features only in the example: no ids, labels or personal fields
    example = pd.read_json(local / "input_example.json", orient="split")
    assert list(example.columns) == FEATURES and len(example) == 5


def test_signature_features_as_string_and_double(logged):
    info, _, _ = logged
    inputs = {c.name: c.type.name for c in info.signature.inputs.inputs}
    assert inputs == {
        "dpd_now": "double",
        "late_count_6m": "double",
        "tenure_months": "double",
        "product": "string",
    }
    assert [c.name for c in info.signature.outputs.inputs] == ["pd", "pd_raw", "points", "tier"]


def test_pyfunc_predict_on_strings_equals_parts_by_hand(logged, loaded):
    _, parts, _ = logged
    book = make_book(200, seed=5)
    out = loaded.predict(book)  # str product, extra columns loan_id/label/... ignored
    expected = _by_hand(parts, book)
    assert list(out.columns) == ["pd", "pd_raw", "points", "tier"]
    np.testing.assert_allclose(out["pd_raw"], expected["pd_raw"], rtol=1e-12)
    np.testing.assert_allclose(out["pd"], expected["pd"], rtol=1e-12)
    np.testing.assert_allclose(out["points"], expected["points"], rtol=1e-12)
    assert out["tier"].tolist() == list(expected["tier"])
    assert out["pd"].between(0, 1).all() and out["pd"].nunique() > 20


def test_category_typed_input_gives_the_same_output(logged, loaded):
    book = make_book(100, seed=6)
    as_cat = book.copy()
    # categories in another order and with an extra level: cast inside by value, not code
    as_cat["product"] = pd.Categorical(book["product"], categories=["personal", "zzz", *CATS[:2]])
    model = loaded.unwrap_python_model()
    pd.testing.assert_frame_equal(model.predict(None, as_cat), loaded.predict(book))


def test_unseen_category_is_treated_as_missing(logged, loaded):
    book = make_book(50, seed=7)
    unseen = book.assign(product="crypto-loan")
    missing = book.assign(product=pd.Series([None] * len(book), dtype="str"))
    out_unseen, out_missing = loaded.predict(unseen), loaded.predict(missing)
    assert out_unseen["pd"].notna().all()
    pd.testing.assert_frame_equal(out_unseen, out_missing)
    model = loaded.unwrap_python_model()
    assert model.prepare(unseen)["product"].isna().all()


def test_missing_feature_column_is_a_model_error_listing_it(loaded):
    book = make_book(20, seed=8).drop(columns=["dpd_now", "product"])
    model = loaded.unwrap_python_model()
    with pytest.raises(ModelError, match="missing 2 feature column.*dpd_now, product"):
        model.predict(None, book)
    # MLflow's own schema check stops it first on the pyfunc path, naming a column too
    with pytest.raises(MlflowException, match="dpd_now"):
        loaded.predict(book)


def test_helpers_after_unwrap(logged, loaded):
    _, parts, _ = logged
    model = loaded.unwrap_python_model()
    assert isinstance(model, LoanRiskModel)
    assert model.feature_names == parts["booster"].feature_name()
    assert model.calibrator == parts["calibrator"]
    assert model.scoring == parts["scoring_cfg"]
    assert model.reference.keys() == {*FEATURES, "__score__", "__pd__"}
    assert [s.name for s in model.specs] == FEATURES
    X = model.prepare(make_book(30, seed=9))
    assert list(X.columns) == FEATURES and isinstance(X["product"].dtype, pd.CategoricalDtype)
    contrib = model.contributions(X)
    assert contrib.shape == (30, len(FEATURES) + 1)
    # contributions add up to the raw log-odds
    p_raw = model.booster.predict(X)
    np.testing.assert_allclose(contrib.sum(axis=1), np.log(p_raw / (1 - p_raw)), atol=1e-9)


def test_empty_input_gives_empty_output(loaded):
    out = loaded.unwrap_python_model().predict(None, make_book(5, seed=1).iloc[:0])
    assert list(out.columns) == ["pd", "pd_raw", "points", "tier"] and len(out) == 0


def test_non_numeric_value_in_numeric_feature_is_a_model_error(loaded):
    book = make_book(10, seed=10)
    book["dpd_now"] = book["dpd_now"].astype(object)
    book.loc[3, "dpd_now"] = "n/a"
    with pytest.raises(ModelError, match="dpd_now"):
        loaded.unwrap_python_model().prepare(book)


def test_category_lists_must_match_the_booster():
    parts = tiny_parts()
    with pytest.raises(ValueError, match="category lists differ"):
        LoanRiskModel.from_parts(
            parts["booster"],
            parts["calibrator"],
            SPECS,
            {"product": ["card", "auto", "personal"]},
            parts["scoring_cfg"],
            parts["reference"],
        )
