"""Window aggregates by prefix sums over events sorted by (group, day): the array kernels of the
DuckDB engine's families (`repayment_arrays`, `crm_arrays`).

Events of one group (a loan, a customer) are contiguous once sorted by (group, day), so the
events of a group dated in [lo, hi) are the index range [at(lo), at(hi)) (`Edges`) and a
window sum is the difference of a running sum at two indices: no join, no per-window pass over
the events. Sums stay in integers, so they equal SQL's integer sums exactly. Range maxima,
which no difference gives, come from a sparse table (`RangeMax`) or a running max per group.
`InChunks` runs a family over chunks of whole groups, as tasks of a pool.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future

import numpy as np
import pyarrow as pa

# Days are shifted into [0, 2^32) for the key; NEVER is a day after every real one (an unpaid
# instalment's paid date), still inside that range.
_SHIFT = 1 << 31
NEVER = _SHIFT - 2


def days(column: pa.ChunkedArray | pa.Array, fill: int = NEVER) -> np.ndarray:
    """A DATE column as int64 days since 1970-01-01, nulls as `fill`."""
    a = column.cast(pa.int32()).fill_null(fill)
    return np.asarray(a.to_numpy(), dtype=np.int64)


def keys(group: np.ndarray, day: np.ndarray) -> np.ndarray:
    """The lookup key of (group, day), ordered as (group, day): groups are 0-based ints below
    2^31."""
    return (group.astype(np.int64) << 32) | (day.astype(np.int64) + _SHIFT)


class Edges:
    """Where a few dates cut each group's events: `at(g, date)` is the index of group g's first
    event on or after `date` in (group, day) order, `start(g)` of its first event, so
    [at(g, lo), at(g, hi)) holds its events dated in [lo, hi).

    One count of the events per (group, date slot) and a running sum over it, instead of a
    binary search per row: the rows' searches jump across the whole event array (they took
    0.5-1.3 s of the repayment family on the bench book), the counts are read once in order.
    `weights` sums them instead of counting: the running sum of a value by date slot, with no
    sort of the events at all.
    """

    def __init__(
        self,
        group: np.ndarray,
        day: np.ndarray,
        n_groups: int,
        dates: np.ndarray,
        weights: np.ndarray | None = None,
    ) -> None:
        self.dates = np.unique(np.asarray(dates, dtype=np.int64))
        self.width = len(self.dates) + 1
        cell = _slots(self.dates, day)
        cell += 1
        cell += group * self.width
        cum = np.bincount(cell, weights=weights, minlength=n_groups * self.width + 1)
        np.cumsum(cum, out=cum)
        self.cum = cum if weights is None else np.rint(cum).astype(np.int64)

    def at(self, group: np.ndarray, date: np.ndarray) -> np.ndarray:
        k = np.searchsorted(self.dates, date)
        if not np.array_equal(self.dates[np.minimum(k, len(self.dates) - 1)], date):
            raise ValueError("Edges.at: a date that was not given when counting")
        return self.cum[group * self.width + k + 1]

    def start(self, group: np.ndarray) -> np.ndarray:
        return self.cum[group * self.width]


def _slots(dates: np.ndarray, day: np.ndarray) -> np.ndarray:
    """The number of `dates` (sorted) on or before each day: a lookup in a table of those
    counts per day of the dates' span, three times faster than a binary search per day."""
    if not len(dates):
        return np.zeros(len(day), dtype=np.int64)
    before = int(dates[0]) - 1
    table = np.searchsorted(dates, np.arange(before, int(dates[-1]) + 2), side="right")
    at = day - np.int64(before)
    np.clip(at, 0, len(table) - 1, out=at)
    return table[at]


def running(values: np.ndarray, dtype: type = np.int64) -> np.ndarray:
    """Running sum with a leading 0: the sum over [a, b) is out[b] - out[a]. int32 halves
    the memory of counts (fresh memory is much of the cost of this code)."""
    out = np.zeros(len(values) + 1, dtype=dtype)
    np.cumsum(values, out=out[1:])
    return out


def between(cum: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return cum[b] - cum[a]


class RangeMax:
    """Max of `values` (ints, >= `empty` + 1) over index ranges [a, b) of at most `longest`."""

    def __init__(self, values: np.ndarray, longest: int, empty: int = -1) -> None:
        self.empty = empty
        self.levels = [values]
        width = 1
        while width * 2 <= max(longest, 1):
            prev = self.levels[-1]
            nxt = prev.copy()
            np.maximum(prev[:-width], prev[width:], out=nxt[:-width])
            self.levels.append(nxt)
            width *= 2

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        n = b - a
        out = np.full(len(a), self.empty, dtype=np.int64)
        some = n > 0
        level = np.zeros(len(a), dtype=np.int64)
        level[some] = np.floor(np.log2(n[some])).astype(np.int64)
        for k, table in enumerate(self.levels):
            pick = some & (level == k)
            if pick.any():
                out[pick] = np.maximum(table[a[pick]], table[b[pick] - (1 << k)])
        return out


def running_max_by_group(values: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Running max within each group of events sorted by group (values in [-2^31, 2^32)):
    each group lifted above the ones before it, in one array worked in place."""
    lifted = group.astype(np.int64)
    lifted <<= 34
    lifted += values
    lifted += _SHIFT
    np.maximum.accumulate(lifted, out=lifted)
    lifted &= (1 << 34) - 1
    lifted -= _SHIFT
    return lifted


def nullable(values: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """values as float64, NaN where not `valid`: how the families hand over their aggregates
    (SQL's NULL as NaN; integers of up to 2^53, so exact)."""
    if valid is None:
        return values.astype(np.float64)
    return np.where(valid, values, np.nan)


class InChunks:
    """`compute` over chunks of whole groups of about `size` events, each a task of `pool`;
    `result()` waits for them and returns {name: values} in row order.

    compute(events, rows, first_group, n_groups) gets the slice of the events (sorted by group)
    of groups first_group ... first_group + n_groups - 1 and the indices of the rows of those
    groups (sorted by group, in row order within one), and returns {name: values} for those
    rows; its task puts them in their places.
    Small chunks keep every temporary array small enough for the allocator to reuse its memory
    (on this machine fresh memory costs more than the arithmetic done in it), and the two
    families' chunks, in one pool, keep both cores busy until the last is done.
    """

    def __init__(
        self,
        event_group: np.ndarray,
        row_group: np.ndarray,
        size: int,
        compute: Callable[[slice, np.ndarray, int, int], dict[str, np.ndarray]],
        pool: Executor,
    ) -> None:
        n = len(event_group)
        cuts = [0]
        while cuts[-1] < n:
            nxt = min(cuts[-1] + size, n)
            if nxt < n:  # back to the first event of that group, or past the group if it is long
                nxt = int(np.searchsorted(event_group, event_group[nxt], side="left"))
                if nxt <= cuts[-1]:
                    nxt = int(np.searchsorted(event_group, event_group[cuts[-1]], side="right"))
            cuts.append(nxt)
        if len(cuts) == 1:  # no events: one chunk of none
            cuts.append(0)
        top = int(max(event_group.max(initial=-1), row_group.max(initial=-1))) + 1
        firsts = [0, *(int(event_group[c]) for c in cuts[1:-1])]
        ends = [*firsts[1:], top]
        chunk_of_row = np.searchsorted(np.asarray(firsts[1:], dtype=np.int64), row_group, "right")
        # each chunk's rows in group order: their lookups in the running sums then go forward
        # through memory instead of jumping (20% less CPU for the repayment family on the bench
        # book) (a unique key for each row, whose default sort is 5x faster than a stable one)
        key = row_group.astype(np.int64) * len(row_group) + np.arange(len(row_group))
        by_group = np.argsort(key)
        bounds = np.searchsorted(chunk_of_row[by_group], np.arange(len(firsts) + 1))
        self.size, self.compute = len(row_group), compute
        self.out: dict[str, np.ndarray] = {}
        self.lock = threading.Lock()
        self.tasks = [
            pool.submit(
                self._run,
                slice(cuts[k], cuts[k + 1]),
                by_group[bounds[k] : bounds[k + 1]],
                first,
                max(end - first, 1),
            )
            for k, (first, end) in enumerate(zip(firsts, ends, strict=True))
        ]

    def _run(self, events: slice, rows: np.ndarray, first: int, n_groups: int) -> None:
        part = self.compute(events, rows, first, n_groups)
        with self.lock:
            for name, values in part.items():
                if name not in self.out:
                    self.out[name] = np.empty(self.size, dtype=values.dtype)
        for name, values in part.items():
            self.out[name][rows] = values

    def result(self) -> dict[str, np.ndarray]:
        for task in self.tasks:
            task.result()
        return self.out


class Inline(Executor):
    """An executor that runs each task when it is submitted, in the caller's thread."""

    def submit(self, fn, /, *args, **kwargs) -> Future:  # type: ignore[override]
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller by result()
            future.set_exception(exc)
        return future
