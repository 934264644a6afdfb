import numpy as np
import pandas as pd
import pytest

from pipeline.riskmath.characteristic_stability import csi_frame
from pipeline.riskmath.stability import PSI_EPS, psi_frame


def test_csi_is_the_shift_of_mean_contributions_largest_first():
    expected = pd.DataFrame({"a": [0.1, 0.3], "b": [-1.0, -1.0], "c": [0.0, 0.2]})
    actual = pd.DataFrame({"a": [0.2, 0.2], "b": [0.0, 1.0], "c": [0.3, 0.3]})
    out = csi_frame(expected, actual, points_per_log_odds=20 / np.log(2))
    assert list(out["feature"]) == ["b", "c", "a"]  # |1.5| > |0.2| > |0|
    row = out.set_index("feature")
    assert row.loc["b", "shift_log_odds"] == pytest.approx(1.5)
    assert row.loc["c", "shift_log_odds"] == pytest.approx(0.2)
    assert row.loc["a", "shift_log_odds"] == pytest.approx(0.0)
    # a riskier contribution costs points
    assert row.loc["b", "shift_points"] == pytest.approx(-1.5 * 20 / np.log(2))
    assert row.loc["b", "share_of_shift"] == pytest.approx(1.5 / 1.7)
    assert out["share_of_shift"].sum() == pytest.approx(1.0)


def test_csi_of_identical_samples_is_zero_and_missing_features_are_named():
    frame = pd.DataFrame({"a": [0.1, 0.5], "b": [1.0, 2.0]})
    out = csi_frame(frame, frame, 1.0)
    assert (out["shift_log_odds"] == 0).all() and (out["share_of_shift"] == 0).all()
    with pytest.raises(ValueError, match="lacks b"):
        csi_frame(frame, frame[["a"]], 1.0)
    with pytest.raises(ValueError, match="both samples need rows"):
        csi_frame(frame.iloc[:0], frame, 1.0)


def test_psi_frame_separates_the_empty_bins_from_the_populated_ones():
    """Two bins by hand: train half 0s half 1s; test all 1s. The 0-bin is empty in the test:
    its term is set by the floor, the populated part is toad's figure."""
    train = pd.DataFrame({"x": [0.0] * 50 + [1.0] * 50, "same": np.arange(100.0)})
    test = pd.DataFrame({"x": [1.0] * 100, "same": np.arange(100.0)})
    out = psi_frame(train, test, bins=2).set_index("feature")
    empty_term = (PSI_EPS - 0.5) * np.log(PSI_EPS / 0.5)
    populated = (1.0 - 0.5) * np.log(1.0 / 0.5)
    assert out.loc["x", "psi"] == pytest.approx(empty_term + populated)
    assert out.loc["x", "psi_populated"] == pytest.approx(populated)
    assert out.loc["x", "empty_bins"] == 1
    assert out.loc["same", "psi"] == 0 and out.loc["same", "empty_bins"] == 0
