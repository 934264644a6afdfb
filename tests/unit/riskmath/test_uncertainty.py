"""Bootstrap intervals by customer."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from pipeline.riskmath.uncertainty import auc_difference, cluster_bootstrap


def _book(customers: int, loans_each: int, seed: int):
    """Every loan of a customer shares the customer's outcome and score error, as rows of one
    customer at several snapshots do: the rows are far from independent."""
    rng = np.random.default_rng(seed)
    risk = rng.normal(size=customers)
    p_c = 1 / (1 + np.exp(-(-2.5 + 1.5 * risk)))
    y_c = (rng.random(customers) < p_c).astype(int)
    score_c = np.clip(p_c + rng.normal(0, 0.05, customers), 0, 1)
    cust = np.repeat(np.arange(customers), loans_each)
    return y_c[cust], score_c[cust] + rng.normal(0, 1e-4, cust.size).clip(0), cust


def test_interval_holds_the_estimate_and_is_reproducible():
    y, p, cust = _book(800, 5, seed=1)
    a = cluster_bootstrap(y, p, cust, n_resamples=200, seed=7)
    b = cluster_bootstrap(y, p, cust, n_resamples=200, seed=7)
    assert a.equals(b)
    assert a["statistic"].tolist() == ["auc", "gini", "ks"]
    assert a.loc[0, "estimate"] == pytest.approx(roc_auc_score(y, p))
    assert a.loc[1, "estimate"] == pytest.approx(2 * a.loc[0, "estimate"] - 1)
    assert (a["lower"] < a["estimate"]).all() and (a["estimate"] < a["upper"]).all()
    assert a.loc[0, "n_clusters"] == 800


def test_resampling_customers_gives_wider_intervals_than_resampling_rows():
    y, p, cust = _book(400, 10, seed=2)
    by_customer = cluster_bootstrap(y, p, cust, n_resamples=150, seed=3)
    by_row = cluster_bootstrap(y, p, np.arange(y.size), n_resamples=150, seed=3)
    width = lambda t: (t["upper"] - t["lower"]).to_numpy()  # noqa: E731
    # Ten rows per customer: about sqrt(10) = 3.2 times wider.
    assert (width(by_customer) > 2 * width(by_row)).all()


def test_auc_difference_of_a_model_with_itself_is_zero_and_of_a_better_one_positive():
    y, p, cust = _book(600, 4, seed=5)
    same = auc_difference(y, p, p, cust, n_resamples=200, seed=1)
    assert same == (0.0, 0.0, 0.0)
    rng = np.random.default_rng(9)
    worse = np.clip(p + rng.normal(0, 0.3, p.size), 0, 1)
    lead, lo, hi = auc_difference(y, p, worse, cust, n_resamples=200, seed=1)
    assert lead == pytest.approx(roc_auc_score(y, p) - roc_auc_score(y, worse))
    assert 0 < lo < lead < hi


def test_a_weighted_resample_scores_as_the_resample_with_repeated_rows():
    """The batch AUC and KS of draw-count weights equal scikit-learn's and scipy's on the
    resample written out row by row, ties included (scores rounded to 2 decimals)."""
    from scipy.stats import ks_2samp

    from pipeline.riskmath.uncertainty import _Ranked

    rng = np.random.default_rng(5)
    y = (rng.random(300) < 0.3).astype(int)
    p = np.round(rng.random(300) * 0.5 + 0.3 * y, 2)
    counts = rng.poisson(1.0, size=(6, 300))
    auc, ks = _Ranked(y, p).statistics(counts.astype(float))
    for i, c in enumerate(counts):
        rows = np.repeat(np.arange(300), c)
        assert auc[i] == pytest.approx(roc_auc_score(y[rows], p[rows]), abs=1e-12)
        expected_ks = ks_2samp(p[rows][y[rows] == 1], p[rows][y[rows] == 0]).statistic
        assert ks[i] == pytest.approx(expected_ks, abs=1e-12)
    one_class = _Ranked(y, p).statistics((y == 0)[None, :].astype(float))
    assert np.isnan(one_class).all()
