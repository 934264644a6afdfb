"""The feature catalogue: one `FeatureSpec` per column of the matrix, in column order.

The names are a contract: the simulator's `truth.json` maps its planted effects to some of them
(reminders_3m, checkins_3m, lender_contacts_per_month_3m, complaints_resolved_6m, ...), training
reads `expected` for monotone constraints and explanation reads `label` for reason codes. The
exact definition of every feature is in the docstring of `pipeline.features`.
"""

from __future__ import annotations

from pipeline.core.contract import CRM_CHANNELS
from pipeline.core.metadata import Direction, FeatureSpec

WINDOWS = (3, 6, 12)
CHANNEL_WINDOWS = (3, 12)


def feature_specs() -> list[FeatureSpec]:
    """Every feature of the matrix in column order (repayment, relationship, customer_loan)."""
    return [*_repayment(), *_relationship(), *_customer_loan()]


def feature_names() -> list[str]:
    return [s.name for s in feature_specs()]


def _spec(
    name: str, family: str, description: str, expected: Direction, label: str, kind: str = "numeric"
) -> FeatureSpec:
    return FeatureSpec(
        name=name, family=family, description=description, expected=expected, kind=kind, label=label
    )  # type: ignore[arg-type]


def _repayment() -> list[FeatureSpec]:
    def rep(name: str, description: str, expected: Direction, label: str) -> FeatureSpec:
        return _spec(name, "repayment", description, expected, label)

    out = [rep("dpd_now", "Days past due now", "raises", "{value:.0f} days past due now")]
    for w in WINDOWS:
        out.append(
            rep(
                f"dpd_max_{w}m",
                f"Worst delay of instalments due in the last {w} months",
                "raises",
                f"paid up to {{value:.0f}} days late in the last {w} months",
            )
        )
    for w in WINDOWS:
        out.append(
            rep(
                f"dpd_mean_{w}m",
                f"Mean delay of instalments due in the last {w} months",
                "raises",
                f"paid {{value:.1f}} days late on average in the last {w} months",
            )
        )
    for w in WINDOWS:
        out.append(
            rep(
                f"late_instalments_{w}m",
                f"Instalments due in the last {w} months paid late or still unpaid",
                "raises",
                f"{{value:.0f}} late instalments in the last {w} months",
            )
        )
    out += [
        rep(
            "partial_payments_12m",
            "Instalments of the last 12 months paid only in part",
            "raises",
            "{value:.0f} partial payments in the last 12 months",
        ),
        rep(
            "paid_to_due_ratio_12m",
            "Amount paid / amount due, instalments of the last 12 months",
            "lowers",
            "paid {value:.0%} of the amount due in the last 12 months",
        ),
        rep(
            "months_since_last_delinquency",
            "Months since the loan was last past due",
            "lowers",
            "last past due {value:.0f} months ago",
        ),
        rep(
            "dpd_max_ever",
            "Worst delay of any instalment of the loan so far",
            "raises",
            "paid up to {value:.0f} days late over the life of the loan",
        ),
        rep(
            "outstanding_balance",
            "Principal still outstanding (annuity split of payments)",
            "unknown",
            "{money} of principal outstanding",
        ),
        rep(
            "balance_share_of_principal",
            "Outstanding principal / original principal",
            "unknown",
            "{value:.0%} of the principal still outstanding",
        ),
        rep(
            "loan_age_months",
            "Months since origination",
            "unknown",
            "loan is {value:.0f} months old",
        ),
        rep(
            "remaining_term_months",
            "Instalments not yet due",
            "unknown",
            "{value:.0f} months of the term left",
        ),
        rep(
            "instalments_due_so_far",
            "Instalments due so far",
            "unknown",
            "{value:.0f} instalments due so far",
        ),
    ]
    return out


def _relationship() -> list[FeatureSpec]:
    def rel(name: str, description: str, expected: Direction, label: str) -> FeatureSpec:
        return _spec(name, "relationship", description, expected, label)

    out = [
        rel(
            "tenure_months",
            "Months since the relationship began",
            "lowers",
            "customer for {value:.0f} months",
        )
    ]
    for w in WINDOWS:
        out.append(
            rel(
                f"contacts_per_month_{w}m",
                f"CRM contacts per month, last {w} months",
                "unknown",
                f"{{value:.1f}} contacts a month over the last {w} months",
            )
        )
    for ch in CRM_CHANNELS:
        for w in CHANNEL_WINDOWS:
            out.append(
                rel(
                    f"contacts_{ch}_per_month_{w}m",
                    f"{ch.capitalize()} contacts per month, last {w} months",
                    "unknown",
                    f"{{value:.1f}} {ch} contacts a month over the last {w} months",
                )
            )
    out += [
        rel(
            "reminders_3m",
            "Payment reminders in the last 3 months",
            "lowers",
            "{value:.0f} payment reminders in the last 3 months",
        ),
        rel(
            "reminders_paid_on_time_share_12m",
            "Share of reminded instalments (reminder in the 10 days before due) paid on time, "
            "last 12 months",
            "lowers",
            "paid {value:.0%} of reminded instalments on time in the last 12 months",
        ),
        rel(
            "checkins_3m",
            "Proactive check-ins in the last 3 months",
            "lowers",
            "{value:.0f} proactive check-ins in the last 3 months",
        ),
        rel(
            "checkins_12m",
            "Proactive check-ins in the last 12 months",
            "lowers",
            "{value:.0f} proactive check-ins in the last 12 months",
        ),
        rel(
            "lender_contacts_per_month_3m",
            "Reminders + proactive check-ins per month, last 3 months (contact fatigue)",
            "unknown",
            "{value:.1f} lender contacts a month over the last 3 months",
        ),
        rel(
            "complaints_3m",
            "Complaints in the last 3 months",
            "unknown",
            "{value:.0f} complaints in the last 3 months",
        ),
        rel(
            "complaints_12m",
            "Complaints in the last 12 months",
            "unknown",
            "{value:.0f} complaints in the last 12 months",
        ),
        rel(
            "complaints_resolved_6m",
            "Complaints of the last 6 months resolved by now",
            "lowers",
            "{value:.0f} complaints resolved in the last 6 months",
        ),
        rel(
            "complaints_unresolved_6m",
            "Complaints of the last 6 months still unresolved",
            "raises",
            "{value:.0f} unresolved complaints in the last 6 months",
        ),
        rel(
            "complaint_resolution_rate_12m",
            "Share of the last 12 months' complaints resolved",
            "lowers",
            "{value:.0%} of complaints resolved in the last 12 months",
        ),
        rel(
            "complaint_resolution_days_median_12m",
            "Median days to resolve a complaint, last 12 months",
            "unknown",
            "complaints took {value:.0f} days to resolve (median, last 12 months)",
        ),
        rel(
            "service_requests_12m",
            "Service requests in the last 12 months",
            "unknown",
            "{value:.0f} service requests in the last 12 months",
        ),
        rel(
            "satisfaction_last",
            "Last satisfaction rating (1-5)",
            "lowers",
            "last satisfaction rating {value:.0f} of 5",
        ),
        rel(
            "satisfaction_mean_12m",
            "Mean satisfaction rating, last 12 months",
            "lowers",
            "satisfaction {value:.1f} of 5 on average in the last 12 months",
        ),
        rel(
            "satisfaction_trend_12m",
            "Trend of satisfaction ratings (points per month), last 12 months",
            "lowers",
            "satisfaction changing by {value:+.2f} points a month",
        ),
        rel("nps_last", "Last NPS answer (0-10)", "lowers", "last NPS answer {value:.0f} of 10"),
        rel(
            "nps_mean_12m",
            "Mean NPS answer, last 12 months",
            "lowers",
            "NPS {value:.1f} of 10 on average in the last 12 months",
        ),
        rel(
            "fin_edu_sessions_total",
            "Financial-education sessions attended, ever",
            "lowers",
            "{value:.0f} financial-education sessions attended",
        ),
        rel(
            "hardship_requests_3m",
            "Hardship requests in the last 3 months",
            "raises",
            "{value:.0f} hardship requests in the last 3 months",
        ),
        rel(
            "hardship_requests_12m",
            "Hardship requests in the last 12 months",
            "raises",
            "{value:.0f} hardship requests in the last 12 months",
        ),
        rel(
            "marketing_contacts_12m",
            "Marketing contacts in the last 12 months",
            "unknown",
            "{value:.0f} marketing contacts in the last 12 months",
        ),
        rel(
            "products_held",
            "Loans the customer holds (originated, not closed)",
            "lowers",
            "holds {value:.0f} loans with the lender",
        ),
        rel(
            "channel_diversity_12m",
            "Distinct contact channels used, last 12 months",
            "lowers",
            "used {value:.0f} contact channels in the last 12 months",
        ),
        rel(
            "activity_change_3m_vs_9m",
            "Customer-initiated contacts per month, last 3 months vs the 9 before (ratio - 1)",
            "lowers",
            "customer-initiated contacts changed by {value:+.0%} lately",
        ),
        rel(
            "days_since_last_contact",
            "Days since the last CRM contact of any kind",
            "raises",
            "last contact {value:.0f} days ago",
        ),
        rel(
            "answered_share_12m",
            "Share of the lender's outbound contacts answered, last 12 months",
            "lowers",
            "answered {value:.0%} of the lender's contacts",
        ),
    ]
    return out


def _customer_loan() -> list[FeatureSpec]:
    def cl(name: str, description: str, expected: Direction, label: str) -> FeatureSpec:
        return _spec(name, "customer_loan", description, expected, label)

    def cat(name: str, description: str, label: str) -> FeatureSpec:
        return _spec(name, "customer_loan", description, "unknown", label, kind="categorical")

    return [
        cl("annual_income", "Annual income", "lowers", "annual income {money}"),
        cl(
            "debt_to_income",
            "Monthly instalments of active loans x 12 / annual income",
            "raises",
            "instalments take {value:.0%} of income",
        ),
        cl("customer_age_years", "Customer age in years", "unknown", "customer aged {value:.0f}"),
        cl(
            "monthly_payment",
            "Contractual monthly instalment of the loan",
            "unknown",
            "monthly instalment {money}",
        ),
        cl("principal", "Loan principal", "unknown", "principal {money}"),
        cl("interest_rate", "Annual interest rate", "raises", "interest rate {value:.1%}"),
        cl("term_months", "Loan term in months", "unknown", "{value:.0f}-month term"),
        cat("product", "Loan product", "product: {value}"),
        cat("employment_type", "Employment type", "employment: {value}"),
        cat("region", "Region", "region: {value}"),
        cat("loan_channel", "Channel the loan was sold through", "sold through {value}"),
    ]
