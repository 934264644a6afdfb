"""DuckDB SQL of the repayment family's staging: loan status and the instalments as the array
code (`repayment_arrays`) reads them. Money is in whole cents (BIGINT), so the sums are exact
and the same on every run.
"""

from __future__ import annotations


def loan_status(default_dpd: int) -> str:
    """Per loan: default_date (first date an instalment is `default_dpd` days past due and still
    unpaid: due + dpd with paid_date NULL or after it) and close_date (last payment date when
    all term_months instalments are paid; else NULL). Reads the `repayments` view and the
    staged `ln`."""
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
    SELECT loan_id, default_date, close_date FROM st
    """


def instalments() -> str:
    """One row per (loan, instalment): dates as DATE, amounts in cents and the flags that do not
    depend on the snapshot (late: paid after the due date or never; partial: paid less than
    due). `repayment_arrays` derives days late and the reminder match itself."""
    return """
WITH r AS (
    SELECT r.loan_id, CAST(r.due_date AS DATE) AS due, CAST(r.paid_date AS DATE) AS paid,
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
)
SELECT loan_id, due, paid, due_c, paid_c, prin_c,
       paid IS NULL OR paid > due AS late,
       paid IS NOT NULL AND paid_c < due_c AS partial
FROM r
"""
