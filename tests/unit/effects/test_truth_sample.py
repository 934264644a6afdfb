"""The truth on a sample of snapshots: which snapshots, and the Monte-Carlo error it states."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from pipeline.core.errors import ConfigError
from pipeline.effects.truth import _pooled, sample_snapshots

SNAPS = [dt.date(2020 + i // 4, 1 + 3 * (i % 4), 1) for i in range(17)]


def test_sample_snapshots_spans_the_range_evenly():
    picked = sample_snapshots(SNAPS, 6)
    assert len(picked) == 6 and picked[0] == SNAPS[0] and picked[-1] == SNAPS[-1]
    assert picked == sorted(picked)
    assert sample_snapshots(SNAPS, None) == SNAPS and sample_snapshots(SNAPS, 40) == SNAPS
    with pytest.raises(ConfigError):
        sample_snapshots(SNAPS, 0)


def _delta(rng: np.random.Generator, snaps: list, drift: float) -> pd.DataFrame:
    parts = []
    for i, s in enumerate(snaps):
        n = 200 + 10 * i
        parts.append(
            pd.DataFrame(
                {"snapshot_date": pd.Timestamp(s), "delta": drift * i + rng.normal(0, 0.01, n)}
            )
        )
    return pd.concat(parts, ignore_index=True)


def test_pooled_error_is_zero_on_every_snapshot_and_covers_the_full_mean_on_a_sample():
    rng = np.random.default_rng(0)
    full = _delta(rng, SNAPS, drift=0.002)
    mean_all, se_all = _pooled(full, len(SNAPS))
    assert se_all == 0.0 and mean_all == pytest.approx(full["delta"].mean())
    hits, ses = 0, []
    for seed in range(40):
        picked = sorted(np.random.default_rng(seed).choice(len(SNAPS), 6, replace=False))
        sub = full.loc[full["snapshot_date"].isin([pd.Timestamp(SNAPS[i]) for i in picked])]
        m, se = _pooled(sub, len(SNAPS))
        ses.append(se)
        hits += abs(m - mean_all) <= 1.96 * se
    # a drifting effect makes snapshots differ: the stated error is real and about right
    assert min(ses) > 0
    assert hits >= 34  # ~95% of 40
