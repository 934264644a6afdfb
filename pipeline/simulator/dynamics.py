"""The monthly dynamics: each month's distress hazard, income shocks, CRM events and payments.

`run_months` steps through the book's months and returns the `History`: the hazards drawn,
when each customer entered distress, the CRM event counts, and per month the `MonthlyState`
the oracle projects forward from, plus the event and instalment rows (see `emission`). A
distressed customer goes quiet, pays late and part, and stops paying after a lag.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from pipeline.simulator.draws import (
    binomial_from_uniform,
    poisson_from_uniform,
    recent,
    rng,
    sigmoid,
)
from pipeline.simulator.emission import emit_events, emit_payments
from pipeline.simulator.population import (
    Customers,
    Loans,
    broker_customers,
    customer_due_day,
    joined_month,
    seasoning,
    tenure_years,
)
from pipeline.simulator.sample import Sample
from pipeline.simulator.world import (
    EVENT_INDEX,
    EVENT_TYPES,
    P_RESOLVED,
    REGION_DOWNTURN_SENSITIVITY,
    SAT_PERSISTENCE,
    SHOCK_MEAN_MONTHS,
    Calendar,
    Effects,
    lever_weights,
    shock_rate,
)

# CRM intensities the state-based oracle projects forward (order of `MonthlyState.lam`).
PROJECTED = (
    "payment_reminder",
    "proactive_checkin",
    "complaint",
    "financial_education",
    "marketing",
)
# Levers that force a CRM event type (complaint_resolution acts on the complaints instead).
_EVENT_LEVERS = ("proactive_checkin", "payment_reminder", "financial_education", "marketing")


@dataclass
class MonthlyState:
    """What each customer's hazard was made of at the start of each month (arrays n x M).

    known: the hazard terms fixed in advance (traits, economy, age, season, the loan plan);
    sat: latent satisfaction; shock_left: months of income shock left; edu_ever: attended a
    financial-education session before the month; lam: CRM intensities of `PROJECTED`.
    """

    known: np.ndarray
    sat: np.ndarray
    shock_left: np.ndarray
    edu_ever: np.ndarray
    lam: np.ndarray

    @classmethod
    def empty(cls, n: int, months: int) -> MonthlyState:
        return cls(
            known=np.zeros((n, months), dtype=np.float32),
            sat=np.zeros((n, months), dtype=np.float32),
            shock_left=np.zeros((n, months), dtype=np.int16),
            edu_ever=np.zeros((n, months), dtype=bool),
            lam=np.zeros((len(PROJECTED), n, months), dtype=np.float32),
        )


@dataclass(frozen=True)
class History:
    """What the simulation drew, month by month.

    hazard: (n, M) the monthly distress hazard; distress: (n,) month of distress onset, -1 =
    never; counts: (event type, n, M) CRM events; resolved / unresolved: (n, M) complaints;
    events / payments: per month, the columns `emit_events` / `emit_payments` return.
    """

    hazard: np.ndarray
    distress: np.ndarray
    state: MonthlyState
    counts: np.ndarray
    resolved: np.ndarray
    unresolved: np.ndarray
    events: list[dict[str, np.ndarray]]
    payments: list[dict[str, np.ndarray]]


def run_months(
    seed: int,
    cal: Calendar,
    customers: Customers,
    loans: Loans,
    fx: Effects,
    levers: dict[str, bool | np.ndarray],
    lever_months: tuple[int, int] | None,
    stop: int | None = None,
    emit_rows: bool = True,
    sample: Sample | None = None,
) -> History:
    """Simulate every month of the book, forcing `levers` in `lever_months` (None: all).

    A lever's value is True (on for everybody), False (off for everybody) or a boolean mask over
    the customers (on for those, the others as drawn): a contact policy targets some customers.

    stop: simulate months [0, stop) only (the arrays keep every month, zero after it): a
    counterfactual run needs no month after its snapshot's outcome window, and each month's
    draws come from their own streams, so the months simulated are the full run's.
    emit_rows: False skips the CRM event rows (`History.events` stays empty): only the tables
    read them, and their draws have streams of their own, so nothing else changes.
    sample: `customers` and `loans` are this sample of the book (`sample.sample_population`):
        every draw is made at the whole book's size and indexed to the sample, so the sample's
        months are the whole run's (needs emit_rows False: the event rows are not sampled).
    """
    run = MonthLoop(seed, cal, customers, loans, fx, emit_rows, sample)
    run.advance(levers, lever_months, cal.months if stop is None else min(stop, cal.months))
    return run.history()


class MonthLoop:
    """The monthly loop of `run_months`, resumable: `advance` simulates the months from where
    the loop stands, and `fork` copies it, so counterfactual runs that differ only from some
    month on (a lever forced in a window) simulate the months before it once."""

    def __init__(
        self,
        seed: int,
        cal: Calendar,
        customers: Customers,
        loans: Loans,
        fx: Effects,
        emit_rows: bool = True,
        sample: Sample | None = None,
    ):
        if sample is not None and emit_rows:
            raise ValueError("a sample of the book simulates no event rows: pass emit_rows=False")
        n, M = customers.n, cal.months
        self.seed, self.cal, self.customers, self.loans, self.fx = seed, cal, customers, loans, fx
        self.emit_rows, self.sample = emit_rows, sample
        self.month = 0  # the next month to simulate
        self.counts = np.zeros((len(EVENT_TYPES), n, M), dtype=np.int32)  # type, customer, month
        self.resolved_cnt = np.zeros((n, M), dtype=np.int32)
        self.unresolved_cnt = np.zeros((n, M), dtype=np.int32)
        self.late_cnt = np.zeros((n, M), dtype=np.int32)
        self.hazard = np.zeros((n, M))
        self.distress = np.full(n, -1)  # month of distress onset, -1 = never
        self.shock_left = np.zeros(n, dtype=np.int32)
        self.sat = customers.sat_mean.copy()
        self.edu_ever = np.zeros(n, dtype=bool)
        self.events: list[dict[str, np.ndarray]] = []
        self.pays: list[dict[str, np.ndarray]] = []
        self.state = MonthlyState.empty(n, M)
        self.broker = broker_customers(loans, n)
        self.due_day = customer_due_day(loans, n)
        self.joined = joined_month(customers, loans)
        if sample is None:
            self.w_rem, self.w_edu = lever_weights(
                customers.will, customers.cap, customers.literacy, fx
            )
        else:
            self.w_rem, self.w_edu = sample.rem_weight, sample.edu_weight

    def fork(self) -> MonthLoop:
        """An independent copy: advancing it leaves this loop as it is."""
        other = copy.copy(self)
        for name in (
            "counts",
            "resolved_cnt",
            "unresolved_cnt",
            "late_cnt",
            "hazard",
            "distress",
            "shock_left",
            "sat",
            "edu_ever",
        ):
            setattr(other, name, getattr(self, name).copy())
        other.state = MonthlyState(**{k: v.copy() for k, v in vars(self.state).items()})
        other.events, other.pays = list(self.events), list(self.pays)
        return other

    def advance(
        self,
        levers: dict[str, bool | np.ndarray],
        lever_months: tuple[int, int] | None,
        stop: int,
    ) -> None:
        """Simulate months [self.month, stop), forcing `levers` in `lever_months` (None: all)."""
        seed, cal, customers, loans, fx = self.seed, self.cal, self.customers, self.loans, self.fx
        sample, emit_rows = self.sample, self.emit_rows
        n = customers.n
        # Draws are made for the whole book and indexed to the sample (see `run_months`).
        n_draw = n if sample is None else sample.n_full
        pick = (lambda a: a) if sample is None else sample.pick
        T = len(EVENT_TYPES)
        idx = EVENT_INDEX
        counts, resolved_cnt, unresolved_cnt = self.counts, self.resolved_cnt, self.unresolved_cnt
        late_cnt, hazard, distress, state = self.late_cnt, self.hazard, self.distress, self.state
        shock_left, sat, edu_ever = self.shock_left, self.sat, self.edu_ever
        events, pays = self.events, self.pays
        broker, due_day, joined = self.broker, self.due_day, self.joined
        w_rem, w_edu = self.w_rem, self.w_edu

        for m in range(self.month, stop):
            in_window = lever_months is None or (lever_months[0] <= m < lever_months[1])
            forced = levers if in_window else {}
            active_loan = (loans.orig <= m) & (m <= loans.orig + loans.term)
            due_loan = (loans.orig < m) & (m <= loans.orig + loans.term)
            has_loan = np.bincount(loans.cust[active_loan], minlength=n) > 0
            loan_dti = (
                np.bincount(loans.cust[active_loan], loans.payment[active_loan] * 12, n)
                / customers.income
            )

            rem3 = recent(counts[idx["payment_reminder"]], m, 3)
            chk3 = recent(counts[idx["proactive_checkin"]], m, 3)
            lender_rate = (rem3 + chk3) / 3.0
            res6 = recent(resolved_cnt, m, 6)
            unres6 = recent(unresolved_cnt, m, 6)
            late3 = recent(late_cnt, m, 3)
            shock = shock_left > 0
            # Monthly distress hazard: the planted truth (see truth.json). `known` holds the terms
            # fixed in advance (traits, economy, age, season, the loan plan); the state-based
            # oracle projects the rest forward from each snapshot.
            seasoned, tenure = seasoning(loans, n, m), tenure_years(joined, m)
            known = _known_terms(fx, cal, customers, m, loan_dti, seasoned, broker, tenure)
            eta = (
                known
                + fx.income_shock * shock
                + fx.satisfaction_per_sd * sat
                + fx.resolved_complaint_6m * (res6 > 0)
                + fx.unresolved_complaint_6m * (unres6 > 0)
                + fx.reminder_3m * w_rem * (rem3 > 0)
                + fx.checkin_3m * (chk3 > 0)
                + fx.fatigue_per_contact_above
                * np.maximum(0.0, lender_rate - fx.fatigue_threshold_per_month)
                + fx.financial_education * w_edu * edu_ever
                + fx.marketing * recent(counts[idx["marketing"]], m, 12)
            )
            h = sigmoid(eta)
            hazard[:, m] = h
            state.known[:, m] = known
            state.sat[:, m] = sat
            state.shock_left[:, m] = shock_left
            state.edu_ever[:, m] = edu_ever
            u = pick(rng(seed, m, "onset").random(n_draw))
            onset = (distress < 0) & has_loan & (u < h)
            distress[onset] = m
            in_distress = distress >= 0
            quiet = in_distress  # a distressed customer goes quiet: the early-warning signal

            # Income shocks: more frequent in the downturn.
            r = rng(seed, m, "shock")
            new_shock = (shock_left == 0) & (
                pick(r.random(n_draw)) < shock_rate(customers.shock_prone, cal.macro[m])
            )
            shock_left = np.maximum(shock_left - 1, 0)
            shock_left[new_shock] = pick(r.geometric(1 / SHOCK_MEAN_MONTHS, n_draw))[new_shock]

            # CRM events this month: drawn at their intensities, then the levers forced.
            alive = has_loan
            lam = _crm_intensities(customers, sat, quiet, late3, shock, in_distress) * alive
            # Marketing goes to everyone on the lender's list every month, prospects included:
            # sent only to borrowers (or only from joining), its 12-month count would measure how
            # long a customer had been with the lender (newcomers, riskier, get fewer), and the
            # planted null would look protective. So only the customer's lasting intensity varies.
            lam[idx["marketing"]] = customers.marketing_rate
            state.lam[:, :, m] = lam[[idx[t] for t in PROJECTED]]
            cnt = np.zeros((T, n), dtype=np.int32)
            for t_name, t in idx.items():
                u_ev = pick(rng(seed, m, "ev_" + t_name).random(n_draw))
                cnt[t] = poisson_from_uniform(u_ev, lam[t])
            _apply_levers(cnt, forced, alive)
            counts[:, :, m] = cnt

            # Complaints: resolved or not; satisfaction reacts.
            r = rng(seed, m, "complaint")
            n_c = cnt[idx["complaint"]]
            resolve = forced.get("complaint_resolution")
            drawn = resolve is None or isinstance(resolve, np.ndarray)
            p_res = P_RESOLVED if drawn else float(resolve)
            res = binomial_from_uniform(pick(r.random(n_draw)), n_c, p_res).astype(np.int32)
            if isinstance(resolve, np.ndarray):
                # Overridden after the draw, so the other customers keep theirs (same stream).
                res = np.where(resolve, n_c, res)
            resolved_cnt[:, m] = res
            unresolved_cnt[:, m] = n_c - res
            sat = (
                SAT_PERSISTENCE * sat
                + (1 - SAT_PERSISTENCE) * customers.sat_mean
                + 0.15 * pick(rng(seed, m, "sat").standard_normal(n_draw))
                - 0.6 * (n_c - res > 0)
                + 0.25 * (res > 0)
            )
            edu_ever |= cnt[idx["financial_education"]] > 0

            if emit_rows:
                events.append(emit_events(seed, m, cal, customers, due_day, cnt, res, sat, quiet))

            # Instalments due this month.
            reminded = cnt[idx["payment_reminder"]] > 0
            p = emit_payments(
                seed, m, cal, customers, loans, due_loan, distress, shock, reminded, sample
            )
            pays.append(p)
            np.add.at(late_cnt[:, m], loans.cust[p["loan"]], p["late"].astype(np.int32))

        # rebound in the loop (the other arrays are updated in place)
        self.shock_left, self.sat = shock_left, sat
        self.month = max(self.month, stop)

    def history(self) -> History:
        return History(
            hazard=self.hazard,
            distress=self.distress,
            state=self.state,
            counts=self.counts,
            resolved=self.resolved_cnt,
            unresolved=self.unresolved_cnt,
            events=self.events,
            payments=self.pays,
        )


def _known_terms(
    fx: Effects,
    cal: Calendar,
    cus: Customers,
    m: int,
    loan_dti: np.ndarray,
    seasoned: np.ndarray,
    broker: np.ndarray,
    tenure: np.ndarray,
) -> np.ndarray:
    """The hazard terms fixed in advance: traits, economy, age, season, tenure (years with the
    lender at month m), the loan plan."""
    return (
        fx.intercept
        + fx.capacity * cus.cap
        + fx.willingness * cus.will
        + fx.downturn * cal.macro[m] * np.array(REGION_DOWNTURN_SENSITIVITY)[cus.region]
        + fx.downturn_self_employed * cal.macro[m] * np.isin(cus.employment, (1, 2))
        + fx.young_borrower * (cus.age + m / 12 < 26)
        + fx.age_curvature * (cus.age + m / 12 - 45) ** 2
        + fx.seasoning * seasoned
        + fx.season_january * cal.season(m)
        + fx.tenure_per_log_year * np.log1p(tenure)
        + fx.debt_to_income_above * np.clip(loan_dti - fx.debt_to_income_threshold, 0, 1)
        + fx.broker_channel * broker
    )


def _crm_intensities(
    cus: Customers,
    sat: np.ndarray,
    quiet: np.ndarray,
    late3: np.ndarray,
    shock: np.ndarray,
    in_distress: np.ndarray,
) -> np.ndarray:
    """(event type, n) expected CRM events this month, before the no-loan customers drop out.

    The lender contacts the customers it sees as risky (grade, recent late payments) more.
    """
    idx = EVENT_INDEX
    lam = np.zeros((len(EVENT_TYPES), cus.n))
    lam[idx["service_request"]] = 0.28 * (1 - 0.75 * quiet) * (0.6 + cus.digital)
    lam[idx["complaint"]] = 0.035 * (1 + 0.8 * (sat < -1.0)) * (1 - 0.5 * quiet)
    risky_seen = sigmoid(-1.6 * cus.grade - 1.2) + 0.45 * np.minimum(late3, 2)
    lam[idx["payment_reminder"]] = 0.06 + 0.9 * risky_seen
    lam[idx["proactive_checkin"]] = 0.03 + 0.35 * risky_seen
    lam[idx["financial_education"]] = 0.012 * (1 + 1.5 * sigmoid(1.5 * cus.will))
    lam[idx["hardship_request"]] = 0.004 + 0.12 * shock + 0.15 * in_distress
    lam[idx["marketing"]] = cus.marketing_rate
    return lam


def _apply_levers(cnt: np.ndarray, forced: dict[str, bool | np.ndarray], alive: np.ndarray) -> None:
    """Force the event levers in `cnt` in place: at least one event for every customer with a
    loan (True; a mask: for those of its customers) or none (False)."""
    for lever in _EVENT_LEVERS:
        f = forced.get(lever)
        if isinstance(f, np.ndarray):
            on = (alive & f).astype(np.int32)
            cnt[EVENT_INDEX[lever]] = np.maximum(cnt[EVENT_INDEX[lever]], on)
        elif f is True:
            cnt[EVENT_INDEX[lever]] = np.maximum(cnt[EVENT_INDEX[lever]], alive.astype(np.int32))
        elif f is False:
            cnt[EVENT_INDEX[lever]] = 0
