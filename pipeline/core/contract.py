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
