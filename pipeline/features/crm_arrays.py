"""The relationship family's aggregates, the parts `crm_win` and `crm_hist` that `derive`
reads: their one definition (the contract is `pipeline.features`'s docstring;
`tests/reference_features.py` computes the same in pandas), from the staged `crm`, `cgrid` and
`snaps` by prefix sums.

The events of each customer sorted by (timestamp, interaction_id): a window [s - k months, s)
starts and ends at midnight, so its events are an index range found from their days, and every
count is a difference of running counts. What depends on s itself:
- complaints resolved before s: the customer's few complaints of the window are checked per
  row, and the median of their resolution days taken over those;
- the satisfaction trend's sums of x = day - s, x^2 and x * rating, expanded into running sums
  of day, day^2 and day * rating, exact in integers;
- the history state: the last event before s, and the last one with a rating, by a running
  index.
The rows are the engine's (one per active loan and snapshot: a customer's values repeat on
each of their loans, which spares `derive` a join). Columns:
    crm_win   over the events in [s - k months, s), k as named (else 12; act_9m: the 9 months
              before the last 3): counts, rating counts and sums, resolution_days_median, and
              the trend's sums sat_sx, sat_sxx, sat_sxy (x = day - s in days)
    crm_hist  over every event before s (all NULL without one): last_day, the day of the
              last (days since 1970, its timestamp's date);
              edu_cum, the financial_education sessions; sat_last, nps_last, the last answers
              given, in (timestamp, interaction_id) order (NULL: never answered)
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor

import duckdb
import numpy as np
import pyarrow as pa

from pipeline.core.contract import CRM_CHANNELS
from pipeline.features.crm_sql import CHANNEL, TYPE
from pipeline.features.prefix import Edges, InChunks, days, nullable, running
from pipeline.features.specs import CHANNEL_WINDOWS

_US_PER_DAY = 86_400_000_000
# Events per chunk of customers: arrays of a few MB, whose memory the allocator reuses.
CHUNK = 1 << 19


def fetch_events(con: duckdb.DuckDBPyConnection) -> tuple[pa.Table, pa.Table]:
    """What `crm_tables` reads from `con` (the temp tables crm, snaps and customer_index): the
    events sorted by (customer, timestamp, interaction_id), and the snapshots with their window
    bounds. The DuckDB side of the family, kept apart so the engine can run the numpy side
    beside the repayment family's."""
    ev = con.sql(
        "SELECT x.ci, epoch_us(e.ts) AS ts_us, e.t, e.c, e.own, e.resolved_us,"
        " e.resolution_days, e.sat, e.nps, e.answered_out"
        " FROM crm e JOIN customer_index x USING (customer_id)"
        " ORDER BY x.ci, e.ts, e.interaction_id"
    ).to_arrow_table()
    snaps = con.sql("SELECT s, lo3, lo6, lo12 FROM snaps ORDER BY s").to_arrow_table()
    return ev, snaps


def crm_tables(
    fetched: tuple[pa.Table, pa.Table], rows: pa.Table, pool: Executor
) -> Callable[[], dict[str, dict[str, np.ndarray]]]:
    """Submit the family's chunks to `pool` and return what waits for them and gives
    {"crm_win", "crm_hist"}: {column above: float64, NaN for NULL}, one value per row of
    `rows` (columns ci, s: customers numbered as in customer_index, and snapshot dates), in
    that order, from what `fetch_events` read (numpy and Arrow compute, which release the GIL
    for most of the work)."""
    ev, snaps = fetched
    g = _ints(rows.column("ci"))
    s = days(rows.column("s"))

    def chunk(events: slice, at: np.ndarray, first: int, n_customers: int) -> dict:
        part = ev.slice(events.start, events.stop - events.start)
        return _aggregate(part, first, g[at] - first, s[at], n_customers, snaps)

    chunks = InChunks(_ints(ev.column("ci")), g, CHUNK, chunk, pool)

    def result() -> dict[str, dict[str, np.ndarray]]:
        cols = chunks.result()
        return {
            "crm_win": {name: cols[name] for name in _WIN_COLUMNS},
            "crm_hist": {name: cols[name] for name in _HIST_COLUMNS},
        }

    return result


def _ints(column: pa.ChunkedArray, fill: int = 0) -> np.ndarray:
    return column.cast(pa.int64()).fill_null(fill).to_numpy()


def _aggregate(
    ev: pa.Table,
    first_customer: int,
    g: np.ndarray,
    s: np.ndarray,
    n_customers: int,
    snaps: pa.Table,
) -> dict[str, np.ndarray]:
    """The columns of both tables for rows (customer g, snapshot day s) over the events `ev`
    of customers first_customer ... first_customer + n_customers - 1 (g counted from the
    first)."""
    ci = _ints(ev.column("ci")) - first_customer
    ts_us = _ints(ev.column("ts_us"))
    day = np.floor_divide(ts_us, _US_PER_DAY)
    t = _ints(ev.column("t"), -1)
    c = _ints(ev.column("c"), -1)

    snap_days = days(snaps.column("s"))
    at_snap = np.searchsorted(snap_days, s)
    snap_lo = {w: days(snaps.column(f"lo{w}")) for w in (3, 6, 12)}
    # the events are in (customer, timestamp, interaction_id) order, so in day order too
    edges = Edges(ci, day, n_customers, np.concatenate([snap_days, *snap_lo.values()]))
    start, hi = edges.start(g), edges.at(g, s)
    first = {w: edges.at(g, snap_lo[w][at_snap]) for w in (3, 6, 12)}

    def count(flag: np.ndarray, *windows: int) -> list[np.ndarray]:
        cum = running(flag.astype(np.int64))
        return [cum[hi] - cum[first[w]] for w in windows]

    out: dict[str, np.ndarray] = {}
    everything = np.ones(len(t), dtype=bool)
    for w, n in zip((3, 6, 12), count(everything, 3, 6, 12), strict=True):
        out[f"n_{w}m"] = _col(n)
    for ch in CRM_CHANNELS:
        counts = count(c == CHANNEL[ch], *CHANNEL_WINDOWS)
        for w, n in zip(CHANNEL_WINDOWS, counts, strict=True):
            out[f"n_{ch}_{w}m"] = _col(n)

    def is_(name: str) -> np.ndarray:
        return t == TYPE[name]

    (out["reminders_3m"],) = map(_col, count(is_("payment_reminder"), 3))
    out["checkins_3m"], out["checkins_12m"] = map(_col, count(is_("proactive_checkin"), 3, 12))
    complaint = is_("complaint")
    out["complaints_3m"], out["complaints_6m"], out["complaints_12m"] = map(
        _col, count(complaint, 3, 6, 12)
    )
    out.update(_resolved(ev, complaint, s, hi, first))
    (out["service_requests_12m"],) = map(_col, count(is_("service_request"), 12))
    out["hardship_3m"], out["hardship_12m"] = map(_col, count(is_("hardship_request"), 3, 12))
    (out["marketing_12m"],) = map(_col, count(is_("marketing"), 12))
    out.update(_satisfaction(ev, day, s, hi, first[12]))
    nps_valid = ev.column("nps").is_valid().to_numpy(zero_copy_only=False)
    (nps_n,) = count(nps_valid, 12)
    nps_sum = running(_ints(ev.column("nps")))
    out["nps_n"] = _col(nps_n)
    out["nps_sum"] = _col(nps_sum[hi] - nps_sum[first[12]], nps_n > 0)
    own = _ints(ev.column("own")).astype(bool)
    act_3m, act_12m = count(own, 3, 12)
    out["act_3m"], out["act_9m"] = _col(act_3m), _col(act_12m - act_3m)
    answered = ev.column("answered_out")
    (out["outbound_12m"],) = map(
        _col, count(answered.is_valid().to_numpy(zero_copy_only=False), 12)
    )
    (out["answered_12m"],) = map(_col, count(_ints(answered).astype(bool), 12))
    return {**out, **_history(ev, t, day, start, hi)}


_HIST_COLUMNS = ("last_day", "edu_cum", "sat_last", "nps_last")
_WIN_COLUMNS = (
    ["n_3m", "n_6m", "n_12m"]
    + [f"n_{ch}_{w}m" for ch in CRM_CHANNELS for w in CHANNEL_WINDOWS]
    + [
        "reminders_3m",
        "checkins_3m",
        "checkins_12m",
        "complaints_3m",
        "complaints_6m",
        "complaints_12m",
        "complaints_resolved_6m",
        "complaints_resolved_12m",
        "resolution_days_median",
        "service_requests_12m",
        "hardship_3m",
        "hardship_12m",
        "marketing_12m",
        "sat_n",
        "sat_sum",
        "sat_sx",
        "sat_sxx",
        "sat_sxy",
        "nps_n",
        "nps_sum",
        "act_3m",
        "act_9m",
        "outbound_12m",
        "answered_12m",
    ]
)


def _resolved(
    ev: pa.Table,
    complaint: np.ndarray,
    s: np.ndarray,
    hi: np.ndarray,
    first: dict[int, np.ndarray],
) -> dict[str, np.ndarray]:
    """Complaints of the window resolved before s, and the median of their resolution days
    (DuckDB's: the mean of the two middle values as lo + 0.5 * (hi - lo))."""
    idx = np.flatnonzero(complaint)
    # complaints sorted as the events: their position among them is a running count
    before = running(complaint.astype(np.int64))
    lo6, lo12, hi = before[first[6]], before[first[12]], before[hi]
    resolved_us = _ints(ev.column("resolved_us").take(idx), np.iinfo(np.int64).max)
    res_days = ev.column("resolution_days").take(idx).cast(pa.float64())
    res_days = res_days.fill_null(np.nan).to_numpy()
    s_us = s * _US_PER_DAY
    n6 = np.zeros(len(s), dtype=np.int64)
    n12 = np.zeros(len(s), dtype=np.int64)
    some = np.flatnonzero(hi > lo12)
    longest = int((hi - lo12).max(initial=0))
    picked = np.full((len(some), max(longest, 1)), np.nan)
    for k in range(longest):
        j = lo12[some] + k
        ok = j < hi[some]
        jj = np.where(ok, j, 0)
        res = ok & (resolved_us[jj] < s_us[some])
        n12[some] += res
        n6[some] += res & (j >= lo6[some])
        picked[:, k] = np.where(res, res_days[jj], np.nan)
    picked.sort(axis=1)  # NaN (not resolved, or no days) last
    n = (~np.isnan(picked)).sum(axis=1)
    has = n > 0
    rows = np.arange(len(some))
    low = picked[rows, np.maximum((n - 1) // 2, 0)]
    high = picked[rows, np.maximum(n // 2, 0)]
    median = np.full(len(s), np.nan)
    median[some] = np.where(n % 2 == 1, low, low + 0.5 * (high - low))
    med_valid = np.zeros(len(s), dtype=bool)
    med_valid[some] = has
    return {
        "complaints_resolved_6m": _col(n6),
        "complaints_resolved_12m": _col(n12),
        "resolution_days_median": _col(median, med_valid),
    }


def _satisfaction(
    ev: pa.Table, day: np.ndarray, s: np.ndarray, hi: np.ndarray, lo: np.ndarray
) -> dict[str, np.ndarray]:
    """Count and sum of ratings over the window, and the sums of x = day - s, x^2, x * rating
    for the trend, from running sums of day, day^2 and day * rating (exact in int64)."""
    rated = ev.column("sat").is_valid().to_numpy(zero_copy_only=False)
    y = _ints(ev.column("sat"))
    d = np.where(rated, day - 20_000, 0)  # near 0: smaller running sums, same differences
    n = running(rated.astype(np.int64))
    sy, sd, sdd, sdy = running(y), running(d), running(d * d), running(d * y)
    cnt = n[hi] - n[lo]
    sum_y = sy[hi] - sy[lo]
    sum_d = sd[hi] - sd[lo]
    x0 = s - 20_000
    some = cnt > 0
    return {
        "sat_n": _col(cnt),
        "sat_sum": _col(sum_y, some),
        "sat_sx": _col(sum_d - cnt * x0, some),
        "sat_sxx": _col(sdd[hi] - sdd[lo] - 2 * x0 * sum_d + cnt * x0 * x0, some),
        "sat_sxy": _col(sdy[hi] - sdy[lo] - x0 * sum_y, some),
    }


def _history(
    ev: pa.Table, t: np.ndarray, day: np.ndarray, start: np.ndarray, hi: np.ndarray
) -> dict[str, np.ndarray]:
    """The state at s of the events before it: last contact, financial-education sessions so
    far, last satisfaction and NPS answers (NULL without any event before s)."""
    any_before = hi > start
    last = np.maximum(hi - 1, 0)
    edu = running((t == TYPE["financial_education"]).astype(np.int64))
    out = {
        "last_day": _col(day[last], any_before),
        "edu_cum": _col(edu[hi] - edu[start], any_before),
    }
    for name, col in (("sat_last", "sat"), ("nps_last", "nps")):
        valid = ev.column(col).is_valid().to_numpy(zero_copy_only=False)
        idx = np.where(valid, np.arange(len(valid)), -1)
        idx = np.maximum.accumulate(idx)
        at = np.where(any_before, idx[last], -1)
        ok = any_before & (at >= start)
        values = _ints(ev.column(col))
        out[name] = _col(values[np.maximum(at, 0)], ok)
    return out


_col = nullable
