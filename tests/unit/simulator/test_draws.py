"""The simulator's draws by inversion: the right distribution, and one customer's intensity
never moves another customer's draw (the counterfactual runs' common random numbers)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from pipeline.simulator.draws import binomial_from_uniform, poisson_from_uniform


@pytest.mark.parametrize("lam", [0.0, 0.04, 0.7, 3.0])
def test_poisson_by_inversion_has_the_poisson_distribution(lam):
    u = np.random.default_rng(1).random(50_000)
    k = poisson_from_uniform(u, np.full(len(u), lam))
    assert k.min() >= 0
    assert k.mean() == pytest.approx(lam, abs=4 * np.sqrt(max(lam, 1e-3) / len(u)) + 1e-9)
    expected = stats.poisson.ppf(u, lam) if lam > 0 else np.zeros(len(u))
    assert (k == expected).mean() > 0.999  # scipy's inverse agrees (ties at the CDF's steps)


def test_binomial_by_inversion_matches_scipy():
    rng = np.random.default_rng(2)
    u, n = rng.random(20_000), rng.integers(0, 5, 20_000)
    k = binomial_from_uniform(u, n, 0.7)
    assert ((k >= 0) & (k <= n)).all()
    assert (k == stats.binom.ppf(u, n, 0.7)).mean() > 0.999
    assert (binomial_from_uniform(u, n, 1.0) == n).all()
    assert (binomial_from_uniform(u, n, 0.0) == 0).all()


def test_one_customers_intensity_leaves_the_others_draws_alone():
    u = np.random.default_rng(3).random(1000)
    lam = np.full(1000, 0.5)
    before = poisson_from_uniform(u, lam)
    lam[10] = 5.0
    after = poisson_from_uniform(u, lam)
    assert after[10] >= before[10]
    assert (np.delete(after, 10) == np.delete(before, 10)).all()
