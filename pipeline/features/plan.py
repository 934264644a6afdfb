"""The feature build's staging as an ordered list of named SELECT statements over the views
customers, loans, repayments and crm_interactions, in DuckDB SQL, and what the features read of
them. The DuckDB engine (`engine`) runs these steps, computes the two event families with array
code over prefix sums (`repayment_arrays`, `crm_arrays`: the one definition of their
aggregates), and derives the features from the lot (`derive`); the Spark engine (`spark`) runs
that same build on partitions of customers.

Order of the steps (each a table or view the later ones read):
    ln, crm                  typed projections of loans and CRM events
    loan_status, inst        default / close date per loan; instalments with static flags
    snaps                    snapshot dates with their window bounds
    lgrid / grid / cgrid     loans held per snapshot / the active ones (the rows) / per customer
then the families (the array code's parts, no step here):
    rep, rep_old             repayment aggregates (see repayment_arrays)
    crm_win, crm_hist        CRM aggregates: 12-month window, whole history (see crm_arrays)
and `derive` puts the parts together into the features.
"""

from __future__ import annotations

import datetime as dt

from pipeline.config import FeaturesConfig
from pipeline.features import crm_sql, repayment_sql

# Each categorical feature: (alias of its part in FINAL_JOINS, its column there, input table,
# its column): its levels are the sorted values of the input table's column.
CATEGORY_SOURCES = {
    "product": ("l", "product", "loans", "product"),
    "employment_type": ("c", "employment_type", "customers", "employment_type"),
    "region": ("c", "region", "customers", "region"),
    "loan_channel": ("l", "loan_channel", "loans", "channel"),
}


def steps(
    snapshots: list[dt.date], fcfg: FeaturesConfig, has_direction: bool, has_answered: bool
) -> list[tuple[str, str]]:
    """(name, SELECT) pairs in order: the staging steps, up to cgrid."""
    return [
        ("ln", LOANS),
        ("crm", crm_sql.staged_crm(has_direction, has_answered)),
        ("loan_status", repayment_sql.loan_status(fcfg.default_dpd)),
        ("inst", repayment_sql.instalments()),
        ("snaps", snaps_sql(snapshots, fcfg.performance_window_months)),
        *GRID,
    ]


LOANS = """
SELECT loan_id, customer_id, CAST(origination_date AS DATE) AS orig,
       CAST(principal AS DOUBLE) AS principal, CAST(term_months AS BIGINT) AS term,
       CAST(interest_rate AS DOUBLE) AS rate, product, channel AS loan_channel,
       -- the contractual annuity instalment, rounded to cents
       round(CASE WHEN interest_rate = 0 THEN principal / nullif(term_months, 0)
                  ELSE principal * (interest_rate / 12)
                       / (1 - pow(1 + interest_rate / 12, -term_months)) END, 2)
           AS monthly_payment
FROM loans
"""


def snaps_sql(snapshots: list[dt.date], window_months: int) -> str:
    """Snapshot dates s with the starts of their 3-, 6- and 12-month windows (lo3, lo6, lo12)
    and the end of their performance window (hi)."""
    values = ", ".join(f"(DATE '{s.isoformat()}')" for s in snapshots)
    bounds = ", ".join(f"CAST(s - INTERVAL {m} MONTH AS DATE) AS lo{m}" for m in (3, 6, 12))
    return f"""
    SELECT s, {bounds},
           CAST(s + INTERVAL {int(window_months)} MONTH AS DATE) AS hi
    FROM (SELECT DISTINCT s FROM (VALUES {values}) AS v(s))
    """


# lgrid: loans originated before s and not closed (held); grid: those not defaulted before s
# either (active: the rows); cgrid: per customer with an active loan, the loans held and the
# monthly instalments of the active ones in cents.
GRID = (
    (
        "lgrid",
        """
    SELECT l.loan_id, l.customer_id, sn.s, l.monthly_payment,
           (st.default_date IS NULL OR st.default_date >= sn.s) AS active
    FROM ln l
    JOIN snaps sn ON l.orig < sn.s
    LEFT JOIN loan_status st ON st.loan_id = l.loan_id
    WHERE st.close_date IS NULL OR st.close_date >= sn.s
    """,
    ),
    ("grid", "SELECT loan_id, customer_id, s FROM lgrid WHERE active"),
    (
        "cgrid",
        """
    SELECT customer_id, s, count(*) AS products_held,
           sum(CAST(round(monthly_payment * 100) AS BIGINT)) FILTER (WHERE active) AS debt_c
    FROM lgrid GROUP BY customer_id, s HAVING bool_or(active)
    """,
    ),
)


# The parts of the features beside the grid g: (table, alias, join, condition), each matching
# at most one row per grid row. `engine._rows` joins the static tables by these conditions; the
# families come from the array code already aligned (their condition says which row).
FINAL_JOINS = (
    ("snaps", "sn", "JOIN", "sn.s = g.s"),
    ("ln", "l", "JOIN", "l.loan_id = g.loan_id"),
    ("loan_status", "st", "LEFT JOIN", "st.loan_id = g.loan_id"),
    ("rep", "r", "LEFT JOIN", "r.loan_id = g.loan_id AND r.s = g.s"),
    ("rep_old", "ro", "LEFT JOIN", "ro.loan_id = g.loan_id AND ro.s = g.s"),
    ("cgrid", "cg", "JOIN", "cg.customer_id = g.customer_id AND cg.s = g.s"),
    ("crm_win", "cw", "LEFT JOIN", "cw.customer_id = g.customer_id AND cw.s = g.s"),
    ("crm_hist", "ch", "LEFT JOIN", "ch.customer_id = g.customer_id AND ch.s = g.s"),
    ("customers", "c", "LEFT JOIN", "c.customer_id = g.customer_id"),
)


def _day(date: str) -> str:
    return f"CAST(date_diff('day', DATE '1970-01-01', {date}) AS DOUBLE)"


def _number(value: str) -> str:
    return f"CAST({value} AS DOUBLE)"


# What `derive` reads of the static parts beside the categories (CATEGORY_SOURCES): {table:
# {column: DuckDB expression over its alias}}, numbers as DOUBLE and dates as days since 1970,
# so that NULL becomes NaN in numpy.
STATIC = {
    "snaps": {"hi": _day("sn.hi")},
    "ln": {
        "orig": _day("l.orig"),
        "principal": _number("l.principal"),
        "term": _number("l.term"),
        "rate": _number("l.rate"),
        "monthly_payment": _number("l.monthly_payment"),
    },
    "loan_status": {"default_date": _day("st.default_date")},
    "cgrid": {"products_held": _number("cg.products_held"), "debt_c": _number("cg.debt_c")},
    "customers": {
        "since": _day("CAST(c.customer_since AS DATE)"),
        "birth_year": _number("c.birth_year"),
        "annual_income": _number("c.annual_income"),
    },
}
