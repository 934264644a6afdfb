"""The feature build as an ordered list of named SELECT statements over the views customers,
loans, repayments and crm_interactions, in DuckDB SQL, and the final SELECT deriving every
feature from them. The DuckDB engine (`engine`) runs these steps, computes the two event
families with array code over prefix sums (`repayment_arrays`, `crm_arrays`: the one definition
of their aggregates), and runs `final_sql` over the lot; the Spark engine (`spark`) runs that
same build on partitions of customers.

Order of the steps (each a table or view the later ones read):
    ln, crm                  typed projections of loans and CRM events
    loan_status, inst        default / close date per loan; instalments with static flags
    snaps                    snapshot dates with their window bounds
    lgrid / grid / cgrid     loans held per snapshot / the active ones (the rows) / per customer
then the families (FAMILY_STEPS, from the array code):
    rep, rep_old             repayment aggregates (see repayment_arrays)
    crm_win, crm_hist        CRM aggregates: 12-month window, whole history (see crm_arrays)
and `final_sql` puts the parts together and derives the features.
"""

from __future__ import annotations

import datetime as dt

from pipeline.config import FeaturesConfig
from pipeline.features import crm_sql, repayment_sql
from pipeline.features.specs import feature_names

# Each categorical feature: (alias in the final SELECT, its column there, input table, its
# column): its levels are the sorted values of the input table's column.
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


# The tables of the event families, from the array code rather than a step.
FAMILY_STEPS = ("rep", "rep_old", "crm_win", "crm_hist")


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


def final_sql(data_end: dt.date, income_step: float = 0.0) -> str:
    """The SELECT putting the parts together into the matrix, in the grid's order.

    income_step: annual_income enters the matrix rounded (half up) to this step; 0 = exact.
    Every part is given as ALIGNED_PREFIX + its alias of FINAL_JOINS, one row per grid row in
    grid's order (the families from the array code, the rest from one narrow join:
    `engine._rows`), and joined by position (POSITIONAL JOIN): no hash join of the wide rows,
    and the result keeps grid's order. The categories are cast to the ENUM types
    `<name>_enum` the engine creates (CATEGORY_SOURCES), so every level reaches pandas.
    """
    income = (
        f"floor(c.annual_income / {float(income_step)!r} + 0.5) * {float(income_step)!r}"
        if income_step > 0
        else "c.annual_income"
    )
    customer_loan = [
        f"{income} AS annual_income",
        "cg.debt_c / 100.0 * 12 / nullif(c.annual_income, 0) AS debt_to_income",
        "year(g.s) - c.birth_year AS customer_age_years",
        "l.monthly_payment AS monthly_payment",
        "l.principal AS principal",
        "l.rate AS interest_rate",
        "l.term AS term_months",
    ]
    numeric = repayment_sql.select_columns() + crm_sql.select_columns() + customer_loan
    cols = []
    for col in numeric:
        expr, name = col.rsplit(" AS ", 1)
        # NaN rather than NULL: float columns without nulls reach pandas without a copy
        cols.append(f"coalesce(CAST({expr} AS DOUBLE), CAST('NaN' AS DOUBLE)) AS {name.strip()}")
    cols += [
        f"CAST({alias}.{col} AS {name}_enum) AS {name}"
        for name, (alias, col, _, _) in CATEGORY_SOURCES.items()
    ]
    joins = "".join(
        f"\n    POSITIONAL JOIN {ALIGNED_PREFIX}{alias} {alias}" for _, alias, _, _ in FINAL_JOINS
    )
    names = [c.rsplit(" AS ", 1)[1].strip() for c in cols]
    if names != feature_names():
        raise AssertionError(f"SQL columns {names} do not follow the feature specs")
    sep = ",\n           "
    return f"""
    SELECT g.loan_id, g.customer_id, g.s AS snapshot_date,
           CAST(CASE WHEN sn.hi > DATE '{data_end.isoformat()}' THEN NULL
                     WHEN st.default_date < sn.hi THEN 1 ELSE 0 END AS TINYINT) AS label,
           {sep.join(cols)}
    FROM grid g{joins}
    """


# The parts final_sql reads beside the grid g: (table, alias, join, condition), each matching
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
# final_sql reads, for each alias, the table ALIGNED_PREFIX + alias: the part's columns for
# each grid row, row by row in the grid's order.
ALIGNED_PREFIX = "aligned_"
