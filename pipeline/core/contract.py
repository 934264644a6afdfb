"""The data contract: the four input tables, their keys and required columns (see README)."""

from __future__ import annotations

TABLES = ("customers", "loans", "repayments", "crm_interactions")

KEYS = {
    "customers": ("customer_id",),
    "loans": ("loan_id",),
    "repayments": ("loan_id", "installment_no"),
    "crm_interactions": ("interaction_id",),
}

REQUIRED = {
    "customers": (
        "customer_id",
        "customer_since",
        "birth_year",
        "annual_income",
        "employment_type",
        "region",
    ),
    "loans": (
        "loan_id",
        "customer_id",
        "product",
        "origination_date",
        "principal",
        "term_months",
        "interest_rate",
        "channel",
    ),
    "repayments": (
        "loan_id",
        "installment_no",
        "due_date",
        "amount_due",
        "paid_date",
        "amount_paid",
    ),
    "crm_interactions": (
        "interaction_id",
        "customer_id",
        "timestamp",
        "channel",
        "type",
        "resolved",
        "resolution_days",
        "satisfaction",
        "nps",
    ),
}

# Used when present, never required.
OPTIONAL = {
    "customers": (),
    "loans": (),
    "repayments": (),
    "crm_interactions": ("direction", "answered"),
}

# Present only for a fairness audit; never model features.
SENSITIVE = ("gender", "age_band")

# Plausibility bounds (inclusive) of numeric columns. A value outside them is a unit or typing
# error (1e300, a rate given in basis points); inside them, amounts in cents still fit the
# 64-bit integers the feature SQL accumulates money in (1e12 x 100 x 1,000 instalments < 2^63).
MAX_AMOUNT = 1e12
BOUNDS: dict[tuple[str, str], tuple[float, float]] = {
    ("customers", "annual_income"): (0.0, MAX_AMOUNT),
    ("loans", "principal"): (0.0, MAX_AMOUNT),
    # an annual fraction (0.12 for 12%); up to 100 so rates given in percent still pass with
    # ingest's warning, while basis points or a stray amount fail
    ("loans", "interest_rate"): (0.0, 100.0),
    ("loans", "term_months"): (1, 1200),
    ("repayments", "installment_no"): (0, 1200),
    ("repayments", "amount_due"): (0.0, MAX_AMOUNT),
    ("repayments", "amount_paid"): (0.0, MAX_AMOUNT),
    ("crm_interactions", "resolution_days"): (0.0, 36_525.0),
}

# Allowed CRM values. The features count each listed value; a value outside these lists would
# silently count as none of them, so ingest normalises case and spacing and refuses the rest.
CRM_CHANNELS = ("phone", "app", "branch", "email", "chat", "sms")
CRM_TYPES = (
    "service_request",
    "complaint",
    "payment_reminder",
    "proactive_checkin",
    "financial_education",
    "hardship_request",
    "marketing",
)
# A type of the lender's own (an address change, a survey): counted as a contact, in no type's
# feature. Other spellings are refused, so a misspelt listed type cannot pass as one.
CRM_OTHER_TYPE = "other"
CRM_DIRECTIONS = ("inbound", "outbound")

# The columns whose values must come from a list above; read case- and space-insensitively
# ("Complaint", "Payment Reminder" and "payment-reminder" are the listed value).
VOCABULARIES: dict[tuple[str, str], tuple[str, ...]] = {
    ("crm_interactions", "channel"): CRM_CHANNELS,
    ("crm_interactions", "type"): (*CRM_TYPES, CRM_OTHER_TYPE),
    ("crm_interactions", "direction"): CRM_DIRECTIONS,
}
