"""The repayment family's aggregates, the parts `rep` and `rep_old` that `derive` reads: their one
definition (the contract is `pipeline.features`'s docstring; `tests/reference_features.py`
computes the same in pandas), from the staged `inst`, `crm` and `snaps` by prefix sums.

Per active loan and snapshot s, with the loan's instalments sorted by due date:
- what does not depend on s (count, late flag, days late, amounts due, reminders) is a
  difference of running sums at the window's two edges;
- an active loan has settled every instalment due before s - default_dpd days before s (an
  unpaid or later one would have defaulted it), so only the few due in [s - default_dpd, s)
  are looked at per row for what does ("paid before s", DPD now, amounts paid);
- principal paid before s is summed by paid date (prepayments count when paid, not when
  due);
- an instalment is reminded when the customer has a payment reminder dated in the ten days
  before its due date: a count from two lookups in the sorted reminders;
- maxima over a window come from a sparse table, the worst delay ever and the last late
  payment from running maxima per loan.

The rows are the grid's (one per active loan and snapshot), in the engine's order. Columns:
    rep      dpd_now: days since the oldest instalment due and unpaid at s (NULL: none);
             last_late_day: the last day with DPD > 0 (days since 1970), over the whole
             history: a late payment's date, or s while a late instalment is unpaid (NULL:
             never late);
             prin_c: principal paid before s in cents, whatever the due date;
             over the instalments due in [s - W months, s): n_Wm, late_Wm, and the delay as
             of s summed and maximal, dpd_sum_Wm, dpd_max_Wm (NULL: none due); over those of
             the last 12 months: partial_12m, paid_c_12m / due_c_12m (paid before s / due),
             reminded_12m, reminded_on_time_12m
    rep_old  n and dpd_max of the instalments due before s - 12 months: all settled before s
             on an active loan (default_dpd < 12 months), so their delay is their days late.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor

import duckdb
import numpy as np
import pyarrow as pa

from pipeline.features.crm_sql import TYPE
from pipeline.features.prefix import (
    NEVER,
    Edges,
    InChunks,
    RangeMax,
    between,
    days,
    keys,
    nullable,
    running,
    running_max_by_group,
)
from pipeline.features.specs import WINDOWS

# An instalment is "reminded" when the customer got a payment reminder on one of the
# REMINDER_DAYS calendar days before its due date (timestamp in [due - 10 days, due)).
REMINDER_DAYS = 10

# Instalments per chunk of loans: arrays of a few MB, whose memory the allocator reuses.
CHUNK = 1 << 19
# (instalments, payment reminders: numpy columns; snapshots with their window bounds)
Fetched = tuple[dict[str, np.ndarray], dict[str, np.ndarray], pa.Table]
_EMPTY = -1  # no delay yet: every real delay is >= 0
_NO_DAY = -(1 << 30)


def fetch_instalments(con: duckdb.DuckDBPyConnection) -> Fetched:
    """What `repayment_tables` reads from `con` (the temp tables inst, crm, snaps, loan_index
    and customer_index): the instalments sorted by loan and due date and the payment reminders
    by customer and day, as numpy columns; and the snapshots with their window bounds. The
    DuckDB side of the family, kept apart so the engine can run the numpy side beside the CRM
    family's."""
    # Sorted by DuckDB, as narrow as it can be: turning DuckDB's rows into arrays costs more
    # than joining and sorting them (on the bench book 0.6 s for ten columns, 0.3 s for these),
    # so what numpy derives exactly (days late, the customer) is derived there. Arrow rather than
    # fetchnumpy: faster here.
    inst = con.sql(
        f"""SELECT x.li::INTEGER AS li, {_day("i.due", "0")} AS due,
               {_day("i.paid", str(NEVER))} AS paid, coalesce(i.due_c, 0) AS due_c,
               coalesce(i.paid_c, 0) AS paid_c, coalesce(i.prin_c, 0) AS prin_c,
               (coalesce(i.late, FALSE)::TINYINT
                + 2 * coalesce(i.partial, FALSE)::TINYINT)::TINYINT AS flags
        FROM inst i JOIN loan_index x USING (loan_id)
        ORDER BY x.li, i.due"""
    ).to_arrow_table()
    inst = {name: inst.column(name).to_numpy() for name in inst.column_names}
    # the customer of each loan (its instalments' customer_id), by loan number
    customers = con.sql(
        """SELECT coalesce(c.ci, -1) AS ci FROM loan_index x JOIN ln USING (loan_id)
        LEFT JOIN customer_index c ON c.customer_id = ln.customer_id ORDER BY x.li"""
    ).to_arrow_table()
    inst["loan_ci"] = customers.column("ci").to_numpy()
    reminders = con.sql(
        f"""SELECT x.ci, {_day("CAST(e.ts AS DATE)", "0")} AS day
        FROM crm e JOIN customer_index x USING (customer_id)
        WHERE e.t = {TYPE["payment_reminder"]} ORDER BY 1, 2"""
    ).fetchnumpy()
    snaps = con.sql("SELECT s, lo3, lo6, lo12 FROM snaps ORDER BY s").to_arrow_table()
    return inst, reminders, snaps


def repayment_tables(
    fetched: Fetched, rows: pa.Table, default_dpd: int, pool: Executor
) -> Callable[[], dict[str, dict[str, np.ndarray]]]:
    """Submit the family's chunks to `pool` and return what waits for them and gives {"rep",
    "rep_old"}: {column above: float64, NaN for NULL}, one value per row of `rows` (columns
    li, s: the grid's loans numbered as in loan_index, and snapshot dates), in that order,
    from what `fetch_instalments` read. numpy alone, which releases the GIL in most of this
    work."""
    inst, reminders, snaps = fetched
    loan_ci = inst.pop("loan_ci")
    reminder_keys = keys(reminders["ci"], reminders["day"])  # once, for every chunk
    g = rows.column("li").to_numpy()
    s = days(rows.column("s"))

    def chunk(events: slice, at: np.ndarray, first: int, n_loans: int) -> dict:
        part = {k: v[events] for k, v in inst.items()}
        _unpack(part, loan_ci)
        _match_reminders(part, reminder_keys)
        part["li"] = part["li"] - first
        return _aggregate(part, g[at] - first, s[at], n_loans, snaps, int(default_dpd))

    chunks = InChunks(inst["li"], g, CHUNK, chunk, pool)

    def result() -> dict[str, dict[str, np.ndarray]]:
        cols = chunks.result()
        rep = {k: v for k, v in cols.items() if not k.startswith("old_")}
        old = {k[4:]: v for k, v in cols.items() if k.startswith("old_")}
        return {"rep": rep, "rep_old": old}

    return result


def _unpack(inst: dict, loan_ci: np.ndarray) -> None:
    """The columns `fetch_instalments` left to numpy: the flags late and partial (int8), days
    late (paid - due when paid late, else 0, also when unpaid) and the customer number ci of
    each instalment (`loan_ci`: of each loan)."""
    flags = inst.pop("flags")
    inst["late"] = flags & 1
    inst["partial"] = flags >> 1
    paid_late = inst["late"].astype(bool) & (inst["paid"] != NEVER)
    inst["late_days"] = np.where(paid_late, inst["paid"] - inst["due"], 0).astype(np.int32)
    inst["ci"] = loan_ci[inst["li"]]


def _match_reminders(inst: dict, sorted_keys: np.ndarray) -> None:
    """inst["reminded"]: a payment reminder of the customer dated on one of the REMINDER_DAYS
    days before the due date (`sorted_keys`: the reminders' `keys` of (customer, day), sorted);
    inst["reminded_on_time"]: and the instalment paid by its due date. Customers without an
    active loan (ci -1) never count."""
    ci = inst["ci"]
    known = ci >= 0
    customer = np.maximum(ci, 0)
    lo = np.searchsorted(sorted_keys, keys(customer, inst["due"] - REMINDER_DAYS))
    hi = np.searchsorted(sorted_keys, keys(customer, inst["due"]))
    reminded = known & (hi > lo)
    inst["reminded"] = reminded.view(np.int8)
    inst["reminded_on_time"] = (reminded & (inst["paid"] <= inst["due"])).view(np.int8)


def _day(column: str, null: str) -> str:
    return f"coalesce(date_diff('day', DATE '1970-01-01', {column}), {null})::INTEGER"


def _aggregate(
    inst: dict, g: np.ndarray, s: np.ndarray, n_loans: int, snaps: pa.Table, dpd: int
) -> dict[str, np.ndarray]:
    """The columns for rows (loan g, snapshot day s) over `inst` (numpy, sorted by loan and due
    date, loans numbered 0 ... n_loans - 1; days since 1970, the paid day of an unpaid
    instalment NEVER; days late 0 where unpaid, never read there)."""
    loan, due, paid = inst["li"], inst["due"], inst["paid"]
    late, late_days, partial = inst["late"], inst["late_days"], inst["partial"]
    due_c, paid_c = inst["due_c"], inst["paid_c"]
    cum_late, cum_partial = running(late, np.int32), running(partial, np.int32)
    cum_days, cum_due_c, cum_paid_c = running(late_days), running(due_c), running(paid_c)
    cum_rem = running(inst["reminded"], np.int32)
    cum_rem_ok = running(inst["reminded_on_time"], np.int32)

    snap_days = days(snaps.column("s"))
    at_snap = np.searchsorted(snap_days, s)
    snap_lo = {w: days(snaps.column(f"lo{w}")) for w in WINDOWS}
    lo = {w: snap_lo[w][at_snap] for w in WINDOWS}
    cuts = np.concatenate([snap_days, snap_days - dpd, *snap_lo.values()])
    edges = Edges(loan, due, n_loans, cuts)
    start, hi = edges.start(g), edges.at(g, s)
    edge = edges.at(g, s - dpd)  # before it: settled before s
    first = {w: edges.at(g, lo[w]) for w in WINDOWS}
    fixed_end = {w: np.maximum(first[w], edge) for w in WINDOWS}

    longest = int(max((fixed_end[w] - first[w]).max(initial=0) for w in WINDOWS))
    window_max = RangeMax(late_days, longest, _EMPTY)
    dmax = {w: window_max(first[w], fixed_end[w]) for w in WINDOWS}
    dsum = {w: between(cum_days, first[w], fixed_end[w]) for w in WINDOWS}
    partial_12 = between(cum_partial, first[12], fixed_end[12])
    paid_c_12 = between(cum_paid_c, first[12], fixed_end[12])
    # the last late payment and worst delay before the edge: running maxima per loan
    late_paid = np.where(late.astype(bool), paid, _NO_DAY)
    last_late_run = running_max_by_group(late_paid, loan)
    worst_run = running_max_by_group(late_days, loan)

    def before(run: np.ndarray, end: np.ndarray, none: int) -> np.ndarray:
        return np.where(end > start, run[np.maximum(end - 1, 0)], none)

    last_late = before(last_late_run, edge, _NO_DAY)
    dpd_now = np.full(len(g), _EMPTY, dtype=np.int64)

    # the instalments due in [s - dpd, s): at most a few per row
    for k in range(int((hi - edge).max(initial=0))):
        j = edge + k
        ok = j < hi
        jj = np.where(ok, j, 0)
        due_j, paid_j = due[jj], paid[jj]
        paid_before = paid_j < s
        delay = np.where(paid_before, late_days[jj], s - due_j)
        for w in WINDOWS:
            inw = ok & (j >= first[w])
            dsum[w] += np.where(inw, delay, 0)
            dmax[w] = np.maximum(dmax[w], np.where(inw, delay, _EMPTY))
        dpd_now = np.maximum(dpd_now, np.where(ok & ~paid_before, s - due_j, _EMPTY))
        settled = ok & paid_before
        partial_12 += settled & partial[jj].astype(bool)
        paid_c_12 += np.where(settled, paid_c[jj], 0)
        late_day = np.where(paid_before, paid_j, s)
        last_late = np.maximum(last_late, np.where(ok & late[jj].astype(bool), late_day, _NO_DAY))

    # principal paid before s, whenever due: summed by paid date (whole cents, exact in double)
    prin_c = inst["prin_c"].astype(np.float64)
    by_paid = Edges(loan, paid, n_loans, snap_days, weights=prin_c)
    prin = by_paid.at(g, s) - by_paid.start(g)

    n = {w: hi - first[w] for w in WINDOWS}
    has12 = n[12] > 0
    out = {
        "dpd_now": _col(dpd_now, dpd_now != _EMPTY),
        "last_late_day": _col(last_late, last_late != _NO_DAY),
        "prin_c": _col(prin),
        "partial_12m": _col(partial_12),
        "paid_c_12m": _col(paid_c_12, has12),
        "due_c_12m": _col(between(cum_due_c, first[12], hi), has12),
        "reminded_12m": _col(between(cum_rem, first[12], hi)),
        "reminded_on_time_12m": _col(between(cum_rem_ok, first[12], hi)),
    }
    for w in WINDOWS:
        out[f"dpd_max_{w}m"] = _col(dmax[w], n[w] > 0)
        out[f"dpd_sum_{w}m"] = _col(dsum[w], n[w] > 0)
        out[f"n_{w}m"] = _col(n[w])
        out[f"late_{w}m"] = _col(between(cum_late, first[w], hi))
    n_old = first[12] - start
    out["old_n"] = _col(n_old)
    out["old_dpd_max"] = _col(before(worst_run, first[12], _EMPTY), n_old > 0)
    return out


_col = nullable
