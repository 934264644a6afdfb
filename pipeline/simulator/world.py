"""The fixed parts of the simulated world: the planted hazard effects, the levers, the calendar.

`Effects` holds the log-odds terms of the monthly distress hazard (the planted truth) and
`EFFECT_TERMS` maps each planted effect of truth.json to the term that carries it. `LEVERS` are
what the counterfactual mode may force on or off. `Calendar` is the time axis (month starts and
the economy's stress per month). The rest are the world's constants: categories, CRM rates,
income shocks, satisfaction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.config import GenerateConfig
from pipeline.core.contract import CRM_TYPES

REGIONS = ("north", "south", "east", "west", "central", "coastal")
REGION_DOWNTURN_SENSITIVITY = (1.5, 0.6, 1.0, 0.8, 1.2, 0.9)
EMPLOYMENT = ("salaried", "self_employed", "contractor", "retired", "unemployed")
# Income shocks: monthly onset rate (times the customer's proneness and the economy) and mean
# length; the share of complaints resolved; how much latent satisfaction keeps month to month.
SHOCK_RATE, SHOCK_DOWNTURN, SHOCK_MEAN_MONTHS = 0.004, 1.5, 6
P_RESOLVED = 0.72
SAT_PERSISTENCE = 0.9
PRODUCTS = ("personal", "auto", "home_improvement", "credit_builder")
PRODUCT_TERMS = {
    "personal": (12, 24, 36, 48, 60),
    "auto": (36, 48, 60),
    "home_improvement": (24, 36, 60),
    "credit_builder": (12, 18, 24),
}
LOAN_CHANNELS = ("branch", "online", "broker")
EVENT_TYPES = CRM_TYPES  # the contract's order is also the order of the count arrays
EVENT_INDEX = {t: i for i, t in enumerate(EVENT_TYPES)}
LEVERS = (
    "proactive_checkin",
    "payment_reminder",
    "financial_education",
    "complaint_resolution",
    "marketing",  # the planted null: forcing it changes nothing
)


@dataclass(frozen=True)
class Effects:
    """Log-odds effects on the monthly distress hazard. Signs are the planted truth."""

    intercept: float = -5.75
    capacity: float = -0.6
    willingness: float = -0.5
    downturn: float = 1.0  # times the region's sensitivity and the config's strength
    season_january: float = 0.2
    income_shock: float = 1.1
    tenure_per_log_year: float = -0.25
    satisfaction_per_sd: float = -0.3
    resolved_complaint_6m: float = -0.35
    unresolved_complaint_6m: float = 0.7
    reminder_3m: float = -0.3
    checkin_3m: float = -0.35
    fatigue_threshold_per_month: float = 2.0
    fatigue_per_contact_above: float = 0.45
    financial_education: float = -0.45
    broker_channel: float = 0.2
    debt_to_income_threshold: float = 0.25  # payments / income where the burden starts to bite
    debt_to_income_above: float = 3.0  # per unit of debt-to-income above the threshold
    young_borrower: float = 0.35  # under 26
    age_curvature: float = 0.0012  # per year squared away from 45
    downturn_self_employed: float = 0.6  # extra downturn sensitivity of self-employed/contractors
    seasoning: float = 0.5  # newest loan 3-18 months old: the classic early-months peak
    marketing: float = 0.0  # planted null: looks plausible, does nothing
    # Who a lever helps (truth.json `heterogeneity`; `lever_weights`): the reminder and
    # education terms are scaled per customer by weights of mean 1 over the book's customers,
    # so the average effect is the term above.
    reminder_forgetful: float = 0.6  # reminder weight 1 - this x willingness (forgetting)
    reminder_capacity_short: float = -1.0  # capacity below this: a reminder cannot help
    education_low_literacy: float = 0.8  # education weight 1 - this x financial literacy


# Planted effect (truth.json) -> the Effects term that carries it.
EFFECT_TERMS = {
    "satisfaction": "satisfaction_per_sd",
    "resolved_complaint": "resolved_complaint_6m",
    "unresolved_complaint": "unresolved_complaint_6m",
    "payment_reminder": "reminder_3m",
    "proactive_checkin": "checkin_3m",
    "contact_fatigue": "fatigue_per_contact_above",
    "financial_education": "financial_education",
    "tenure": "tenure_per_log_year",
    "marketing_contacts": "marketing",
}


@dataclass(frozen=True)
class Calendar:
    """The simulated months: month m covers [month_start[m], month_start[m + 1]).

    first_month: the calendar month (1-12) of month 0; macro: economic stress per month.
    """

    months: int
    month_start: np.ndarray  # datetime64[D], months + 1 of them (month M's end is known)
    first_month: int
    macro: np.ndarray

    @classmethod
    def of(cls, cfg: GenerateConfig) -> Calendar:
        start = np.datetime64(cfg.start.replace(day=1), "M")
        month_start = (np.arange(cfg.months + 1) + start).astype("datetime64[D]")
        return cls(cfg.months, month_start, cfg.start.month, _macro(cfg))

    def season(self, m: int) -> float:
        """cos of the calendar month's angle: 1 in January, -1 in July."""
        return np.cos(2 * np.pi * ((m + self.first_month - 1) % 12) / 12)


def lever_weights(will: np.ndarray, cap: np.ndarray, literacy: np.ndarray, fx: Effects):
    """(reminder, education) weights per customer, each of mean 1 over the customers.

    A reminder helps a customer who pays late from forgetting (low willingness) more, and
    cannot help one short of money (capacity below `reminder_capacity_short`); financial
    education helps customers with low financial literacy more. Zero slopes and a threshold of
    -inf give weights of 1 (no heterogeneity)."""
    rem = np.clip(1 - fx.reminder_forgetful * will, 0, None) * (cap >= fx.reminder_capacity_short)
    edu = np.clip(1 - fx.education_low_literacy * literacy, 0, None)
    return _mean_one(rem), _mean_one(edu)


def _mean_one(w: np.ndarray) -> np.ndarray:
    m = float(w.mean()) if len(w) else 0.0
    return w / m if m > 0 else w


def check_levers(levers: dict[str, bool | np.ndarray]) -> dict[str, bool | np.ndarray]:
    unknown = sorted(set(levers) - set(LEVERS))
    if unknown:
        raise ValueError(f"unknown levers {unknown}; known: {list(LEVERS)}")
    return levers


def shock_rate(shock_prone: np.ndarray, macro_m: float) -> np.ndarray:
    """Monthly onset probability of an income shock for a customer free of one."""
    return SHOCK_RATE * shock_prone * (1 + SHOCK_DOWNTURN * macro_m)


def _macro(cfg: GenerateConfig) -> np.ndarray:
    """Economic stress by month: a downturn that builds and fades over the configured year."""
    months = np.arange(cfg.months)
    if cfg.downturn_year is None:
        return np.zeros(cfg.months)
    centre = (cfg.downturn_year - cfg.start.year) * 12 + 6 - (cfg.start.month - 1)
    bump = np.exp(-0.5 * ((months - centre) / 4.0) ** 2)
    return cfg.downturn_strength * bump
