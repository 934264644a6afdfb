"""Reason codes: readable text, ordered by contribution, positive only, deterministic ties."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.core.metadata import FeatureSpec
from pipeline.riskmath.reasons import reason_codes, top_k_indices

SPECS = [
    FeatureSpec(
        "dpd_now", "repayment", "Days past due now", "raises", label="{value:.0f} days late"
    ),
    FeatureSpec("complaints_12m", "relationship", "Complaints, 12 months", "raises"),
    FeatureSpec("tenure_months", "relationship", "Months as a customer", "lowers"),
    FeatureSpec(
        "product", "customer_loan", "Product", kind="categorical", label="Product: {value}"
    ),
]


@pytest.fixture
def X() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "dpd_now": [45.0, 0.0, 3.0],
            "complaints_12m": [2.0, 0.0, np.nan],
            "tenure_months": [6.0, 96.0, 30.0],
            "product": pd.Categorical(["card", "auto", "card"], categories=["auto", "card"]),
        },
        index=[10, 11, 12],
    )


def _contribs(rows: list[list[float]]) -> np.ndarray:
    c = np.array(rows, dtype=float)
    return np.column_stack([c, np.full(len(c), -3.0)])  # bias column, must be ignored


def test_readable_labels_in_contribution_order(X):
    contribs = _contribs(
        [
            [1.2, 0.4, 0.8, -0.1],  # dpd > tenure > complaints
            [-0.5, 0.0, -0.9, 0.3],  # only product pushes up
            [0.1, 0.7, -0.2, 0.5],  # complaints (missing: never a reason) > product > dpd
        ]
    )
    out = reason_codes(contribs, X, SPECS, top_k=3)
    assert list(out.columns) == ["reason_1", "reason_2", "reason_3"]
    assert list(out.index) == [10, 11, 12]
    assert out.loc[10].tolist() == [
        "45 days late",
        "Months as a customer: 6.00",
        "Complaints, 12 months: 2.00",
    ]
    # positive contributions only: one reason, then empty strings
    assert out.loc[11].tolist() == ["Product: auto", "", ""]
    assert out.loc[12].tolist() == ["Product: card", "3 days late", ""]


def test_protective_factors_most_negative_first(X):
    contribs = _contribs([[1.2, 0.4, -0.8, -0.1], [-0.5, 0.0, -0.9, 0.3], [0.1, 0.7, 0.2, 0.5]])
    out = reason_codes(contribs, X, SPECS, top_k=2, protective=True)
    assert list(out.columns) == ["reason_1", "reason_2", "protective_1", "protective_2"]
    assert out.loc[10, "protective_1"] == "Months as a customer: 6.00"
    assert out.loc[10, "protective_2"] == "Product: card"
    assert out.loc[11, ["protective_1", "protective_2"]].tolist() == [
        "Months as a customer: 96.00",
        "0 days late",
    ]
    assert out.loc[12, ["protective_1", "protective_2"]].tolist() == ["", ""]


def test_ties_go_to_the_earlier_feature_every_time(X):
    contribs = _contribs([[0.5, 0.5, 0.5, 0.5]] * 3)
    first = reason_codes(contribs, X, SPECS, top_k=3)
    for _ in range(3):
        pd.testing.assert_frame_equal(reason_codes(contribs, X, SPECS, top_k=3), first)
    assert first.loc[11].tolist() == [
        "0 days late",
        "Complaints, 12 months: 0.00",
        "Months as a customer: 96.00",
    ]


@pytest.mark.parametrize("k", [1, 2, 3, 5, 8])
def test_top_k_indices_matches_a_full_stable_sort(k):
    rng = np.random.default_rng(k)
    # small integers: many ties, also at the k-th position
    scores = rng.integers(-3, 4, size=(400, 8)).astype(float)
    expected = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    np.testing.assert_array_equal(top_k_indices(scores, k), expected)


def test_nan_or_infinite_contributions_never_repeat_a_feature(X):
    contribs = _contribs(
        [[0.4, np.nan, -np.inf, 0.1], [np.nan] * 4, [-np.inf, 0.2, np.nan, np.nan]]
    )
    idx = top_k_indices(contribs[:, :-1], 4)
    assert all(len(set(row)) == 4 for row in idx.tolist())
    out = reason_codes(contribs, X, SPECS, top_k=3)
    assert out.loc[10].tolist() == ["45 days late", "Product: card", ""]
    assert out.loc[11].tolist() == ["", "", ""]
    assert out.loc[12].tolist() == ["", "", ""]  # the one positive value is a missing one


def test_fewer_features_than_k_pads_with_empty(X):
    small = X[["dpd_now", "product"]]
    out = reason_codes(_contribs([[0.3, 0.2], [0.1, 0.9], [0.0, -1.0]]), small, SPECS, top_k=3)
    assert out.loc[11].tolist() == ["Product: auto", "0 days late", ""]
    assert out.loc[12].tolist() == ["", "", ""]
    assert (out.dtypes == "str").all()


def test_top_k_zero_and_shape_errors(X):
    contribs = _contribs([[0.1, 0.2, 0.3, 0.4]] * 3)
    assert reason_codes(contribs, X, SPECS, top_k=0).shape == (3, 0)
    with pytest.raises(ValueError, match="does not match"):
        reason_codes(contribs[:, :-1], X, SPECS)
    with pytest.raises(ValueError, match="no FeatureSpec"):
        reason_codes(contribs, X.rename(columns={"dpd_now": "mystery"}), SPECS)


def test_reasons_follow_model_contributions():
    from tiny_model import FEATURES, make_book, train_tiny, training_frame
    from tiny_model import SPECS as MODEL_SPECS

    book = make_book(300, seed=3)
    booster = train_tiny(book)
    X = training_frame(book)
    contribs = booster.predict(X, pred_contrib=True)
    out = reason_codes(contribs, X, MODEL_SPECS, top_k=2)
    top = np.argmax(contribs[:, :-1], axis=1)
    has_reason = contribs[:, :-1].max(axis=1) > 0
    specs = {s.name: s for s in MODEL_SPECS}
    for i in np.flatnonzero(has_reason)[:50]:
        name = FEATURES[top[i]]
        value = X.iloc[i][name]
        assert out.iloc[i]["reason_1"] == specs[name].readable(None if pd.isna(value) else value)
    assert (out.loc[~has_reason, "reason_1"] == "").all()


def test_every_catalogue_feature_has_a_readable_label_with_its_value():
    from pipeline.features.specs import feature_specs

    assert feature_specs()[0].readable(3.0) == "3 days past due now"
    by = {s.name: s for s in feature_specs()}
    assert by["late_instalments_6m"].readable(3.0) == "3 late instalments in the last 6 months"
    for spec in feature_specs():
        value = "card" if spec.kind == "categorical" else 3.0
        text = spec.readable(value)
        assert spec.label, spec.name
        # The label formatted (no fallback to "description: value"), and the value shows.
        money = f"{value:,.0f}" if "{money}" in spec.label else ""  # amounts: no currency given
        assert text == spec.label.format(value=value, money=money), spec.name
        assert "card" in text or "3" in text or "300%" in text, (spec.name, text)
        assert spec.readable(None).endswith(": missing")


class _CountingModel:
    """Stands in for LoanRiskModel: remembers how many rows it computed SHAP for."""

    def __init__(self, contribs: np.ndarray, specs):
        self._c, self.specs, self.rows = contribs, specs, 0

    def contributions(self, X: pd.DataFrame) -> np.ndarray:
        self.rows += len(X)
        return self._c[X.index.to_numpy() - 10]


def test_reasons_for_scoring_computes_shap_only_for_flagged_rows(X):
    from pipeline.riskmath.reasons import reasons_for_scoring

    contribs = _contribs([[1.2, 0.4, 0.8, -0.1], [-0.5, 0.0, -0.9, 0.3], [0.1, 0.7, -0.2, 0.5]])
    everyone = reason_codes(contribs, X, SPECS, top_k=2, protective=True)
    tiers = np.array(["E", "A", "D"])
    model = _CountingModel(contribs, SPECS)
    out = reasons_for_scoring(model, X, tiers, 2, "flagged", ("D", "E"), protective=True)
    assert model.rows == 2  # loan 11 (tier A) never reached the SHAP computation
    assert list(out.columns) == list(everyone.columns) and list(out.index) == list(X.index)
    pd.testing.assert_frame_equal(out.loc[[10, 12]], everyone.loc[[10, 12]])
    assert (out.loc[11] == "").all()
    assert (out.dtypes == "str").all()

    model = _CountingModel(contribs, SPECS)
    pd.testing.assert_frame_equal(
        reasons_for_scoring(model, X, tiers, 2, "all", protective=True), everyone
    )
    assert model.rows == 3
    model = _CountingModel(contribs, SPECS)
    none = reasons_for_scoring(model, X, np.array(["A", "B", "C"]), 3, "flagged")
    assert model.rows == 0 and none.shape == (3, 3) and (none == "").all().all()
    with pytest.raises(ValueError, match="reasons_for"):
        reasons_for_scoring(model, X, tiers, 2, "some")
    with pytest.raises(ValueError, match="tiers"):
        reasons_for_scoring(model, X, tiers[:2], 2)


def test_each_reason_carries_its_signed_contribution_in_pd_points(X):
    contribs = _contribs([[1.2, 0.4, -0.8, -0.1], [-0.5, 0.0, -0.9, 0.3], [0.1, 0.7, 0.2, 0.5]])
    out = reason_codes(contribs, X, SPECS, top_k=2, protective=True, with_points=True)
    assert list(out.columns) == [
        "reason_1", "reason_1_pd_points", "reason_2", "reason_2_pd_points",
        "protective_1", "protective_1_pd_points", "protective_2", "protective_2_pd_points",
    ]  # fmt: skip
    logit = contribs[0].sum()  # row 10: PD with all contributions vs without dpd's 1.2
    p = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    assert out.loc[10, "reason_1_pd_points"] == pytest.approx(100 * (p(logit) - p(logit - 1.2)))
    assert out.loc[10, "reason_1_pd_points"] > out.loc[10, "reason_2_pd_points"] > 0
    assert out.loc[10, "protective_1_pd_points"] < 0  # lowers PD: negative points
    assert np.isnan(out.loc[11, "reason_2_pd_points"]) and out.loc[11, "reason_2"] == ""


def test_an_excluded_feature_is_never_a_reason_nor_protective(X):
    """A protected attribute the config lets the model use (fairness.use_as_features) still
    never reaches a customer as a reason: the next feature takes its place."""
    contribs = _contribs([[1.2, 0.4, 0.8, -0.1], [-0.5, 0.0, -0.9, 0.3], [0.1, 0.7, -0.2, 0.5]])
    out = reason_codes(contribs, X, SPECS, top_k=2, protective=True, exclude=("tenure_months",))
    assert out.loc[10, ["reason_1", "reason_2"]].tolist() == [
        "45 days late",
        "Complaints, 12 months: 2.00",
    ]
    # tenure would be the most protective on rows 11 and 12: never named
    assert "Months as a customer" not in " ".join(out.to_numpy().ravel().astype(str))
    assert out.loc[11, "protective_1"] == "0 days late"


def test_amounts_read_with_the_currency_and_whole_units():
    from pipeline.features.specs import feature_specs

    specs = {s.name: s for s in feature_specs()}
    assert (
        specs["outstanding_balance"].readable(12345.6, "EUR")
        == "EUR 12,346 of principal outstanding"
    )
    assert specs["principal"].readable(8000.0, "") == "principal 8,000"
    assert specs["annual_income"].readable(52000.0, "GBP") == "annual income GBP 52,000"
    # a count of one reads singular
    assert specs["hardship_requests_3m"].readable(1.0) == "1 hardship request in the last 3 months"
