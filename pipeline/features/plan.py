"""The feature build as one ordered list of named SELECT statements: the definition of every
feature. Written in DuckDB SQL; the Spark engine (`spark`) runs all of it transpiled by SQLGlot.
The DuckDB engine (`engine`) runs the staging steps and `final_sql` as they are, and computes
the two event families (FAMILY_STEPS) with array code over prefix sums instead
(`repayment_arrays`, `crm_arrays`): the same tables without these range joins (faster on
DuckDB: README, Performance), equal value by value (tests/unit/features,
`bench/features.py --check`). A change to a family's SQL here needs the same change there.

So only constructs both engines run appear here: no ASOF join (spread or range joins against the
small snapshot table instead), no DATE - DATE (date_diff), no ENUM types (the DuckDB engine casts
the categories in its final step), snapshot dates as VALUES rather than a registered frame.

Order of the steps (each a table the later ones read):
    ln, crm                  typed projections of loans and CRM events
    loan_status, inst        default / close date per loan; instalments with static flags
    snaps                    snapshot dates with their window bounds
    lgrid / grid / cgrid     loans held per snapshot / the active ones (the rows) / per customer
    rep, rep_old, rep_pre    repayment aggregates (see repayment_sql)
    crm_win, crm_hist        CRM aggregates: 12-month window, whole history (see crm_sql)
then `final_sql` joins the parts and derives the features (unordered: the engines sort).
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
    snapshots: list[dt.date],
    fcfg: FeaturesConfig,
    has_direction: bool,
    has_answered: bool,
    families: bool = True,
) -> list[tuple[str, str]]:
    """(name, SELECT) pairs in order, over the views customers, loans, repayments and
    crm_interactions.

    families=False: only the staging steps, up to cgrid, and `inst` without the reminder match:
    the DuckDB engine computes the FAMILY_STEPS (and the reminders) as array code, equal to
    this SQL (`repayment_arrays`, `crm_arrays`)."""
    staged = [
        ("ln", LOANS),
        ("crm", crm_sql.staged_crm(has_direction, has_answered)),
        ("loan_status", repayment_sql.loan_status(fcfg.default_dpd)),
        ("inst", repayment_sql.instalments(reminders=families)),
        ("snaps", snaps_sql(snapshots, fcfg.performance_window_months)),
        *GRID,
    ]
    if not families:
        return staged
    return [
        *staged,
        ("rep", repayment_sql.window()),
        ("rep_old", repayment_sql.OLDER),
        ("rep_pre", repayment_sql.PREPAID),
        ("crm_win", crm_sql.window()),
        ("crm_hist", crm_sql.HISTORY),
    ]


# The steps aggregating the event families: what `steps(..., families=False)` leaves out.
FAMILY_STEPS = ("rep", "rep_old", "rep_pre", "crm_win", "crm_hist")


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
    """Snapshot dates s with their window bounds as DATE and TIMESTAMP (s also in epoch
    microseconds, for the resolution times of `crm`)."""
    values = ", ".join(f"(DATE '{s.isoformat()}')" for s in snapshots)
    bounds = ",\n           ".join(
        f"CAST(s - INTERVAL {m} MONTH AS DATE) AS lo{m}, "
        f"CAST(CAST(s - INTERVAL {m} MONTH AS DATE) AS TIMESTAMP) AS lo{m}_ts"
        for m in (3, 6, 12)
    )
    return f"""
    SELECT s, CAST(s AS TIMESTAMP) AS s_ts, epoch_us(CAST(s AS TIMESTAMP)) AS s_us,
           {bounds},
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


def final_sql(
    data_end: dt.date, income_step: float = 0.0, enums: bool = False, aligned: bool = False
) -> str:
    """The SELECT joining the parts into the matrix (unordered: the engines sort).

    income_step: annual_income enters the matrix rounded (half up) to this step; 0 = exact.
    enums: cast the categories to the DuckDB ENUM types `<name>_enum` (DuckDB engine only);
    else they stay text.
    aligned: every joined table is given as ALIGNED_PREFIX + its alias, one row per grid row in
    grid's order (the DuckDB engine: the families from its array code, the rest from one
    narrow join), and joined by position (POSITIONAL JOIN, DuckDB only): no hash join of the
    wide rows, and the result keeps grid's order. No rep_pre (its principal is in rep).
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
        if enums
        else f"CAST({alias}.{col} AS VARCHAR) AS {name}"
        for name, (alias, col, _, _) in CATEGORY_SOURCES.items()
    ]
    if aligned:
        paid = "coalesce(r.prin_c, 0) + coalesce(ro.prin_c, 0) + coalesce(rp.prin_c, 0)"
        cols = [c.replace(paid, "coalesce(r.prin_c, 0) + coalesce(ro.prin_c, 0)") for c in cols]
        joins = "".join(
            f"\n    POSITIONAL JOIN {ALIGNED_PREFIX}{alias} {alias}"
            for _, alias, _, _ in FINAL_JOINS
            if alias != "rp"
        )
    else:
        joins = "".join(
            f"\n    {kind} {table} {alias} ON {on}" for table, alias, kind, on in FINAL_JOINS
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


# What final_sql joins to the grid g: (table, alias, join, condition). Each matches at most
# one row per grid row.
FINAL_JOINS = (
    ("snaps", "sn", "JOIN", "sn.s = g.s"),
    ("ln", "l", "JOIN", "l.loan_id = g.loan_id"),
    ("loan_status", "st", "LEFT JOIN", "st.loan_id = g.loan_id"),
    ("rep", "r", "LEFT JOIN", "r.loan_id = g.loan_id AND r.s = g.s"),
    ("rep_old", "ro", "LEFT JOIN", "ro.loan_id = g.loan_id AND ro.s = g.s"),
    ("rep_pre", "rp", "LEFT JOIN", "rp.loan_id = g.loan_id AND rp.s = g.s"),
    ("cgrid", "cg", "JOIN", "cg.customer_id = g.customer_id AND cg.s = g.s"),
    ("crm_win", "cw", "LEFT JOIN", "cw.customer_id = g.customer_id AND cw.s = g.s"),
    ("crm_hist", "ch", "LEFT JOIN", "ch.customer_id = g.customer_id AND ch.s = g.s"),
    ("customers", "c", "LEFT JOIN", "c.customer_id = g.customer_id"),
)
# final_sql(aligned=True) reads, for each alias but rp, the table ALIGNED_PREFIX + alias: the
# joined table's columns for each grid row, row by row in the grid's order.
ALIGNED_PREFIX = "aligned_"
