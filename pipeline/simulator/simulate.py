"""The simulated lender's book: four tables with a known truth (`loanrisk generate`).

The model of the world, month by month (month m covers [start + m months, start + m + 1 months)):

* Each customer has a latent repayment capacity `c` and willingness `w` (standard normal), a
  region with its own sensitivity to an economic downturn, a latent satisfaction that drifts and
  reacts to how complaints are handled, and occasional income shocks.
* The lender sees only observables: it prices loans on a noisy risk grade, and it contacts the
  customers it sees as risky (recent late payments, high rate) more often: reminders and proactive
  check-ins are *confounded* with risk, as in real books.
* Every month a customer who is not yet in distress enters it with hazard `h` (logit-linear in the
  latent traits, the economy, season, shocks and the relationship state built from CRM events of
  the months before; `truth.json` lists every term). A distressed customer stops paying all loans
  after a lag of 1-2 months (the instalments stay unpaid, so they reach 90 days past due) and,
  before that, goes quiet (a drop in activity), pays late and pays part.
* Late but cured payments (up to ~70 days) follow capacity, willingness, shocks and reminders.

The true probability of the label (90+ DPD within the window after a snapshot) is computed from
each customer's state at the snapshot, integrating over what happens after it (`_true_pd`): the
oracle, the best PD any model could give. It is written apart from the four tables, in `truth/`.
Every random draw comes from a stream keyed by (seed, month, purpose), so forcing one lever on or
off (`levers`) changes that lever only: the counterfactual mode of the effect study.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import logit

from pipeline.config import GenerateConfig
from pipeline.core.contract import CRM_TYPES
from pipeline.core.io import atomic_path, write_json, write_parquet

log = logging.getLogger(__name__)

REGIONS = ("north", "south", "east", "west", "central", "coastal")
REGION_DOWNTURN_SENSITIVITY = (1.5, 0.6, 1.0, 0.8, 1.2, 0.9)
EMPLOYMENT = ("salaried", "self_employed", "contractor", "retired", "unemployed")
# Income shocks: monthly onset rate (times the customer's proneness and the economy) and mean
# length; the share of complaints resolved; how much latent satisfaction keeps month to month.
SHOCK_RATE, SHOCK_DOWNTURN, SHOCK_MEAN_MONTHS = 0.004, 1.5, 6
P_RESOLVED = 0.72
SAT_PERSISTENCE = 0.9
# CRM intensities the state-based oracle projects forward (order of `_MonthlyState.lam`).
_PROJECTED = (
    "payment_reminder",
    "proactive_checkin",
    "complaint",
    "financial_education",
    "marketing",
)
PRODUCTS = ("personal", "auto", "home_improvement", "credit_builder")
PRODUCT_TERMS = {
    "personal": (12, 24, 36, 48, 60),
    "auto": (36, 48, 60),
    "home_improvement": (24, 36, 60),
    "credit_builder": (12, 18, 24),
}
LOAN_CHANNELS = ("branch", "online", "broker")
EVENT_TYPES = CRM_TYPES  # the contract's order is also the order of the count arrays
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


@dataclass
class Book:
    customers: pd.DataFrame
    loans: pd.DataFrame
    repayments: pd.DataFrame
    crm_interactions: pd.DataFrame
    true_pd: pd.DataFrame
    truth: dict = field(default_factory=dict)

    def tables(self) -> dict[str, pd.DataFrame]:
        return {
            "customers": self.customers,
            "loans": self.loans,
            "repayments": self.repayments,
            "crm_interactions": self.crm_interactions,
        }


def generate(
    out_dir: Path,
    cfg: GenerateConfig,
    seed: int = 42,
    window_months: int = 12,
    fmt: str = "parquet",
    levers: dict[str, bool] | None = None,
) -> Book:
    """Simulate a book and write `<out>/<table>.<fmt>` plus `<out>/truth/` (truth.json, true PD)."""
    book = simulate(cfg, seed=seed, window_months=window_months, levers=levers)
    out_dir = Path(out_dir)
    for name, df in book.tables().items():
        target = out_dir / f"{name}.{fmt}"
        if fmt == "parquet":
            write_parquet(df, target)
        else:
            with atomic_path(target) as tmp:
                df.to_csv(tmp, index=False)
    write_parquet(book.true_pd, out_dir / "truth" / "true_pd.parquet")
    write_json(book.truth, out_dir / "truth" / "truth.json")
    log.info(
        "generated %d customers, %d loans, %d instalments, %d CRM events into %s",
        len(book.customers),
        len(book.loans),
        len(book.repayments),
        len(book.crm_interactions),
        out_dir,
    )
    return book


def simulate(
    cfg: GenerateConfig,
    seed: int = 42,
    window_months: int = 12,
    levers: dict[str, bool] | None = None,
    effects: Effects | None = None,
    lever_months: tuple[int, int] | None = None,
) -> Book:
    """Run the simulation in memory. Deterministic for a given (cfg, seed, levers).

    levers: force a lever on (True: at least one such event a month for every customer with a
        loan; for complaint_resolution, every complaint resolved) or off (False: none).
    lever_months: force the levers only in months [a, b) (month 0 = cfg.start), e.g. the
        treatment window before a snapshot; None = every month.
    """
    levers = _check_levers(levers or {})
    fx = effects or Effects()
    sim = _Simulation(cfg, seed, window_months, levers, fx, lever_months)
    return sim.run()


def _check_levers(levers: dict[str, bool]) -> dict[str, bool]:
    unknown = sorted(set(levers) - set(LEVERS))
    if unknown:
        raise ValueError(f"unknown levers {unknown}; known: {list(LEVERS)}")
    return levers


def _rng(seed: int, month: int, purpose: str) -> np.random.Generator:
    key = int.from_bytes(purpose.encode()[:8].ljust(8, b"\0"), "little")
    return np.random.default_rng([seed, month + 1, key])


def _recent(arr: np.ndarray, m: int, months: int) -> np.ndarray:
    """Sum over the `months` months before month m (events of month m are not yet known)."""
    return arr[..., max(0, m - months) : m].sum(axis=-1)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _logit(p: np.ndarray) -> np.ndarray:
    """log(p / (1 - p)); NaN where the outcome is settled (p is 0 or 1)."""
    out = logit(p)
    return np.where(np.isfinite(out), out, np.nan)


@dataclass
class _MonthlyState:
    """What each customer's hazard was made of at the start of each month (arrays n x M).

    known: the hazard terms fixed in advance (traits, economy, age, season, the loan plan);
    sat: latent satisfaction; shock_left: months of income shock left; edu_ever: attended a
    financial-education session before the month; lam: CRM intensities of `_PROJECTED`.
    """

    known: np.ndarray
    sat: np.ndarray
    shock_left: np.ndarray
    edu_ever: np.ndarray
    lam: np.ndarray

    @classmethod
    def empty(cls, n: int, months: int) -> _MonthlyState:
        return cls(
            known=np.zeros((n, months), dtype=np.float32),
            sat=np.zeros((n, months), dtype=np.float32),
            shock_left=np.zeros((n, months), dtype=np.int16),
            edu_ever=np.zeros((n, months), dtype=bool),
            lam=np.zeros((len(_PROJECTED), n, months), dtype=np.float32),
        )


class _Simulation:
    def __init__(self, cfg, seed, window_months, levers, fx: Effects, lever_months=None):
        self.cfg = cfg
        self.seed = seed
        self.W = window_months
        self.all_levers = levers
        self.lever_months = lever_months
        self.fx = fx
        self.M = cfg.months
        start = np.datetime64(cfg.start.replace(day=1), "M")
        # Month starts as day numbers; one extra so month M's end is known.
        self.month_start = (np.arange(self.M + 1) + start).astype("datetime64[D]")
        self.n = cfg.n_customers()

    # -- population ---------------------------------------------------------------------------
    def _customers(self) -> None:
        rng = _rng(self.seed, -1, "customer")
        n = self.n
        self.cap = rng.standard_normal(n)
        self.will = rng.standard_normal(n)
        age = rng.uniform(21, 72, n)
        self.age = age
        self.region = rng.integers(0, len(REGIONS), n)
        # Employment follows capacity: low capacity is more often contractor or unemployed.
        emp_logits = np.stack(
            [
                1.6 + 0.3 * self.cap,
                0.2 + 0.0 * self.cap,
                -0.1 - 0.3 * self.cap,
                np.where(age > 62, 2.5, -3.0),
                -1.8 - 0.7 * self.cap,
            ],
            axis=1,
        )
        self.employment = _categorical_draw(rng, emp_logits)
        self.income = np.exp(10.55 + 0.33 * self.cap + 0.3 * rng.standard_normal(n))
        self.income *= np.where(self.employment == 4, 0.45, 1.0)
        # Years with the lender before the book starts: many long-standing, some brand new.
        self.tenure_start_years = np.where(
            rng.random(n) < 0.3, 0.0, rng.exponential(5.0, n)
        ) + 0.1 * (self.will > 0)
        self.sat_mean = 0.3 * self.will + 0.9 * rng.standard_normal(n)
        self.digital = _sigmoid(2.5 - 0.07 * (age - 21) + 0.5 * rng.standard_normal(n))
        self.marketing_rate = rng.gamma(1.2, 0.25, n)
        self.shock_prone = rng.gamma(2.0, 0.5, n)
        self.lag = rng.integers(1, 3, n)
        # What the lender sees and acts on: a noisy grade of capacity and willingness.
        self.grade = 0.6 * self.cap + 0.4 * self.will + 0.55 * rng.standard_normal(n)

    def _loans(self) -> None:
        rng = _rng(self.seed, -1, "loans")
        n, M = self.n, self.M
        n_loans = 1 + (rng.random(n) < 0.35) + (rng.random(n) < 0.10)
        cust = np.repeat(np.arange(n), n_loans)
        k = len(cust)
        first = rng.integers(0, M - 3, n)
        # Later loans of the same customer come 3-30 months after the first.
        offset = np.concatenate([np.arange(c) for c in n_loans]) * rng.integers(3, 30, k)
        orig = np.minimum(first[cust] + offset, M - 2)
        product = _categorical_draw(rng, np.tile(np.log([0.45, 0.25, 0.18, 0.12]), (k, 1)) + 0.0)
        # Credit builders go to customers with thin or weak credit.
        product = np.where((self.grade[cust] < -1.0) & (rng.random(k) < 0.4), 3, product)
        term = np.array([rng.choice(PRODUCT_TERMS[PRODUCTS[p]]) for p in product], dtype=np.int64)
        base = np.array([9000, 18000, 14000, 2500])[product]
        principal = np.round(
            base * np.exp(0.45 * rng.standard_normal(k)) * (self.income[cust] / 40000) ** 0.5, -1
        )
        principal = np.maximum(principal, 500.0)
        base_rate = np.array([0.11, 0.07, 0.09, 0.16])[product]
        rate = np.clip(
            base_rate - 0.025 * self.grade[cust] + 0.01 * rng.standard_normal(k), 0.02, 0.35
        )
        channel = _categorical_draw(rng, np.tile(np.log([0.4, 0.45, 0.15]), (k, 1)))
        day = rng.integers(1, 29, k)
        r = rate / 12
        payment = np.round(principal * r / (1 - (1 + r) ** (-term)), 2)
        self.l_cust, self.l_orig, self.l_term, self.l_day = cust, orig, term, day
        self.l_product, self.l_principal, self.l_rate, self.l_channel = (
            product,
            principal,
            rate,
            channel,
        )
        self.l_payment = payment
        self.k = k

    # -- the monthly loop ---------------------------------------------------------------------
    def run(self) -> Book:
        self._customers()
        self._loans()
        n, M, fx = self.n, self.M, self.fx
        T = len(EVENT_TYPES)
        counts = np.zeros((T, n, M), dtype=np.int32)  # events per type, customer, month
        resolved_cnt = np.zeros((n, M), dtype=np.int32)
        unresolved_cnt = np.zeros((n, M), dtype=np.int32)
        late_cnt = np.zeros((n, M), dtype=np.int32)
        hazard = np.zeros((n, M))
        distress = np.full(n, -1)  # month of distress onset, -1 = never
        shock_left = np.zeros(n, dtype=np.int32)
        sat = self.sat_mean.copy()
        edu_ever = np.zeros(n, dtype=bool)
        events: list[dict[str, np.ndarray]] = []
        pays: list[dict[str, np.ndarray]] = []
        tenure0 = self.tenure_start_years
        macro = self._macro()
        idx = {t: i for i, t in enumerate(EVENT_TYPES)}
        state = _MonthlyState.empty(n, M)

        for m in range(M):
            in_window = self.lever_months is None or (
                self.lever_months[0] <= m < self.lever_months[1]
            )
            self.levers = self.all_levers if in_window else {}
            active_loan = (self.l_orig <= m) & (m <= self.l_orig + self.l_term)
            due_loan = (self.l_orig < m) & (m <= self.l_orig + self.l_term)
            has_loan = np.bincount(self.l_cust[active_loan], minlength=n) > 0
            loan_dti = (
                np.bincount(self.l_cust[active_loan], self.l_payment[active_loan] * 12, n)
                / self.income
            )

            rem3 = _recent(counts[idx["payment_reminder"]], m, 3)
            chk3 = _recent(counts[idx["proactive_checkin"]], m, 3)
            lender_rate = (rem3 + chk3) / 3.0
            res6 = _recent(resolved_cnt, m, 6)
            unres6 = _recent(unresolved_cnt, m, 6)
            late3 = _recent(late_cnt, m, 3)
            shock = shock_left > 0
            tenure_years = tenure0 + m / 12.0
            # Monthly distress hazard: the planted truth (see truth.json). `known` holds the terms
            # fixed in advance (traits, economy, age, season, the loan plan); the state-based
            # oracle (`_true_pd`) projects the rest forward from each snapshot.
            known = (
                fx.intercept
                + fx.capacity * self.cap
                + fx.willingness * self.will
                + fx.downturn * macro[m] * np.array(REGION_DOWNTURN_SENSITIVITY)[self.region]
                + fx.downturn_self_employed * macro[m] * np.isin(self.employment, (1, 2))
                + fx.young_borrower * (self.age + m / 12 < 26)
                + fx.age_curvature * (self.age + m / 12 - 45) ** 2
                + fx.seasoning * self._seasoning(m)
                + fx.season_january * np.cos(2 * np.pi * ((m + self.cfg.start.month - 1) % 12) / 12)
                + fx.tenure_per_log_year * np.log1p(tenure_years)
                + fx.debt_to_income_above * np.clip(loan_dti - fx.debt_to_income_threshold, 0, 1)
                + fx.broker_channel * self._broker_customers()
            )
            eta = (
                known
                + fx.income_shock * shock
                + fx.satisfaction_per_sd * sat
                + fx.resolved_complaint_6m * (res6 > 0)
                + fx.unresolved_complaint_6m * (unres6 > 0)
                + fx.reminder_3m * (rem3 > 0)
                + fx.checkin_3m * (chk3 > 0)
                + fx.fatigue_per_contact_above
                * np.maximum(0.0, lender_rate - fx.fatigue_threshold_per_month)
                + fx.financial_education * edu_ever
                + fx.marketing * _recent(counts[idx["marketing"]], m, 12)
            )
            h = _sigmoid(eta)
            hazard[:, m] = h
            state.known[:, m] = known
            state.sat[:, m] = sat
            state.shock_left[:, m] = shock_left
            state.edu_ever[:, m] = edu_ever
            u = _rng(self.seed, m, "onset").random(n)
            onset = (distress < 0) & has_loan & (u < h)
            distress[onset] = m
            in_distress = distress >= 0
            quiet = in_distress  # a distressed customer goes quiet: the early-warning signal

            # Income shocks: more frequent in the downturn.
            r = _rng(self.seed, m, "shock")
            new_shock = (shock_left == 0) & (r.random(n) < self._shock_rate(macro[m]))
            shock_left = np.maximum(shock_left - 1, 0)
            shock_left[new_shock] = r.geometric(1 / SHOCK_MEAN_MONTHS, n)[new_shock]

            # CRM intensities per customer this month.
            alive = has_loan
            lam = np.zeros((T, n))
            lam[idx["service_request"]] = 0.28 * (1 - 0.75 * quiet) * (0.6 + self.digital)
            lam[idx["complaint"]] = 0.035 * (1 + 0.8 * (sat < -1.0)) * (1 - 0.5 * quiet)
            risky_seen = _sigmoid(-1.6 * self.grade - 1.2) + 0.45 * np.minimum(late3, 2)
            lam[idx["payment_reminder"]] = 0.06 + 0.9 * risky_seen
            lam[idx["proactive_checkin"]] = 0.03 + 0.35 * risky_seen
            lam[idx["financial_education"]] = 0.012 * (1 + 1.5 * _sigmoid(1.5 * self.will))
            lam[idx["hardship_request"]] = 0.004 + 0.12 * shock + 0.15 * in_distress
            lam[idx["marketing"]] = self.marketing_rate
            lam *= alive
            state.lam[:, :, m] = lam[[idx[t] for t in _PROJECTED]]
            cnt = np.zeros((T, n), dtype=np.int32)
            for t_name, t in idx.items():
                cnt[t] = _rng(self.seed, m, "ev_" + t_name).poisson(lam[t])
            self._apply_levers(cnt, idx, alive)
            counts[:, :, m] = cnt

            # Complaints: resolved or not; satisfaction reacts.
            r = _rng(self.seed, m, "complaint")
            n_c = cnt[idx["complaint"]]
            p_res = P_RESOLVED if not self.levers.get("complaint_resolution") else 1.0
            if self.levers.get("complaint_resolution") is False:
                p_res = 0.0
            res = r.binomial(n_c, p_res)
            resolved_cnt[:, m] = res
            unresolved_cnt[:, m] = n_c - res
            sat = (
                SAT_PERSISTENCE * sat
                + (1 - SAT_PERSISTENCE) * self.sat_mean
                + 0.15 * _rng(self.seed, m, "sat").standard_normal(n)
                - 0.6 * (n_c - res > 0)
                + 0.25 * (res > 0)
            )
            edu_ever |= cnt[idx["financial_education"]] > 0

            events.append(self._emit_events(m, cnt, res, sat, quiet))

            # Instalments due this month.
            p = self._emit_payments(m, due_loan, distress, shock, cnt[idx["payment_reminder"]] > 0)
            pays.append(p)
            np.add.at(late_cnt[:, m], self.l_cust[p["loan"]], p["late"].astype(np.int32))

        self.hazard = hazard
        self.distress = distress
        self.state = state
        self.counts, self.resolved_cnt, self.unresolved_cnt = counts, resolved_cnt, unresolved_cnt
        self.macro = macro
        return self._assemble(events, pays)

    def _seasoning(self, m: int) -> np.ndarray:
        """1 when the customer's newest loan is 3-18 months old."""
        age = np.full(self.n, 10_000)
        started = self.l_orig <= m
        np.minimum.at(age, self.l_cust[started], m - self.l_orig[started])
        return ((age >= 3) & (age <= 18)).astype(float)

    def _broker_customers(self) -> np.ndarray:
        if not hasattr(self, "_broker"):
            b = np.zeros(self.n)
            np.maximum.at(b, self.l_cust, (self.l_channel == 2).astype(float))
            self._broker = b
        return self._broker

    def _apply_levers(self, cnt: np.ndarray, idx: dict[str, int], alive: np.ndarray) -> None:
        for lever in ("proactive_checkin", "payment_reminder", "financial_education", "marketing"):
            forced = self.levers.get(lever)
            if forced is True:
                cnt[idx[lever]] = np.maximum(cnt[idx[lever]], alive.astype(np.int32))
            elif forced is False:
                cnt[idx[lever]] = 0

    def _shock_rate(self, macro_m: float) -> np.ndarray:
        return SHOCK_RATE * self.shock_prone * (1 + SHOCK_DOWNTURN * macro_m)

    def _macro(self) -> np.ndarray:
        """Economic stress by month: a downturn that builds and fades over the configured year."""
        months = np.arange(self.M)
        if self.cfg.downturn_year is None:
            return np.zeros(self.M)
        centre = (
            (self.cfg.downturn_year - self.cfg.start.year) * 12 + 6 - (self.cfg.start.month - 1)
        )
        bump = np.exp(-0.5 * ((months - centre) / 4.0) ** 2)
        return self.cfg.downturn_strength * bump

    # -- emission -----------------------------------------------------------------------------
    def _emit_events(self, m, cnt, resolved, sat, quiet) -> dict[str, np.ndarray]:
        r = _rng(self.seed, m, "emit")
        month_days = int((self.month_start[m + 1] - self.month_start[m]).astype(np.int64))
        cols: dict[str, list[np.ndarray]] = {
            k: []
            for k in (
                "customer",
                "type",
                "channel",
                "seconds",
                "resolved",
                "res_days",
                "sat",
                "nps",
                "direction",
                "answered",
            )
        }
        for t, t_name in enumerate(EVENT_TYPES):
            c = cnt[t]
            cust = np.repeat(np.arange(self.n), c)
            k = len(cust)
            if k == 0:
                continue
            secs = r.integers(0, month_days * 86400, k)
            if t_name == "payment_reminder":
                # Sent 1-7 days before the customer's due day.
                due_day = self._due_day_of_customer()[cust]
                secs = np.clip(
                    (due_day - 1 - r.integers(1, 8, k)) * 86400
                    + r.integers(8 * 3600, 20 * 3600, k),
                    0,
                    month_days * 86400 - 1,
                )
            channel = self._channel(r, t_name, cust)
            res = np.full(k, -1, dtype=np.int8)
            res_days = np.full(k, np.nan)
            if t_name == "complaint":
                # Mark the first `resolved[i]` complaints of each customer as resolved.
                order = np.argsort(cust, kind="stable")
                rank = np.empty(k, dtype=np.int64)
                starts = np.r_[0, np.flatnonzero(np.diff(cust[order])) + 1]
                rank[order] = np.arange(k) - np.repeat(starts, np.diff(np.r_[starts, k]))
                is_res = rank < resolved[cust]
                res = is_res.astype(np.int8)
                res_days = np.where(is_res, np.ceil(r.gamma(1.5, 6.0, k)), np.nan)
            elif t_name in ("service_request", "hardship_request"):
                is_res = r.random(k) < 0.9
                res = is_res.astype(np.int8)
                res_days = np.where(is_res, np.ceil(r.gamma(1.2, 3.0, k)), np.nan)
            surveyed = (r.random(k) < 0.35) & np.isin(
                t_name, ["service_request", "complaint", "proactive_checkin", "financial_education"]
            )
            s_val = np.clip(np.round(3.4 + 0.9 * sat[cust] + 0.6 * r.standard_normal(k)), 1, 5)
            n_val = np.clip(np.round(6.8 + 1.6 * sat[cust] + 1.2 * r.standard_normal(k)), 0, 10)
            has_nps = surveyed & (r.random(k) < 0.6)
            outbound = t_name in ("payment_reminder", "proactive_checkin", "marketing")
            answered = np.where(
                outbound,
                r.random(k) < _sigmoid(0.6 + 0.7 * self.will[cust] - 1.6 * quiet[cust]),
                False,
            ).astype(np.int8)
            if not outbound:
                answered[:] = -1
            cols["customer"].append(cust)
            cols["type"].append(np.full(k, t, dtype=np.int8))
            cols["channel"].append(channel)
            cols["seconds"].append(secs)
            cols["resolved"].append(res)
            cols["res_days"].append(res_days)
            cols["sat"].append(np.where(surveyed, s_val, np.nan))
            cols["nps"].append(np.where(has_nps, n_val, np.nan))
            cols["direction"].append(np.full(k, 1 if outbound else 0, dtype=np.int8))
            cols["answered"].append(answered)
        out = {k: (np.concatenate(v) if v else np.array([])) for k, v in cols.items()}
        out["month"] = np.full(len(out["customer"]), m)
        return out

    def _due_day_of_customer(self) -> np.ndarray:
        if not hasattr(self, "_cust_due"):
            d = np.full(self.n, 15)
            # The first loan's due day: later loans of a customer are usually aligned to it.
            first = np.unique(self.l_cust, return_index=True)[1]
            d[self.l_cust[first]] = self.l_day[first]
            self._cust_due = d
        return self._cust_due

    def _channel(self, r, t_name, cust) -> np.ndarray:
        """Channel codes (index into contract channels: phone, app, branch, email, chat, sms)."""
        k = len(cust)
        dig = self.digital[cust]
        if t_name == "payment_reminder":
            w = np.stack(
                [
                    0.1 * np.ones(k),
                    0.6 * dig,
                    0 * dig,
                    0.3 * np.ones(k),
                    0 * dig,
                    0.6 * (1 - dig) + 0.2,
                ],
                axis=1,
            )
        elif t_name == "proactive_checkin":
            w = np.stack(
                [0.7 * np.ones(k), 0.2 * dig, 0.3 * (1 - dig), 0 * dig, 0.1 * dig, 0 * dig], axis=1
            )
        elif t_name == "marketing":
            w = np.stack(
                [
                    0.05 * np.ones(k),
                    0.4 * dig,
                    0 * dig,
                    0.4 * np.ones(k),
                    0 * dig,
                    0.3 * np.ones(k),
                ],
                axis=1,
            )
        else:
            w = np.stack(
                [
                    0.35 * np.ones(k),
                    0.5 * dig,
                    0.5 * (1 - dig),
                    0.1 * np.ones(k),
                    0.3 * dig,
                    0 * dig,
                ],
                axis=1,
            )
        return _categorical_draw(r, np.log(w + 1e-12)).astype(np.int8)

    def _emit_payments(self, m, due_loan, distress, shock, reminded) -> dict[str, np.ndarray]:
        loans = np.flatnonzero(due_loan)
        cust = self.l_cust[loans]
        r = _rng(self.seed, m, "pay")
        k = len(loans)
        u_late, u_days, u_part, u_partamt, u_early = (r.random(k) for _ in range(5))
        d = distress[cust]
        terminal = (d >= 0) & (m >= d + self.lag[cust])
        pre_default = (d >= 0) & ~terminal
        p_late = _sigmoid(
            -3.3
            - 1.0 * self.cap[cust]
            - 1.2 * self.will[cust]
            + 1.6 * shock[cust]
            + 5.0 * pre_default
            - 0.6 * reminded[cust]
            + 0.15 * np.cos(2 * np.pi * ((m + self.cfg.start.month - 1) % 12) / 12)
        )
        late = (u_late < p_late) & ~terminal
        # Late payments are cured within ~70 days: truncated geometric in days.
        days_late = np.where(late, 3 + np.floor(-np.log1p(-u_days * 0.999) * 14).clip(0, 67), 0)
        early = np.where(late, 0, np.floor(u_early * 6))
        partial = ~terminal & (u_part < 0.02 + 0.2 * shock[cust] + 0.5 * pre_default)
        inst = m - self.l_orig[loans]
        return {
            "loan": loans,
            "inst": inst,
            "month": np.full(k, m),
            "paid": ~terminal,
            "offset_days": (days_late - early).astype(np.int64),
            "partial_share": np.where(partial, 0.3 + 0.6 * u_partamt, 1.0),
            "late": late,
        }

    # -- assembling the tables and the truth ---------------------------------------------------
    def _assemble(self, events, pays) -> Book:
        n = self.n
        start = self.month_start[0]
        cfg = self.cfg
        rng = _rng(self.seed, -1, "missing")
        cust_ids = np.arange(1, n + 1, dtype=np.int64)
        since = (start - (self.tenure_start_years * 365.25).astype("timedelta64[D]")).astype(
            "datetime64[D]"
        )
        birth_year = (cfg.start.year - np.floor(self.age)).astype("float")
        birth_year[rng.random(n) < cfg.missing_rate] = np.nan
        income = np.round(self.income, -2)
        income[rng.random(n) < cfg.missing_rate] = np.nan
        customers = pd.DataFrame(
            {
                "customer_id": cust_ids,
                "customer_since": pd.to_datetime(since),
                "birth_year": pd.array(birth_year, dtype="Int64"),
                "annual_income": income,
                "employment_type": pd.array(np.array(EMPLOYMENT)[self.employment], dtype="str"),
                "region": pd.array(np.array(REGIONS)[self.region], dtype="str"),
            }
        )
        loan_ids = np.arange(1, self.k + 1, dtype=np.int64) + 100000
        orig_date = self.month_start[self.l_orig] + (self.l_day - 1).astype("timedelta64[D]")
        loans = pd.DataFrame(
            {
                "loan_id": loan_ids,
                "customer_id": cust_ids[self.l_cust],
                "product": pd.array(np.array(PRODUCTS)[self.l_product], dtype="str"),
                "origination_date": pd.to_datetime(orig_date),
                "principal": self.l_principal,
                "term_months": self.l_term,
                "interest_rate": np.round(self.l_rate, 4),
                "channel": pd.array(np.array(LOAN_CHANNELS)[self.l_channel], dtype="str"),
            }
        )
        loans = loans.sort_values(["origination_date", "loan_id"], kind="stable")
        loans = loans.reset_index(drop=True)

        p = {k: np.concatenate([x[k] for x in pays]) for k in pays[0]}
        due = self.month_start[p["month"]] + (self.l_day[p["loan"]] - 1).astype("timedelta64[D]")
        paid_date = np.where(
            p["paid"], due + p["offset_days"].astype("timedelta64[D]"), np.datetime64("NaT")
        ).astype("datetime64[D]")
        amount_due = self.l_payment[p["loan"]]
        amount_paid = np.where(p["paid"], np.round(amount_due * p["partial_share"], 2), 0.0)
        repayments = pd.DataFrame(
            {
                "loan_id": loan_ids[p["loan"]],
                "installment_no": p["inst"].astype(np.int64),
                "due_date": pd.to_datetime(due),
                "amount_due": amount_due,
                "paid_date": pd.to_datetime(paid_date),
                "amount_paid": amount_paid,
            }
        )
        # A payment cannot be observed after the extraction date: it is still unpaid then.
        end = pd.Timestamp(self.month_start[self.M])
        after = repayments["paid_date"] >= end
        repayments.loc[after, "paid_date"] = pd.NaT
        repayments.loc[after, "amount_paid"] = 0.0
        repayments = repayments.sort_values(["loan_id", "installment_no"], kind="stable")
        repayments = repayments.reset_index(drop=True)

        e = {k: np.concatenate([x[k] for x in events]) for k in events[0]}
        ts = self.month_start[e["month"]].astype("datetime64[s]") + e["seconds"].astype(
            "timedelta64[s]"
        )
        crm = pd.DataFrame(
            {
                "customer_id": cust_ids[e["customer"].astype(np.int64)],
                "timestamp": pd.to_datetime(ts),
                "channel": pd.array(
                    np.array(("phone", "app", "branch", "email", "chat", "sms"))[
                        e["channel"].astype(np.int64)
                    ],
                    dtype="str",
                ),
                "type": pd.array(np.array(EVENT_TYPES)[e["type"].astype(np.int64)], dtype="str"),
                "resolved": pd.array(
                    np.where(e["resolved"] < 0, None, e["resolved"] == 1), dtype="boolean"
                ),
                "resolution_days": e["res_days"],
                "satisfaction": pd.array(e["sat"], dtype="Int64"),
                "nps": pd.array(e["nps"], dtype="Int64"),
                "direction": pd.array(
                    np.where(e["direction"] == 1, "outbound", "inbound"), dtype="str"
                ),
                "answered": pd.array(
                    np.where(e["answered"] < 0, None, e["answered"] == 1), dtype="boolean"
                ),
            }
        )
        crm = crm.sort_values(["timestamp", "customer_id"], kind="stable").reset_index(drop=True)
        crm.insert(0, "interaction_id", np.arange(1, len(crm) + 1, dtype=np.int64))
        true_pd = self._true_pd(loan_ids)
        truth = self._truth(true_pd, self._attributions(loan_ids))
        return Book(customers, loans, repayments, crm, true_pd, truth)

    def _true_pd(self, loan_ids: np.ndarray, months: range | None = None) -> pd.DataFrame:
        """P(90+ DPD in [s, s + W months)) per loan and monthly snapshot s with a full window
        (or the snapshot months given).

        true_pd: given the customer's state at s (latent traits, distress, the income shock and
        its months left, satisfaction, the CRM events so far), integrating over what happens
        after s: new shocks exactly, future contacts and complaints at their intensity at s
        (first order), satisfaction decaying to its mean. This is the oracle: the best PD any
        model could give at s. pd_given_path: given the hazards the simulation then drew (the
        future's randomness known); the effect study contrasts it between counterfactual runs
        that share that randomness.
        Both are 0 or 1 when the customer was already in distress before s (settled outcome).
        """
        W, M = self.W, self.M
        ms = self.month_start.astype(np.int64)
        log_surv = np.concatenate(
            [np.zeros((self.n, 1)), np.cumsum(np.log1p(-self.hazard), axis=1)], axis=1
        )
        lag = self.lag[self.l_cust]
        d = self.distress[self.l_cust]
        last_due = self.l_orig + self.l_term
        cust = self.l_cust
        # Events per customer summed over months < k, for k = 0..M: each snapshot's windows
        # are differences of these, not sums redone per snapshot.
        ev = {t_name: self.counts[i] for i, t_name in enumerate(EVENT_TYPES)}
        sources = {
            "payment_reminder": ev["payment_reminder"],
            "proactive_checkin": ev["proactive_checkin"],
            "resolved": self.resolved_cnt,
            "unresolved": self.unresolved_cnt,
            "marketing": ev["marketing"],
        }
        cum_events = {
            k: np.concatenate([np.zeros((self.n, 1)), np.cumsum(v, axis=1)], axis=1)
            for k, v in sources.items()
        }
        frames = []
        for s in months or range(1, M - W + 1):
            live = (self.l_orig < s) & (last_due >= s)
            # Largest due month whose 90-DPD date falls before the window's end.
            limit = ms[s + W] - (self.l_day - 1 + 90)
            k_max = np.searchsorted(ms[: M + 1], limit, side="left") - 1
            k_max = np.minimum(k_max, last_due)
            t_max = k_max - lag
            # Default already settled: the customer's distress began before s.
            settled = (d >= 0) & (d < s)
            k_def = np.maximum(d + lag, self.l_orig + 1)
            d90 = ms[np.clip(k_def, 0, M)] + self.l_day - 1 + 90
            defaulted_before = settled & (k_def <= last_due) & (d90 < ms[s])
            live &= ~defaulted_before
            p_settled = (settled & (k_def <= last_due) & (d90 < ms[s + W])).astype(float)
            t_hi = np.clip(t_max, s - 1, M - 1)
            p_path = 1 - np.exp(log_surv[cust, t_hi + 1] - log_surv[cust, s])
            n_onset = np.clip(t_max - s + 1, 0, W)  # onset months s.. that still count
            p_state = 1 - np.exp(self._projected_log_surv(s, cum_events)[cust, n_onset])
            open_ = t_max >= s
            idx = np.flatnonzero(live)
            frames.append(
                pd.DataFrame(
                    {
                        "loan_id": loan_ids[idx],
                        "snapshot_date": pd.Timestamp(self.month_start[s]),
                        "true_pd": np.where(settled, p_settled, np.where(open_, p_state, 0.0))[idx],
                        "pd_given_path": np.where(settled, p_settled, np.where(open_, p_path, 0.0))[
                            idx
                        ],
                    }
                )
            )
        out = pd.concat(frames, ignore_index=True)
        out["snapshot_date"] = out["snapshot_date"].astype("datetime64[ns]")
        return out

    def _attributions(self, loan_ids: np.ndarray) -> dict[str, float]:
        """Per planted effect, how much the change of the oracle's log-odds when its hazard term
        is switched off varies across loans: mean |d - mean(d)| over quarterly snapshots whose
        outcome is still open. Centred like SHAP values (which share out the prediction minus
        its mean), so it is the effect's mean |SHAP| in the oracle: the explanation's truth
        check skips effects too small for any model to show."""
        months = range(1, self.M - self.W + 1, 3)
        base = _logit(self._true_pd(loan_ids, months)["true_pd"].to_numpy())
        fx, known = self.fx, self.state.known
        out = {}
        for name, term in EFFECT_TERMS.items():
            self.fx = dataclasses.replace(fx, **{term: 0.0})
            if term == "tenure_per_log_year":  # a fixed term: it is already summed into `known`
                years = self.tenure_start_years[:, None] + np.arange(self.M)[None, :] / 12.0
                self.state.known = known - fx.tenure_per_log_year * np.log1p(years)
            try:
                alt = _logit(self._true_pd(loan_ids, months)["true_pd"].to_numpy())
            finally:
                self.fx, self.state.known = fx, known
            open_ = np.isfinite(base) & np.isfinite(alt)
            d = (base - alt)[open_]
            out[name] = float(np.abs(d - d.mean()).mean()) if len(d) else 0.0
        return out

    def _projected_log_surv(self, s: int, cum_events: dict[str, np.ndarray]) -> np.ndarray:
        """(n, W + 1): cumulative log P(no distress onset) over months s, s+1, ... as seen at s.

        Column j covers the onset months s .. s + j - 1 (column 0 is 0). cum_events: per event
        source, (n, M + 1) counts summed over the months before each month.
        """
        st, fx, n, W = self.state, self.fx, self.n, self.W
        j = np.arange(W)
        t = s + j
        # Intensities of the month before s: the month s ones already react to an onset at s.
        lam = dict(zip(_PROJECTED, st.lam[:, :, s - 1].astype(float), strict=True))

        def window(source: str, months: int) -> tuple[np.ndarray, np.ndarray]:
            """Events before s still inside [t - months, t), and the window's months after s."""
            c = cum_events[source]
            past = c[:, [s]] - c[:, np.clip(t - months, 0, s)]
            return past, np.minimum(j, months)[None, :]

        def any_event(past: np.ndarray, future_months: np.ndarray, rate: np.ndarray):
            return 1 - (past == 0) * np.exp(-rate[:, None] * future_months)

        rem_past, f3 = window("payment_reminder", 3)
        chk_past, _ = window("proactive_checkin", 3)
        res_past, f6 = window("resolved", 6)
        unres_past, _ = window("unresolved", 6)
        mkt_past, f12 = window("marketing", 12)
        lender_rate = (
            rem_past + chk_past + (lam["payment_reminder"] + lam["proactive_checkin"])[:, None] * f3
        ) / 3.0
        sat_s = st.sat[:, s].astype(float)
        sat = (
            self.sat_mean[:, None]
            + SAT_PERSISTENCE ** j[None, :] * (sat_s - self.sat_mean)[:, None]
        )
        edu = 1 - (1 - st.edu_ever[:, [s]]) * np.exp(-lam["financial_education"][:, None] * j)
        eta = (
            st.known[:, t].astype(float)
            + fx.satisfaction_per_sd * sat
            + fx.resolved_complaint_6m * any_event(res_past, f6, lam["complaint"] * P_RESOLVED)
            + fx.unresolved_complaint_6m
            * any_event(unres_past, f6, lam["complaint"] * (1 - P_RESOLVED))
            + fx.reminder_3m * any_event(rem_past, f3, lam["payment_reminder"])
            + fx.checkin_3m * any_event(chk_past, f3, lam["proactive_checkin"])
            + fx.fatigue_per_contact_above
            * np.maximum(0.0, lender_rate - fx.fatigue_threshold_per_month)
            + fx.financial_education * edu
            + fx.marketing * (mkt_past + lam["marketing"][:, None] * f12)
        )
        # Income shocks: the current one runs its known course; new ones start at the shock
        # rate once the customer is free of one and last a geometric number of months.
        k = st.shock_left[:, s].astype(int)
        current = (j[None, :] < k[:, None]).astype(float)
        in_new = np.zeros(n)
        p_shock = np.zeros((n, W))
        keep = 1 - 1 / SHOCK_MEAN_MONTHS
        for jj in range(W):
            p_shock[:, jj] = current[:, jj] + in_new
            free = 1 - current[:, jj] - in_new
            in_new = free * self._shock_rate(self.macro[s + jj]) + keep * in_new
        h = (1 - p_shock) * _sigmoid(eta) + p_shock * _sigmoid(eta + fx.income_shock)
        return np.concatenate([np.zeros((n, 1)), np.cumsum(np.log1p(-h), axis=1)], axis=1)

    def _truth(self, true_pd: pd.DataFrame, attribution: dict[str, float]) -> dict:
        fx = self.fx
        risky = "the lender contacts the customers it sees as risky (risk grade, late payments)"
        causal = {
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
                    risky + "; a reminded instalment is paid on time more "
                    "often, which hides the lateness",
                ),
            ),
            "proactive_checkin": _effect(
                fx.checkin_3m,
                "a proactive check-in in the last 3 months",
                ["checkins_3m"],
                lever="proactive_checkin",
                confounding=("opposite", risky),
            ),
            "contact_fatigue": _effect(
                fx.fatigue_per_contact_above,
                f"per lender contact a month above {fx.fatigue_threshold_per_month:g} "
                "(reminders + check-ins, last 3 months)",
                ["lender_contacts_per_month_3m"],
                threshold=fx.fatigue_threshold_per_month,
                confounding=("same", risky),
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
        for name, eff in causal.items():
            eff["attribution"] = attribution[name]
        effects = {
            **causal,
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
        return {
            "description": "Planted effects on the monthly distress hazard (log-odds). "
            "sign: +1 raises default, -1 lowers, 0 none. 'marker' effects are consequences "
            "of distress that precede default, not causes. attribution: the effect's "
            "mean |SHAP| in the oracle (how much switching it off moves the log-odds of the "
            "best PD knowable at a snapshot, centred). confounding: "
            "whether who gets the exposure biases its association with default the same way "
            "as the effect, the opposite way, or not at all.",
            "seed": self.seed,
            "n_customers": self.n,
            "months": self.M,
            "start": str(self.cfg.start),
            "window_months": self.W,
            "levers_forced": self.all_levers,
            "lever_months": list(self.lever_months) if self.lever_months else None,
            "confounding": "reminders and check-ins target customers the lender sees as risky "
            "(risk grade, late payments in the last 3 months)",
            "mean_true_pd": float(true_pd["true_pd"].mean()),
            "effects": effects,
            "hazard_terms": {k: v for k, v in vars(fx).items()},
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


def _categorical_draw(rng: np.random.Generator, logits: np.ndarray) -> np.ndarray:
    """One category index per row, from unnormalised log-probabilities (Gumbel-max)."""
    g = rng.gumbel(size=logits.shape)
    return np.argmax(logits + g, axis=1)


def book_summary(book: Book) -> dict:
    return {
        "customers": len(book.customers),
        "loans": len(book.loans),
        "repayments": len(book.repayments),
        "crm_interactions": len(book.crm_interactions),
        "mean_true_pd_12m": float(book.true_pd["true_pd"].mean()),
    }
