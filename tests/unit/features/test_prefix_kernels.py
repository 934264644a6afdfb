"""The array kernels of the DuckDB engine's families (pipeline/features/prefix.py) and their
chunking: the feature tests' books fit in one chunk, so the chunk boundaries are tested here."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest
from minibook import write_book

from pipeline.config import Config, FeaturesConfig
from pipeline.features import build_features, crm_arrays, repayment_arrays
from pipeline.features.prefix import Edges, InChunks, Inline, RangeMax, running_max_by_group


def test_edges_cut_each_group_where_a_search_would():
    rng = np.random.default_rng(0)
    group = np.sort(rng.integers(0, 50, 2000))
    day = rng.integers(18_000, 19_000, 2000)
    order = np.lexsort((day, group))
    group, day = group[order], day[order]
    dates = np.array([18_100, 18_500, 18_900, 18_500])
    edges = Edges(group, day, 60, dates)
    rows_g = rng.integers(0, 60, 500)
    rows_d = rng.choice(dates, 500)
    keys = group.astype(np.int64) * 100_000 + day
    expect = np.searchsorted(keys, rows_g.astype(np.int64) * 100_000 + rows_d)
    np.testing.assert_array_equal(edges.at(rows_g, rows_d), expect)
    np.testing.assert_array_equal(edges.start(rows_g), np.searchsorted(group, rows_g))
    weights = rng.integers(0, 1000, 2000).astype(np.float64)
    summed = Edges(group, day, 60, dates, weights=weights)
    cum = np.concatenate([[0], np.cumsum(weights)])
    np.testing.assert_array_equal(
        summed.at(rows_g, rows_d) - summed.start(rows_g),
        cum[expect] - cum[np.searchsorted(group, rows_g)],
    )


def test_range_max_and_running_max_by_group_match_a_loop():
    rng = np.random.default_rng(1)
    values = rng.integers(0, 100, 300).astype(np.int32)
    a = rng.integers(0, 290, 400)
    b = a + rng.integers(0, 11, 400)
    got = RangeMax(values, 10)(a, b)
    want = [values[i:j].max() if j > i else -1 for i, j in zip(a, b, strict=True)]
    np.testing.assert_array_equal(got, want)
    group = np.sort(rng.integers(0, 20, 300))
    signed = rng.integers(-(1 << 30), 1 << 31, 300)
    run = running_max_by_group(signed, group)
    want = pd.Series(signed).groupby(group).cummax().to_numpy()
    np.testing.assert_array_equal(run, want)


@pytest.mark.parametrize("threads", [0, 2])
def test_in_chunks_puts_whole_groups_together_and_rows_back_in_order(threads):
    rng = np.random.default_rng(2)
    event_group = np.sort(rng.integers(0, 40, 1000))
    row_group = rng.integers(0, 45, 700)  # some groups without events
    seen = []

    def compute(events: slice, rows: np.ndarray, first: int, n_groups: int) -> dict:
        groups = event_group[events]
        seen.append((first, n_groups))
        assert groups.min(initial=first) >= first and groups.max(initial=first) < first + n_groups
        counts = np.bincount(groups - first, minlength=n_groups)
        return {"n": counts[row_group[rows] - first]}

    with ThreadPoolExecutor(threads) if threads else Inline() as pool:
        out = InChunks(event_group, row_group, 97, compute, pool).result()
    assert len(seen) > 5  # several chunks
    np.testing.assert_array_equal(out["n"], np.bincount(event_group, minlength=45)[row_group])


def test_small_chunks_give_the_same_matrix(tmp_path, monkeypatch):
    from pipeline.config import GenerateConfig
    from pipeline.simulator.simulate import simulate

    interim = write_book(simulate(GenerateConfig(size="1500"), seed=3).tables(), tmp_path / "i")
    cfg = Config(features=FeaturesConfig(duckdb_threads=1))
    whole = build_features(interim, cfg)[0]
    monkeypatch.setattr(repayment_arrays, "CHUNK", 301)
    monkeypatch.setattr(crm_arrays, "CHUNK", 173)
    pd.testing.assert_frame_equal(build_features(interim, cfg)[0], whole, check_exact=True)
    # and the many chunks of both families as the tasks of two threads
    two = Config(features=FeaturesConfig(duckdb_threads=2))
    pd.testing.assert_frame_equal(build_features(interim, two)[0], whole, check_exact=True)
