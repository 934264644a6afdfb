"""Random streams keyed by (seed, month, purpose), and the small maths every part draws with.

Each purpose has its own stream, so forcing a lever changes only the draws that depend on it:
the counterfactual runs share every other piece of randomness.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logit as _scipy_logit


def rng(seed: int, month: int, purpose: str) -> np.random.Generator:
    """The stream of one purpose in one month (month -1: drawn once, before the book starts)."""
    key = int.from_bytes(purpose.encode()[:8].ljust(8, b"\0"), "little")
    return np.random.default_rng([seed, month + 1, key])


def categorical_draw(rng: np.random.Generator, logits: np.ndarray) -> np.ndarray:
    """One category index per row, from unnormalised log-probabilities (Gumbel-max)."""
    g = rng.gumbel(size=logits.shape)
    return np.argmax(logits + g, axis=1)


def recent(arr: np.ndarray, m: int, months: int) -> np.ndarray:
    """Sum over the `months` months before month m (events of month m are not yet known)."""
    return arr[..., max(0, m - months) : m].sum(axis=-1)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def logit(p: np.ndarray) -> np.ndarray:
    """log(p / (1 - p)); NaN where the outcome is settled (p is 0 or 1)."""
    out = _scipy_logit(p)
    return np.where(np.isfinite(out), out, np.nan)


def poisson_from_uniform(u: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """Poisson(lam) counts by inverting the CDF at `u` (one uniform per customer).

    numpy's own Poisson sampler takes a varying number of uniforms per draw, so one customer's
    intensity moving (a forced lever) would shift every later customer's draws in the stream;
    by inversion each customer's count depends on their own uniform and intensity only, and the
    counterfactual runs compare like with like (common random numbers)."""
    lam = np.broadcast_to(np.asarray(lam, dtype=float), u.shape)
    p = np.exp(-lam)
    cdf = p.copy()
    k = np.zeros(u.shape, dtype=np.int32)
    # Most counts are 0: each step works only on the draws still above their CDF.
    idx = np.flatnonzero(u > cdf)
    j = 0
    while idx.size and j <= 200:
        j += 1
        k[idx] += 1
        p[idx] = p[idx] * lam[idx] / j
        cdf[idx] += p[idx]
        idx = idx[u[idx] > cdf[idx]]
    return k


def binomial_from_uniform(u: np.ndarray, n: np.ndarray, p: float) -> np.ndarray:
    """Binomial(n, p) draws by inverting the CDF at `u` (one uniform per customer; see
    `poisson_from_uniform` for why)."""
    n = np.asarray(n, dtype=np.int64)
    if p <= 0:
        return np.zeros_like(n)
    if p >= 1:
        return n.copy()
    pk = (1 - p) ** n.astype(float)
    cdf = pk.copy()
    k = np.zeros(n.shape, dtype=np.int64)
    for j in range(int(n.max(initial=0))):
        short = (u > cdf) & (j < n)
        if not short.any():
            break
        k += short
        pk = pk * (n - j) / (j + 1) * p / (1 - p)
        cdf = cdf + pk
    return k
