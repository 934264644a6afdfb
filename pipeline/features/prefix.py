"""Window aggregates by prefix sums over events sorted by (group, day): the array kernels of the
DuckDB engine's families (`repayment_arrays`, `crm_arrays`).

Events of one group (a loan, a customer) are contiguous once sorted by the key
`group << 32 | day`, so the events of a group dated in [lo, hi) are the index range
[at(lo), at(hi)) and a window sum is the difference of a running sum at two indices: no join,
no per-window pass over the events. Sums stay in int64, so they equal SQL's integer sums
exactly. Range maxima, which no difference gives, come from a sparse table (log2 of the
longest window levels, each the max of two halves).
"""

from __future__ import annotations

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
    """The sort and lookup key of (group, day): groups are 0-based ints below 2^31."""
    return (group.astype(np.int64) << 32) | (day + _SHIFT)


class Sorted:
    """Events sorted by (group, day); `at(group, day)` is the index of the group's first event
    on or after `day`, so [at(g, lo), at(g, hi)) holds its events dated in [lo, hi)."""

    def __init__(self, group: np.ndarray, day: np.ndarray, order: np.ndarray | None = None):
        k = keys(group, day)
        self.order = np.argsort(k, kind="stable") if order is None else order
        self.key = k[self.order]

    def at(self, group: np.ndarray, day: np.ndarray | int) -> np.ndarray:
        return np.searchsorted(self.key, keys(group, np.asarray(day, dtype=np.int64)))

    def take(self, values: np.ndarray) -> np.ndarray:
        return values[self.order]


def running(values: np.ndarray) -> np.ndarray:
    """Running sum with a leading 0 (int64): the sum over [a, b) is out[b] - out[a]."""
    out = np.zeros(len(values) + 1, dtype=np.int64)
    np.cumsum(values, out=out[1:])
    return out


def between(cum: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return cum[b] - cum[a]


class RangeMax:
    """Max of `values` (int64, >= `empty` + 1) over index ranges [a, b) of at most `longest`."""

    def __init__(self, values: np.ndarray, longest: int, empty: int = -1) -> None:
        self.empty = empty
        self.levels = [np.asarray(values, dtype=np.int64)]
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
    """Running max within each group of events sorted by group (values in int32 range)."""
    offset = group.astype(np.int64) << 33
    return np.maximum.accumulate(values + offset) - offset


def last_index_by_group(valid: np.ndarray, start: np.ndarray) -> np.ndarray:
    """For each event index j, the last index <= j with `valid` in the same group, else -1
    (`start` holds each event's group start index)."""
    idx = np.where(valid, np.arange(len(valid)), -1)
    idx = np.maximum.accumulate(idx)
    return np.where(idx >= start, idx, -1)


def arrow_column(values: np.ndarray, valid: np.ndarray | None = None, type_=None) -> pa.Array:
    """values as an Arrow array, null where `valid` is False."""
    mask = None if valid is None else ~valid
    arr = pa.array(values, mask=mask)
    return arr if type_ is None else arr.cast(type_)
