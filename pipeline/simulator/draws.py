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
