"""Point-in-time feature matrix: one row per active loan and snapshot date, with its label.

    loanrisk features        # cfg.data.interim_dir/*.parquet -> cfg.data.features_dir/

The aggregation runs in DuckDB (see `engine`); `tests/reference_features.py` is a slow pandas
implementation of the same definitions that the tests compare against.

Definitions (the contract)
--------------------------
Dates. Snapshots are first days of months (monthly, or quarterly on Jan/Apr/Jul/Oct 1). The data
end date is the day after the last observed event: repayments.paid_date or CRM timestamp date
(due dates only in a book with neither: instalments scheduled after the extract are not
events). The default range runs from `features.first_snapshot`, or else the first origination plus
`min_history_months` rounded up to a snapshot, to `features.last_snapshot`, or else the data end
rounded down. Dates passed explicitly (`snapshots=[as_of]` to score) may be any day; month
windows then clamp at month ends, as DuckDB and pandas do. Repayment dates are taken as calendar
dates; CRM timestamps are naive UTC (the ingest stage converts aware ones).

Point in time. At snapshot s only events dated strictly before s are seen: an instalment is due
if due_date < s, paid if paid_date < s (a payment on s or later is not yet made, its amount is
0), a CRM event counts if timestamp < s 00:00:00. "Last k months" is [s - k months, s) in
calendar months. Month counts of durations are days / 30.4375.

DPD of a loan at date t: max over instalments with due_date < t and not settled by t (paid_date
NaT or >= t) of (t - due_date) days; 0 if none. Any payment, even partial, settles an
instalment for DPD. Delay of one instalment as of s: max(paid_date - due_date, 0) days if paid
before s, else s - due_date. Late instalment: paid after its due date or not paid (as of s).

Default (D = features.default_dpd, 90): an instalment defaults on due_date + D days if paid_date
is NaT or > due_date + D (a payment on the 90th day itself still cures it). The loan's default
date is the first such date. At s a loan is
    active   if origination_date < s, its default date is not < s, and it is not closed;
    closed   if all term_months instalments are present and paid before s.
Rows are the active loans. Label at s with window W = performance_window_months: 1 if the
default date lies in [s, s + W months), else 0; NA (kept, to score) if s + W months is after
the data end date (the window is not complete).

Repayment family
    dpd_now                      DPD at s.
    dpd_max_{3,6,12}m            max delay as of s of instalments due in the window; 0 if none
                                 (nothing due, nothing past due: instalments_due_so_far = 0
                                 marks a loan without history)
    dpd_mean_{3,6,12}m           mean of the same; 0 if none
    late_instalments_{3,6,12}m   late instalments due in the window
    partial_payments_12m         instalments due in the last 12 months, paid before s with
                                 amount_paid < amount_due (in whole cents)
    paid_to_due_ratio_12m        sum(amount_paid, paid before s) / sum(amount_due), instalments
                                 due in the last 12 months; NaN if none
    months_since_last_delinquency  0 if dpd_now > 0, else months since the last late payment
                                 (its paid_date: the last day with DPD > 0); NaN if never late
    dpd_max_ever                 max delay as of s of all instalments due before s; 0 if none
    outstanding_balance          principal - principal part of the payments made before s, where
                                 a payment on instalment k of an n-month annuity at monthly rate
                                 r is principal in the share (1 + r)^-(n - k + 1) (exact for
                                 the payments due; partial and over-payments pro rata;
                                 accumulated in cents; floored at 0)
    balance_share_of_principal   outstanding_balance / principal
    loan_age_months              (s - origination_date) days / 30.4375
    instalments_due_so_far       instalments with due_date < s
    remaining_term_months        max(term_months - instalments_due_so_far, 0)

Relationship family (CRM events of the customer; per month = count / window months)
    tenure_months                (s - customer_since) days / 30.4375
    contacts_per_month_{3,6,12}m all events; contacts_<channel>_per_month_{3,12}m per contract
                                 channel (phone, app, branch, email, chat, sms)
    reminders_3m                 payment_reminder events
    reminders_paid_on_time_share_12m  of this loan's instalments due in the last 12 months that
                                 were reminded (a payment_reminder with timestamp in
                                 [due_date - 10 days, due_date)), the share paid by the due date
                                 (paid_date <= due_date); NaN if none was reminded
    checkins_{3,12}m             proactive_checkin events
    lender_contacts_per_month_3m (reminders + check-ins) / 3, the contact-fatigue factor
    complaints_{3,12}m           complaint events
    complaints_resolved_6m       complaints of the last 6 months resolved before s: resolved is
                                 true and timestamp + resolution_days < s (no days: resolved at
                                 once). Resolution after s is not yet known at s.
    complaints_unresolved_6m     complaints of the last 6 months not resolved before s
    complaint_resolution_rate_12m  resolved (as above) / complaints, last 12 months; NaN if none
    complaint_resolution_days_median_12m  median resolution_days of those resolved; NaN if none
    service_requests_12m, hardship_requests_{3,12}m, marketing_contacts_12m   event counts
    satisfaction_last, nps_last  last non-missing answer before s, any time (ties on a timestamp:
                                 the larger interaction_id); NaN if never answered
    satisfaction_mean_12m, nps_mean_12m   mean of the non-missing answers; NaN if none
    satisfaction_trend_12m       least-squares slope of the rating on the event's day, in points
                                 per month; NaN unless two ratings on different days
    fin_edu_sessions_total       financial_education events, whole history
    products_held                the customer's loans originated before s and not closed
                                 (defaulted ones included)
    channel_diversity_12m        distinct contract channels used (ingest validates channels)
    activity_change_3m_vs_9m     customer-initiated contacts (every type but payment_reminder,
                                 proactive_checkin and marketing) per month in the last 3 months
                                 / per month in the 9 months before - 1; NaN if none in those 9
    days_since_last_contact      s - date of the last event (any type, any time); NaN if none
    answered_share_12m           answered / outbound contacts with a known answer (direction
                                 'outbound' when that column exists); NaN without the optional
                                 `answered` column or without such contacts

Customer and loan family
    annual_income (rounded half up to features.income_rounding, 100 by default: a personal
    value); customer_age_years = year(s) - birth_year; monthly_payment = contractual
    annuity instalment (principal, interest_rate / 12, term_months) rounded to cents;
    debt_to_income = monthly_payment of the customer's active loans summed x 12 / annual_income
    (NaN if income missing or 0); principal; interest_rate; term_months; and the categoricals
    product, employment_type, region, loan_channel (unordered pandas `category` whose categories
    are the sorted values of the whole input table). Sensitive columns (gender, age_band) and
    free text are never read.
"""

from __future__ import annotations

from pipeline.features.engine import build_features, build_features_from_frames
from pipeline.features.snapshots import data_end_date, default_snapshots, snapshot_dates
from pipeline.features.specs import feature_names, feature_specs

__all__ = [
    "build_features",
    "build_features_from_frames",
    "data_end_date",
    "default_snapshots",
    "feature_names",
    "feature_specs",
    "snapshot_dates",
]
