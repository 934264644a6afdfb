"""The content of truth.json: every planted effect with its sign, size, features and confounding.

`truth_json` describes the run (seed, size, levers forced) and each effect: the causal ones
carried by an `Effects` term (with the oracle's attribution of each), and the markers that are
consequences of distress rather than causes. The explain stage and the effect study check
their findings against it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.config import GenerateConfig
from pipeline.simulator.world import Effects

_RISKY = "the lender contacts the customers it sees as risky (risk grade, late payments)"
_DESCRIPTION = (
    "Planted effects on the monthly distress hazard (log-odds). "
    "sign: +1 raises default, -1 lowers, 0 none. 'marker' effects are consequences "
    "of distress that precede default, not causes. attribution: the effect's "
    "mean |SHAP| in the oracle (how much switching it off moves the log-odds of the "
    "best PD knowable at a snapshot, centred). confounding: "
    "whether who gets the exposure biases its association with default the same way "
    "as the effect, the opposite way, or not at all."
)


def truth_json(
    cfg: GenerateConfig,
    seed: int,
    window_months: int,
    levers: dict[str, bool],
    lever_months: tuple[int, int] | None,
    fx: Effects,
    true_pd: pd.DataFrame,
    attribution: dict[str, float],
) -> dict:
    """truth.json for a run: `levers` as forced, `attribution` per causal effect (the oracle's
    `attributions`), `true_pd` the oracle's PDs (for their mean)."""
    causal = _causal_effects(fx)
    for name, eff in causal.items():
        eff["attribution"] = attribution[name]
    return {
        "description": _DESCRIPTION,
        "seed": seed,
        "n_customers": cfg.n_customers(),
        "months": cfg.months,
        "start": str(cfg.start),
        "window_months": window_months,
        "levers_forced": levers,
        "lever_months": list(lever_months) if lever_months else None,
        "confounding": "reminders and check-ins target customers the lender sees as risky "
        "(risk grade, late payments in the last 3 months)",
        "mean_true_pd": float(true_pd["true_pd"].mean()),
        "effects": {**causal, **_marker_effects()},
        "heterogeneity": _heterogeneity(fx),
        "hazard_terms": {k: v for k, v in vars(fx).items()},
    }


def _heterogeneity(fx: Effects) -> dict[str, dict]:
    """Who each lever helps: what the effect study's conditional effects should find."""
    return {
        "payment_reminder": {
            "weight": f"max(0, 1 - {fx.reminder_forgetful:g} x willingness) x "
            f"(capacity >= {fx.reminder_capacity_short:g}), scaled to mean 1 over customers",
            "reads": "helps customers late from forgetting (low willingness) most; cannot help "
            "customers short of money (low capacity)",
            "observable_proxies": [
                "reminders_paid_on_time_share_12m",
                "partial_payments_12m",
                "debt_to_income",
            ],
        },
        "financial_education": {
            "weight": f"max(0, 1 - {fx.education_low_literacy:g} x literacy), scaled to mean 1 "
            "(literacy: standard normal, half from the customer's income)",
            "reads": "helps customers with low financial literacy most",
            "observable_proxies": ["debt_to_income"],
        },
        "complaint_resolution": {
            "weight": "acts only through a complaint: a customer without one is unaffected",
            "reads": "matters only for complainers",
        },
        "contact_fatigue": {
            "weight": f"+{fx.fatigue_per_contact_above:g} log-odds per lender contact a month "
            f"above {fx.fatigue_threshold_per_month:g} (reminders + check-ins, last 3 months)",
            "reads": "contacts past a frequency raise default: a dose-response, not a constant",
        },
    }


def _causal_effects(fx: Effects) -> dict[str, dict]:
    """The planted causal effects (the keys of EFFECT_TERMS), each sized by its Effects term."""
    return {
        "satisfaction": _effect(
            fx.satisfaction_per_sd,
            "per sd of latent satisfaction",
            ["satisfaction_mean_12m", "satisfaction_last", "nps_mean_12m", "nps_last"],
        ),
        "resolved_complaint": _effect(
            fx.resolved_complaint_6m,
            "a complaint resolved in the last 6 months",
            ["complaints_resolved_6m"],
            lever="complaint_resolution",
            confounding=(
                "opposite",
                "only complainers get one, and dissatisfied customers complain more",
            ),
        ),
        "unresolved_complaint": _effect(
            fx.unresolved_complaint_6m,
            "an unresolved complaint in the last 6 months",
            ["complaints_unresolved_6m"],
            confounding=("same", "dissatisfied customers complain more"),
        ),
        "payment_reminder": _effect(
            fx.reminder_3m,
            "a payment reminder in the last 3 months",
            ["reminders_3m"],
            lever="payment_reminder",
            confounding=(
                "opposite",
                _RISKY + "; a reminded instalment is paid on time more "
                "often, which hides the lateness",
            ),
        ),
        "proactive_checkin": _effect(
            fx.checkin_3m,
            "a proactive check-in in the last 3 months",
            ["checkins_3m"],
            lever="proactive_checkin",
            confounding=("opposite", _RISKY),
        ),
        "contact_fatigue": _effect(
            fx.fatigue_per_contact_above,
            f"per lender contact a month above {fx.fatigue_threshold_per_month:g} "
            "(reminders + check-ins, last 3 months)",
            ["lender_contacts_per_month_3m"],
            threshold=fx.fatigue_threshold_per_month,
            confounding=("same", _RISKY),
        ),
        "financial_education": _effect(
            fx.financial_education,
            "ever attended a financial-education session",
            ["fin_edu_sessions_total"],
            lever="financial_education",
            confounding=("same", "willing payers attend more"),
        ),
        "tenure": _effect(
            fx.tenure_per_log_year, "per log(1 + years with the lender)", ["tenure_months"]
        ),
        "marketing_contacts": _effect(
            fx.marketing,
            "marketing contacts (planted null)",
            ["marketing_contacts_12m"],
            lever="marketing",
        ),
    }


def _marker_effects() -> dict[str, dict]:
    """Consequences of distress that precede default (not causes): no size, no lever."""
    return {
        "activity_drop": {
            "sign": 1,
            "size": None,
            "kind": "marker",
            "per": "customer-initiated contacts fall by ~75% once in distress, 2-4 months "
            "before the missed payments start",
            "features": ["activity_change_3m_vs_9m"],
            "feature_direction": "lowers",
            "lever": None,
        },
        "hardship_request": {
            "sign": 1,
            "size": None,
            "kind": "marker",
            "per": "requested during income shocks and distress",
            "features": ["hardship_requests_12m"],
            "feature_direction": "raises",
            "lever": None,
        },
    }


def _effect(
    size: float,
    per: str,
    features: list[str],
    lever: str | None = None,
    threshold: float | None = None,
    confounding: tuple[str, str] = ("none", ""),
) -> dict:
    sign = int(np.sign(size))
    out = {
        "sign": sign,
        "size": size,
        "kind": "causal",
        "per": per,
        "features": features,
        "feature_direction": {1: "raises", -1: "lowers", 0: "none"}[sign],
        "lever": lever,
        "confounding": confounding[0],
        "confounding_note": confounding[1],
    }
    if threshold is not None:
        out["threshold_per_month"] = threshold
    return out
