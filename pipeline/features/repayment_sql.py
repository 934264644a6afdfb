"""DuckDB SQL of the repayment family: instalments, loan status and the per-snapshot aggregates.

Every statement is one SELECT over the views and earlier steps of `pipeline.features.plan`, in
the DuckDB SQL both engines run (see there). Money is accumulated in whole cents (BIGINT) and
means are integer sums over counts, so the parallel aggregation gives bit-identical results on
every run.

Instalments meet snapshots in range joins against the small `snaps` table, bounded by the
loan's `until` date (the last date it can be active: min(default date, close date)), so every
pair produced belongs to an active loan and none is thrown away. The pairs fall in three
disjoint parts, each aggregated with only what it needs:
    rep       due in [s - 12 months, s): every windowed aggregate, DPD now
    rep_old   due before s - 12 months: count, worst delay, last late payment, principal paid.
              An active loan has settled all of these before s (an instalment unpaid at s and
              due before s - default_dpd days would have defaulted the loan, and default_dpd
              <= 360 days < 12 months), so their values do not depend on s.
    rep_pre   not yet due but paid before s (prepayments): principal paid
"""

from __future__ import annotations

from pipeline.features.crm_sql import TYPE
from pipeline.features.specs import WINDOWS

# An instalment is "reminded" if the customer got a payment reminder with timestamp in
# [due - REMINDER_DAYS days, due), i.e. on one of the REMINDER_DAYS calendar days before the due
# date: each reminder is spread over the due dates it covers and matched by equality (no ASOF
# join, which Spark lacks).
REMINDER_DAYS = 10
NEVER = "DATE '9999-12-31'"
_DAYS = ", ".join(f"({k})" for k in range(1, REMINDER_DAYS + 1))


def loan_status(default_dpd: int) -> str:
    """Per loan: default_date (first date an instalment is `default_dpd` days past due and still
    unpaid: due + dpd with paid_date NULL or after it), close_date (last payment date when all
    term_months instalments are paid; else NULL) and until = the earlier of the two (or never).
    Reads the `repayments` view and the staged `ln`."""
    d = int(default_dpd)
    if not 0 < d < 365:
        raise ValueError("default_dpd must be below 365 days (the 12-month window relies on it)")
    return f"""
    WITH r AS (
        SELECT r.loan_id, r.installment_no AS k, l.term,
               CAST(r.due_date AS DATE) AS due, CAST(r.paid_date AS DATE) AS paid
        FROM repayments r JOIN ln l ON l.loan_id = r.loan_id
    ), st AS (
        SELECT loan_id,
               min(due + {d}) FILTER (WHERE paid IS NULL OR paid > due + {d}) AS default_date,
               CASE WHEN count(*) FILTER (WHERE paid IS NOT NULL AND k BETWEEN 1 AND term)
                         >= max(term)
                    THEN max(paid) FILTER (WHERE k BETWEEN 1 AND term) END AS close_date
        FROM r GROUP BY loan_id
    )
    SELECT loan_id, default_date, close_date,
           coalesce(least(default_date, close_date), {NEVER}) AS until
    FROM st
    """


def instalments(reminders: bool = True) -> str:
    """One row per (loan, instalment): dates as DATE, amounts in cents, the s-independent
    flags; with `reminders`, also whether a payment reminder came in the REMINDER_DAYS before
    the due date (`reminded`) and the instalment was then paid by it (`reminded_on_time`).
    The DuckDB engine matches reminders itself (`repayment_arrays`) and leaves them out here."""
    rem_cte = f""", rem AS (
    -- a reminder at any time of day d covers the instalments due on d + 1 ... d + REMINDER_DAYS
    SELECT DISTINCT e.customer_id, CAST(e.ts AS DATE) + k.k AS due
    FROM crm e, (VALUES {_DAYS}) AS k(k)
    WHERE e.t = {TYPE["payment_reminder"]}
)"""
    rem_cols = """,
       rem.due IS NOT NULL AS reminded,
       coalesce(rem.due IS NOT NULL AND r.paid <= r.due, FALSE) AS reminded_on_time"""
    rem_join = " LEFT JOIN rem ON rem.customer_id = r.customer_id AND rem.due = r.due"
    return f"""
WITH r AS (
    SELECT r.loan_id, l.customer_id, coalesce(st.until, {NEVER}) AS until,
           CAST(r.due_date AS DATE) AS due, CAST(r.paid_date AS DATE) AS paid,
           CAST(round(r.amount_due * 100) AS BIGINT) AS due_c,
           CASE WHEN r.paid_date IS NULL THEN 0
                ELSE CAST(round(r.amount_paid * 100) AS BIGINT) END AS paid_c,
           -- principal part of the payment: annuity share v^(n - k + 1), v = 1 / (1 + rate / 12)
           CASE WHEN r.paid_date IS NULL THEN 0
                ELSE CAST(round(r.amount_paid
                                * pow(1.0 / (1.0 + l.rate / 12.0), l.term - r.installment_no + 1)
                                * 100) AS BIGINT) END AS prin_c
    FROM repayments r
    JOIN ln l ON l.loan_id = r.loan_id
    LEFT JOIN loan_status st ON st.loan_id = r.loan_id
){rem_cte if reminders else ""}
SELECT r.loan_id, r.customer_id, r.until, r.due, r.paid, r.due_c, r.paid_c, r.prin_c,
       r.paid IS NULL OR r.paid > r.due AS late,
       greatest(date_diff('day', r.due, r.paid), 0) AS late_days,
       r.paid IS NOT NULL AND r.paid_c < r.due_c AS partial{rem_cols if reminders else ""}
FROM r{rem_join if reminders else ""}
"""


def window() -> str:
    """Aggregates over the instalments due in [s - 12 months, s) of each loan active at s."""
    aggs = [
        "max(date_diff('day', due, s)) FILTER (WHERE paid IS NULL OR paid >= s) AS dpd_now",
        "max(CASE WHEN paid < s THEN paid ELSE s END) FILTER (WHERE late) AS last_late_day",
        "sum(prin_c) FILTER (WHERE paid < s) AS prin_c",
        "count(*) FILTER (WHERE partial AND paid < s) AS partial_12m",
        "sum(CASE WHEN paid < s THEN paid_c ELSE 0 END) AS paid_c_12m",
        "sum(due_c) AS due_c_12m",
        "count(*) FILTER (WHERE reminded) AS reminded_12m",
        "count(*) FILTER (WHERE reminded_on_time) AS reminded_on_time_12m",
    ]
    for w in WINDOWS:
        where = "" if w == 12 else f" FILTER (WHERE due >= lo{w})"
        late = "late" if w == 12 else f"late AND due >= lo{w}"
        aggs += [
            f"max(dpd_i){where} AS dpd_max_{w}m",
            f"sum(dpd_i){where} AS dpd_sum_{w}m",
            f"count(*){where} AS n_{w}m",
            f"count(*) FILTER (WHERE {late}) AS late_{w}m",
        ]
    sep = ",\n           "
    return f"""
    SELECT loan_id, s,
           {sep.join(aggs)}
    FROM (
        SELECT i.loan_id, sn.s, sn.lo3, sn.lo6, i.due, i.paid, i.due_c, i.paid_c, i.prin_c,
               i.late, i.partial, i.reminded, i.reminded_on_time,
               -- delay of the instalment as of s: days late when paid before s, else days since due
               CASE WHEN i.paid < sn.s THEN i.late_days ELSE date_diff('day', i.due, sn.s) END
                   AS dpd_i
        FROM inst i JOIN snaps sn ON i.due < sn.s AND i.due >= sn.lo12 AND sn.s <= i.until
    )
    GROUP BY loan_id, s
    """


OLDER = """
SELECT i.loan_id, sn.s, count(*) AS n, max(i.late_days) AS dpd_max,
       max(i.paid) FILTER (WHERE i.late) AS last_late_day, sum(i.prin_c) AS prin_c
FROM inst i JOIN snaps sn ON i.due < sn.lo12 AND sn.s <= i.until
GROUP BY i.loan_id, sn.s
"""

PREPAID = """
SELECT i.loan_id, sn.s, sum(i.prin_c) AS prin_c
FROM inst i JOIN snaps sn ON i.paid < sn.s AND sn.s <= i.due AND sn.s <= i.until
GROUP BY i.loan_id, sn.s
"""


def select_columns() -> list[str]:
    """Final SELECT expressions of the repayment features (aliases r = rep, ro = rep_old,
    rp = rep_pre, l = ln, g = grid)."""
    paid = "coalesce(r.prin_c, 0) + coalesce(ro.prin_c, 0) + coalesce(rp.prin_c, 0)"
    balance = f"greatest(l.principal - ({paid}) / 100.0, 0.0)"
    n_due = "coalesce(r.n_12m, 0) + coalesce(ro.n, 0)"
    # No instalment due (yet) means no days past due: 0, like dpd_now. A loan's lack of history
    # is told by instalments_due_so_far = 0, not by missing values, whose share would follow
    # the month's originations.
    cols = ["CAST(coalesce(r.dpd_now, 0) AS DOUBLE) AS dpd_now"]
    cols += [f"CAST(coalesce(r.dpd_max_{w}m, 0) AS DOUBLE) AS dpd_max_{w}m" for w in WINDOWS]
    cols += [f"coalesce(r.dpd_sum_{w}m / nullif(r.n_{w}m, 0), 0) AS dpd_mean_{w}m" for w in WINDOWS]
    cols += [f"CAST(coalesce(r.late_{w}m, 0) AS DOUBLE) AS late_instalments_{w}m" for w in WINDOWS]
    cols += [
        "CAST(coalesce(r.partial_12m, 0) AS DOUBLE) AS partial_payments_12m",
        "r.paid_c_12m / nullif(r.due_c_12m, 0) AS paid_to_due_ratio_12m",
        # the last day with DPD > 0: a late payment's date, or s while still unpaid
        "date_diff('day', greatest(r.last_late_day, ro.last_late_day), g.s) / 30.4375"
        " AS months_since_last_delinquency",
        "CAST(coalesce(greatest(r.dpd_max_12m, ro.dpd_max), 0) AS DOUBLE) AS dpd_max_ever",
        f"{balance} AS outstanding_balance",
        f"{balance} / nullif(l.principal, 0) AS balance_share_of_principal",
        "date_diff('day', l.orig, g.s) / 30.4375 AS loan_age_months",
        f"CAST(greatest(l.term - ({n_due}), 0) AS DOUBLE) AS remaining_term_months",
        f"CAST({n_due} AS DOUBLE) AS instalments_due_so_far",
    ]
    return cols
