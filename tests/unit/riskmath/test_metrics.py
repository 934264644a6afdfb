"""Credit-risk metrics against values computed by hand on tiny arrays."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score
from sklearn.metrics import log_loss as sk_log_loss

from pipeline.core.errors import DataError
from pipeline.riskmath import metrics, stability

# Eight loans sorted by PD, 3 defaults (n_bad = 3) and 5 non-defaults (n_good = 5).
Y8 = np.array([1, 1, 0, 1, 0, 0, 0, 0])
P8 = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2])


# ---------------------------------------------------------------- discrimination


def test_ks_hand_computed():
    # Cut-off t (flag PD >= t): share of bads flagged - share of goods flagged
    #   t=0.9: 1/3 - 0/5 = 0.333   t=0.8: 2/3 - 0/5 = 0.667   t=0.7: 2/3 - 1/5 = 0.467
    #   t=0.6: 3/3 - 1/5 = 0.800   t=0.5: 3/3 - 2/5 = 0.600   ... falls to 1 - 1 = 0 at t=0.2
    result = metrics.ks(Y8, P8)
    assert result.statistic == pytest.approx(1 - 1 / 5)
    assert result.cutoff == pytest.approx(0.6)


def test_ks_keeps_tied_pds_together():
    # PDs 0.5 (bad), 0.5 (good), 0.3 (bad), 0.1 (good); n_bad = n_good = 2.
    #   t=0.5: both 0.5 loans flagged together: 1/2 - 1/2 = 0
    #   t=0.3: 2/2 - 1/2 = 0.5     t=0.1: 2/2 - 2/2 = 0
    # Splitting the tie by input order would wrongly give 1/2 - 0 = 0.5 at t=0.5.
    y = np.array([1, 0, 1, 0])
    p = np.array([0.5, 0.5, 0.3, 0.1])
    for order in ([0, 1, 2, 3], [1, 0, 3, 2]):
        result = metrics.ks(y[order], p[order])
        assert result.statistic == pytest.approx(0.5)
        assert result.cutoff == pytest.approx(0.3)


def test_ks_matches_two_sample_ks_for_a_model_that_ranks_right():
    rng = np.random.default_rng(3)
    p = rng.uniform(size=400)
    y = (rng.uniform(size=400) < p).astype(int)
    expected = stats.ks_2samp(p[y == 1], p[y == 0]).statistic
    assert metrics.ks(y, p).statistic == pytest.approx(expected)


def test_ks_of_a_backwards_model_is_zero():
    # Defaults get the lowest PDs: every cut-off flags more goods than bads (gap <= 0).
    result = metrics.ks([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1])
    assert result.statistic == 0.0
    assert math.isnan(result.cutoff)


def test_auc_and_gini_hand_computed():
    # Pairs (bad, good) where the bad has the higher PD, out of 3 * 5 = 15:
    #   bad 0.9 beats all 5 goods, bad 0.8 beats 5, bad 0.6 beats 0.5/0.4/0.3/0.2 = 4 -> 14.
    # AUC = 14/15, Gini = 2 * 14/15 - 1 = 13/15.
    assert metrics.auc(Y8, P8) == pytest.approx(14 / 15)
    assert metrics.gini(Y8, P8) == pytest.approx(13 / 15)


def test_auc_counts_ties_as_half():
    # Pairs: (0.5 bad, 0.5 good) tie = 0.5, (0.5 bad, 0.1 good) = 1, (0.3 bad, 0.5 good) = 0,
    # (0.3 bad, 0.1 good) = 1 -> 2.5 / 4 = 0.625.
    assert metrics.auc([1, 0, 1, 0], [0.5, 0.5, 0.3, 0.1]) == pytest.approx(0.625)


def test_brier_and_log_loss_hand_and_sklearn():
    y = np.array([1, 0, 1, 0])
    p = np.array([0.8, 0.3, 0.4, 0.1])
    # Brier = ((0.2)^2 + 0.3^2 + 0.6^2 + 0.1^2) / 4 = (0.04 + 0.09 + 0.36 + 0.01) / 4 = 0.125
    assert metrics.brier(y, p) == pytest.approx(0.125)
    # Log loss = -(ln 0.8 + ln 0.7 + ln 0.4 + ln 0.9) / 4
    hand = -(math.log(0.8) + math.log(0.7) + math.log(0.4) + math.log(0.9)) / 4
    assert metrics.log_loss(y, p) == pytest.approx(hand)
    rng = np.random.default_rng(0)
    p_big = rng.uniform(0.01, 0.99, size=500)
    y_big = (rng.uniform(size=500) < p_big).astype(int)
    assert metrics.brier(y_big, p_big) == pytest.approx(brier_score_loss(y_big, p_big))
    assert metrics.log_loss(y_big, p_big) == pytest.approx(sk_log_loss(y_big, p_big))


def test_ranking_metrics_match_sklearn_with_ties():
    # Rounded PDs make many ties: both sides must treat a tie group as one cut-off.
    rng = np.random.default_rng(8)
    p = np.round(rng.uniform(0, 0.5, size=3000), 2)
    y = (rng.uniform(size=3000) < p).astype(int)
    assert metrics.auc(y, p) == pytest.approx(roc_auc_score(y, p), rel=1e-12)
    assert metrics.pr_auc(y, p) == pytest.approx(average_precision_score(y, p), rel=1e-12)
    result = metrics.summary(y, p)
    assert result["auc"] == metrics.auc(y, p)
    assert result["pr_auc"] == metrics.pr_auc(y, p)
    assert result["ks"] == metrics.ks(y, p).statistic


def test_log_loss_clips_certain_misses():
    # A default given PD 0 costs -ln(eps) = 34.5 nats, not infinity.
    assert metrics.log_loss([1], [0.0]) == pytest.approx(-math.log(metrics.LOG_LOSS_EPS))
    # 1 - 1e-15 is not exact in float64, so the mirror case is only close.
    value = metrics.log_loss([0], [1.0])
    assert math.isfinite(value)
    assert value == pytest.approx(-math.log(metrics.LOG_LOSS_EPS), rel=1e-2)


def test_pr_auc_hand_computed():
    # Flag in PD order: 0.9 bad (precision 1/1, recall 1/3), 0.8 bad (2/2, 2/3),
    # 0.7 good, 0.6 bad (3/4, 3/3). AP = sum(recall step * precision)
    #   = 1/3 * 1 + 1/3 * 1 + 1/3 * 3/4 = 11/12.
    assert metrics.pr_auc(Y8, P8) == pytest.approx(11 / 12)


def test_summary_keys_and_values():
    result = metrics.summary(Y8, P8)
    assert tuple(result) == metrics.SUMMARY_KEYS
    assert result["n"] == 8
    assert result["n_defaults"] == 3
    assert result["default_rate"] == pytest.approx(3 / 8)
    assert result["mean_pd"] == pytest.approx(P8.mean())
    assert result["gini"] == pytest.approx(2 * result["auc"] - 1)
    assert result["ks"] == pytest.approx(0.8)
    assert result["ks_cutoff"] == pytest.approx(0.6)


@pytest.mark.parametrize("label", [0, 1])
def test_single_class_gives_nan_ranking_metrics(label):
    y = np.full(4, label)
    p = np.array([0.1, 0.2, 0.3, 0.4])
    result = metrics.summary(y, p)
    for key in ("auc", "gini", "ks", "ks_cutoff", "pr_auc"):
        assert math.isnan(result[key]), key
    assert result["brier"] == pytest.approx(np.mean((p - label) ** 2))
    assert result["n_defaults"] == 4 * label
    assert math.isnan(metrics.ks(y, p).statistic)


@pytest.mark.parametrize(
    ("y", "p", "message"),
    [
        ([0, 1], [0.1], "differ in length"),
        ([0, 2], [0.1, 0.2], "only 0 and 1"),
        ([0, 1], [0.1, 1.2], r"\[0, 1\]"),
        ([0, 1], [0.1, np.nan], "NaN"),
        ([], [], "empty"),
    ],
)
def test_bad_inputs_raise(y, p, message):
    with pytest.raises(ValueError, match=message):
        metrics.summary(y, p)


# ---------------------------------------------------------------- gains and calibration

Y10 = np.array([1, 1, 1, 0, 0, 1, 0, 0, 0, 0])
P10 = np.array([0.95, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1])


def test_gains_table_hand_computed():
    # 5 bins of 2 loans, riskiest first; 4 defaults in 10, overall rate 0.4.
    #   bin 1 {0.95, 0.9}: 2 defaults, rate 1.0, lift 1.0/0.4 = 2.5, capture 2/4, cum lift 2.5
    #   bin 2 {0.8, 0.7}:  1 default,  rate 0.5, lift 1.25, cum 3/4 = .75, cum lift (3/4)/.4
    #   bin 3 {0.6, 0.5}:  1 default,  lift 1.25, capture 4/4, cum lift (4/6)/0.4
    #   bin 4, 5:          0 defaults, lift 0, capture stays 1, cum lift (4/8)/.4, (4/10)/.4
    table = metrics.gains_table(Y10, P10, n_bins=5)
    assert list(table.columns) == [
        "decile",
        "n",
        "n_defaults",
        "default_rate",
        "min_pd",
        "max_pd",
        "mean_pd",
        "cum_n",
        "cum_defaults",
        "cum_capture",
        "lift",
        "cum_lift",
    ]
    assert table["decile"].tolist() == [1, 2, 3, 4, 5]
    assert table["n"].tolist() == [2, 2, 2, 2, 2]
    assert table["n_defaults"].tolist() == [2, 1, 1, 0, 0]
    assert table["cum_n"].tolist() == [2, 4, 6, 8, 10]
    assert table["cum_defaults"].tolist() == [2, 3, 4, 4, 4]
    np.testing.assert_allclose(table["cum_capture"], [2 / 4, 3 / 4, 1, 1, 1])
    np.testing.assert_allclose(table["lift"], [1.0 / 0.4, 0.5 / 0.4, 0.5 / 0.4, 0, 0])
    np.testing.assert_allclose(
        table["cum_lift"], [2.5, (3 / 4) / 0.4, (4 / 6) / 0.4, (4 / 8) / 0.4, (4 / 10) / 0.4]
    )
    np.testing.assert_allclose(table["max_pd"], [0.95, 0.8, 0.6, 0.4, 0.2])
    np.testing.assert_allclose(table["min_pd"], [0.9, 0.7, 0.5, 0.3, 0.1])
    np.testing.assert_allclose(table["mean_pd"], [0.925, 0.75, 0.55, 0.35, 0.15])


def test_gains_table_keeps_ties_in_one_bin_whatever_the_order():
    # n=6, 3 bins. Average rank from the top: 0.9 -> 1; the three 0.8s share positions 2-4 ->
    # rank 3; the two 0.1s share 5-6 -> 5.5. Bin = ceil(3 * r / 6):
    #   ceil(0.5) = 1, ceil(1.5) = 2, ceil(2.75) = 3 -> sizes 1, 3, 2.
    y = np.array([1, 1, 0, 0, 0, 1])
    p = np.array([0.9, 0.8, 0.8, 0.8, 0.1, 0.1])
    first = metrics.gains_table(y, p, n_bins=3)
    assert first["n"].tolist() == [1, 3, 2]
    assert first["n_defaults"].tolist() == [1, 1, 1]
    shuffled = np.random.default_rng(5).permutation(6)
    pd.testing.assert_frame_equal(first, metrics.gains_table(y[shuffled], p[shuffled], n_bins=3))


def test_gains_table_drops_bins_emptied_by_ties():
    # All PDs equal: one tie group, every loan in one bin.
    table = metrics.gains_table([0, 1, 0, 0], [0.2, 0.2, 0.2, 0.2], n_bins=10)
    assert table["decile"].tolist() == [1]
    assert table["n"].tolist() == [4]
    assert table["lift"].tolist() == [1.0]


def test_gains_table_without_defaults_has_nan_capture():
    table = metrics.gains_table([0, 0, 0, 0], [0.4, 0.3, 0.2, 0.1], n_bins=2)
    assert table["n"].tolist() == [2, 2]
    assert table["cum_capture"].isna().all()
    assert table["lift"].isna().all()


def test_calibration_table_and_hosmer_lemeshow_by_hand():
    # Two bins by PD, lowest first:
    #   bin 1: PDs 0.1, 0.2, 0.2, 0.3 (mean 0.2), 1 default, expected 0.8
    #          HL term (1 - 0.8)^2 / (4 * 0.2 * 0.8) = 0.04 / 0.64 = 0.0625
    #   bin 2: PDs 0.6, 0.7, 0.8, 0.9 (mean 0.75), 3 defaults, expected 3.0 -> term 0
    y = [0, 0, 0, 1, 0, 1, 1, 1]
    p = [0.1, 0.2, 0.2, 0.3, 0.6, 0.7, 0.8, 0.9]
    table = metrics.calibration_table(y, p, n_bins=2)
    assert table["n"].tolist() == [4, 4]
    assert table["n_defaults"].tolist() == [1, 3]
    np.testing.assert_allclose(table["mean_pd"], [0.2, 0.75])
    np.testing.assert_allclose(table["observed_rate"], [0.25, 0.75])
    np.testing.assert_allclose(table["expected_defaults"], [0.8, 3.0])
    np.testing.assert_allclose(table["hl_contribution"], [0.0625, 0.0], atol=1e-12)
    assert table.attrs["hosmer_lemeshow"] == pytest.approx(0.0625)
    assert table.attrs["hl_dof"] == 0
    assert (table["observed_lo"] < table["observed_rate"]).all()
    assert (table["observed_hi"] > table["observed_rate"]).all()


def test_calibration_pvalue_for_a_calibrated_model_is_not_tiny():
    rng = np.random.default_rng(11)
    p = rng.uniform(0.01, 0.3, size=5000)
    y = (rng.uniform(size=5000) < p).astype(int)
    table = metrics.calibration_table(y, p)
    assert len(table) == 10
    assert table.attrs["hl_dof"] == 8
    assert table.attrs["hl_pvalue"] > 0.001
    # Miscalibrated: PDs halved -> observed rates twice the predicted ones.
    bad = metrics.calibration_table(y, p / 2)
    assert bad.attrs["hl_pvalue"] < 1e-6


# ---------------------------------------------------------------- PSI


def test_psi_two_bins_by_hand():
    # Expected: five 0s and five 1s -> one cut at the median (0): bins (-inf, 0] and (0, inf),
    # shares 0.5 / 0.5. Actual: eight 0s, two 1s -> 0.8 / 0.2.
    # PSI = (0.8 - 0.5) ln(0.8 / 0.5) + (0.2 - 0.5) ln(0.2 / 0.5) = 0.3 ln 1.6 + 0.3 ln 2.5
    expected = np.array([0] * 5 + [1] * 5)
    actual = np.array([0] * 8 + [1] * 2)
    hand = 0.3 * math.log(1.6) + 0.3 * math.log(2.5)
    assert stability.psi(expected, actual, bins=2) == pytest.approx(hand)
    table = stability.psi_table(expected, actual, bins=2)
    assert table["bin"].tolist() == ["(-inf, 0]", "(0, inf)"]
    np.testing.assert_allclose(table["expected_share"], [0.5, 0.5])
    np.testing.assert_allclose(table["actual_share"], [0.8, 0.2])
    assert table["actual_n"].tolist() == [8, 2]
    assert table["psi"].sum() == pytest.approx(hand)


def test_psi_identical_is_zero_and_shift_is_large():
    rng = np.random.default_rng(7)
    x = rng.normal(size=4000)
    assert stability.psi(x, x) == 0.0
    assert stability.psi(x, rng.permutation(x)) == 0.0
    # A one-standard-deviation shift of a normal: PSI close to 1 (the symmetric KL is d^2 = 1).
    shifted = stability.psi(x, rng.normal(loc=1.0, size=4000))
    assert shifted > 0.5
    assert stability.psi_status(shifted) == "alert"
    # Another sample from the same distribution: small.
    assert stability.psi(x, rng.normal(size=4000)) < 0.05


def test_psi_categorical_with_unseen_category_by_hand():
    # Expected a: 0.5, b: 0.5. Actual a: 0.5, b: 0.3, c (unseen): 0.2, pooled into <unseen>
    # with expected share 0 -> replaced by PSI_EPS = 1e-4:
    #   a: 0;  b: (0.3 - 0.5) ln(0.3 / 0.5);  <unseen>: (0.2 - 1e-4) ln(0.2 / 1e-4)
    expected = np.array(["a"] * 5 + ["b"] * 5, dtype=object)
    actual = pd.Series(["a"] * 5 + ["b"] * 3 + ["c"] * 2)
    eps = stability.PSI_EPS
    hand = (0.3 - 0.5) * math.log(0.3 / 0.5) + (0.2 - eps) * math.log(0.2 / eps)
    assert stability.psi(expected, actual) == pytest.approx(hand)
    table = stability.psi_table(expected, actual)
    assert table["bin"].tolist() == ["a", "b", "<unseen>"]
    assert table["actual_n"].tolist() == [5, 3, 2]
    assert table["expected_share"].tolist() == [0.5, 0.5, 0.0]


def test_psi_numeric_missing_values_are_their_own_bin():
    # Expected: 1, 2, 3, NaN -> bins (-inf, 1], (1, 2], (2, inf) with 1/4 each, missing 1/4
    # (bins=3 cuts at the 1/3 and 2/3 quantiles of the three present values: 1 and 2).
    # Actual: 1, 2, 3, NaN x 5 -> 1/8, 1/8, 1/8, missing 5/8.
    #   three bins: 3 * (1/8 - 1/4) ln(0.5);  missing: (5/8 - 1/4) ln(2.5)
    expected = [1.0, 2.0, 3.0, np.nan]
    actual = [1.0, 2.0, 3.0] + [np.nan] * 5
    hand = 3 * (1 / 8 - 1 / 4) * math.log(0.5) + (5 / 8 - 1 / 4) * math.log(2.5)
    assert stability.psi(expected, actual, bins=3) == pytest.approx(hand)
    table = stability.psi_table(expected, actual, bins=3)
    assert table["bin"].tolist()[-1] == "<missing>"
    assert table["actual_n"].tolist() == [1, 1, 1, 5]


def test_psi_open_outer_bins_catch_out_of_range_values():
    ref = stability.reference_bins(np.arange(100.0), bins=4)
    table = stability.psi_table_from_reference(ref, np.array([-1000.0, 1000.0]))
    assert table["actual_n"].iloc[0] == 1
    assert table["actual_n"].iloc[-1] == 1
    assert table["actual_n"].sum() == 2


def test_reference_bins_round_trip_equals_psi():
    rng = np.random.default_rng(2)
    train = pd.Series(rng.gamma(2.0, size=3000))
    train[rng.uniform(size=3000) < 0.05] = np.nan
    test = pd.Series(rng.gamma(2.3, size=2000))
    ref = stability.reference_bins(train)
    stored = json.loads(json.dumps(ref))  # what the score stage reads back
    assert stored == ref
    assert sum(ref["shares"]) + ref["missing_share"] == pytest.approx(1.0)
    assert stability.psi_from_reference(stored, test) == stability.psi(train, test)

    cats = pd.Series(rng.choice(["x", "y", "z"], size=500), dtype="category")
    ref_cat = json.loads(json.dumps(stability.reference_bins(cats)))
    new = pd.Series(rng.choice(["x", "y", "w"], size=300))
    assert stability.psi_from_reference(ref_cat, new) == stability.psi(cats, new)


def test_reference_bins_with_heavy_ties_has_no_empty_expected_bins():
    # 70% zeros, then 1..30: no cut is duplicated and none sits at the maximum.
    x = np.r_[np.zeros(70), np.arange(1.0, 31.0)]
    ref = stability.reference_bins(x, bins=10)
    assert ref["edges"] == sorted(set(ref["edges"]))
    assert max(ref["edges"]) < 30
    assert min(ref["shares"]) > 0
    assert ref["shares"][0] == pytest.approx(0.7)


def test_psi_rejects_mismatched_kind():
    ref = stability.reference_bins([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="numeric"):
        stability.psi_from_reference(ref, ["a", "b"])


@pytest.mark.parametrize(
    ("value", "status"),
    [(0.0, "stable"), (0.0999, "stable"), (0.1, "warning"), (0.25, "warning"), (0.2501, "alert")],
)
def test_psi_status_thresholds(value, status):
    assert stability.psi_status(value) == status


def test_psi_frame_sorted_with_status():
    rng = np.random.default_rng(4)
    train = pd.DataFrame(
        {
            "same": rng.normal(size=2000),
            "shifted": rng.normal(size=2000),
            "region": rng.choice(["n", "s"], size=2000),
        }
    )
    test = pd.DataFrame(
        {
            "same": rng.normal(size=2000),
            "shifted": rng.normal(loc=1.0, size=2000),
            "region": rng.choice(["n", "s", "e"], size=2000, p=[0.45, 0.45, 0.1]),
        }
    )
    frame = stability.psi_frame(train, test, ["same", "shifted", "region"])
    assert list(frame.columns) == ["feature", "psi", "status", "psi_populated", "empty_bins"]
    assert frame["psi"].is_monotonic_decreasing
    by_name = frame.set_index("feature")
    assert by_name.loc["same", "status"] == "stable"
    assert by_name.loc["shifted", "status"] == "alert"
    assert by_name.loc["region", "psi"] == pytest.approx(
        stability.psi(train["region"], test["region"])
    )
    refs = json.loads(json.dumps(stability.reference_bins_frame(train)))
    pd.testing.assert_frame_equal(stability.psi_frame_from_reference(refs, test), frame)
    with pytest.raises(DataError, match="shifted"):
        stability.psi_frame(train, test.drop(columns="shifted"))


# ---------------------------------------------------------------- segments


def test_segment_summary_per_segment():
    df = pd.DataFrame(
        {
            "y": np.r_[Y8, [0, 0, 0]],
            "p": np.r_[P8, [0.1, 0.2, 0.3]],
            "product": ["card"] * 8 + ["mortgage"] * 3,
        }
    )
    table = metrics.segment_summary(df, "y", "p", "product")
    assert table["product"].tolist() == ["card", "mortgage"]
    assert table["n"].tolist() == [8, 3]
    assert table["n_defaults"].tolist() == [3, 0]
    np.testing.assert_allclose(table["share"], [8 / 11, 3 / 11])
    assert table.loc[0, "auc"] == pytest.approx(14 / 15)
    assert math.isnan(table.loc[1, "auc"])  # mortgage has no defaults
    with pytest.raises(DataError, match="region"):
        metrics.segment_summary(df, "y", "p", ["product", "region"])
