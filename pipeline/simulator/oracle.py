"""The oracle: the true PD of each loan at each snapshot, and each planted effect's size in it.

`Oracle.true_pd` gives, per loan and monthly snapshot s, P(90+ DPD in [s, s + W months)) from
the customer's state at s, integrating over what happens after s; `pd_given_path` gives it from
the hazards the simulation then drew. `Oracle.attributions` measures how much each planted
effect moves the oracle's log-odds (truth.json's `attribution`). The oracle is immutable: an
effect is switched off on a copy (`without`), never in place.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.simulator.draws import logit, sigmoid
from pipeline.simulator.dynamics import PROJECTED, History
from pipeline.simulator.population import Customers, Loans, joined_month, tenure_years
from pipeline.simulator.world import (
    EFFECT_TERMS,
    EVENT_TYPES,
    P_RESOLVED,
    SAT_PERSISTENCE,
    SHOCK_MEAN_MONTHS,
    Calendar,
    Effects,
    lever_weights,
    shock_rate,
)

# Months a loan can stay open after its last due month (a late last instalment).
OPEN_AFTER_LAST_DUE = 3


@dataclass(frozen=True)
class Oracle:
    """What the oracle knows of a finished simulation, and the hazard it projects with.

    window: the label's window W in months; known: (n, M) the hazard terms fixed in advance
    (the simulation's own, `history.state.known`, unless a fixed term is switched off).
    """

    cal: Calendar
    customers: Customers
    loans: Loans
    history: History
    fx: Effects
    window: int
    known: np.ndarray
    # (reminder, education) lever weights when the customers are a sample of the book (they
    # are normalised over the whole book, `simulator.sample`); None: from `customers`.
    weights: tuple[np.ndarray, np.ndarray] | None = None

    @classmethod
    def of(
        cls,
        cal: Calendar,
        customers: Customers,
        loans: Loans,
        history: History,
        fx: Effects,
        window: int,
        weights: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> Oracle:
        return cls(cal, customers, loans, history, fx, window, history.state.known, weights)

    def true_pd(self, loan_ids: np.ndarray, months: range | None = None) -> pd.DataFrame:
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
        W, M, n = self.window, self.cal.months, self.customers.n
        hist, ln = self.history, self.loans
        ms = self.cal.month_start.astype(np.int64)
        log_surv = np.concatenate(
            [np.zeros((n, 1)), np.cumsum(np.log1p(-hist.hazard), axis=1)], axis=1
        )
        lag = self.customers.lag[ln.cust]
        d = hist.distress[ln.cust]
        last_due = ln.orig + ln.term
        cust = ln.cust
        # Events per customer summed over months < k, for k = 0..M: each snapshot's windows
        # are differences of these, not sums redone per snapshot.
        ev = {t_name: hist.counts[i] for i, t_name in enumerate(EVENT_TYPES)}
        sources = {
            "payment_reminder": ev["payment_reminder"],
            "proactive_checkin": ev["proactive_checkin"],
            "resolved": hist.resolved,
            "unresolved": hist.unresolved,
            "marketing": ev["marketing"],
        }
        cum_events = {
            k: np.concatenate([np.zeros((n, 1)), np.cumsum(v, axis=1)], axis=1)
            for k, v in sources.items()
        }
        frames = []
        for s in months or range(1, M - W + 1):
            # A loan stays open past its last due month until that instalment is paid, up to
            # ~70 days late (emission): the features keep it as a row, so it gets a true PD.
            live = (ln.orig < s) & (last_due >= s - OPEN_AFTER_LAST_DUE)
            # Largest due month whose 90-DPD date falls before the window's end.
            limit = ms[s + W] - (ln.day - 1 + 90)
            k_max = np.searchsorted(ms[: M + 1], limit, side="left") - 1
            k_max = np.minimum(k_max, last_due)
            t_max = k_max - lag
            # Default already settled: the customer's distress began before s.
            settled = (d >= 0) & (d < s)
            k_def = np.maximum(d + lag, ln.orig + 1)
            d90 = ms[np.clip(k_def, 0, M)] + ln.day - 1 + 90
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
                        "snapshot_date": pd.Timestamp(self.cal.month_start[s]),
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

    def attributions(self, loan_ids: np.ndarray) -> dict[str, float]:
        """Per planted effect, how much the change of the oracle's log-odds when its hazard term
        is switched off varies across loans: mean |d - mean(d)| over quarterly snapshots whose
        outcome is still open. Centred like SHAP values (which share out the prediction minus
        its mean), so it is the effect's mean |SHAP| in the oracle: the explanation's truth
        check skips effects too small for any model to show."""
        months = range(1, self.cal.months - self.window + 1, 3)
        base = logit(self.true_pd(loan_ids, months)["true_pd"].to_numpy())
        out = {}
        for name, term in EFFECT_TERMS.items():
            alt = logit(self.without(term).true_pd(loan_ids, months)["true_pd"].to_numpy())
            open_ = np.isfinite(base) & np.isfinite(alt)
            d = (base - alt)[open_]
            out[name] = float(np.abs(d - d.mean()).mean()) if len(d) else 0.0
        return out

    def without(self, term: str) -> Oracle:
        """This oracle with the hazard term `term` (a field of Effects) switched off."""
        fx = dataclasses.replace(self.fx, **{term: 0.0})
        known = self.known
        if term == "tenure_per_log_year":  # a fixed term: it is already summed into `known`
            joined = joined_month(self.customers, self.loans)
            years = tenure_years(joined, np.arange(self.cal.months))
            known = known - self.fx.tenure_per_log_year * np.log1p(years)
        return dataclasses.replace(self, fx=fx, known=known)

    def _projected_log_surv(self, s: int, cum_events: dict[str, np.ndarray]) -> np.ndarray:
        """(n, W + 1): cumulative log P(no distress onset) over months s, s+1, ... as seen at s.

        Column j covers the onset months s .. s + j - 1 (column 0 is 0). cum_events: per event
        source, (n, M + 1) counts summed over the months before each month.
        """
        st, fx, n, W = self.history.state, self.fx, self.customers.n, self.window
        sat_mean = self.customers.sat_mean
        j = np.arange(W)
        t = s + j
        # Intensities of the month before s: the month s ones already react to an onset at s.
        lam = dict(zip(PROJECTED, st.lam[:, :, s - 1].astype(float), strict=True))

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
        sat = sat_mean[:, None] + SAT_PERSISTENCE ** j[None, :] * (sat_s - sat_mean)[:, None]
        edu = 1 - (1 - st.edu_ever[:, [s]]) * np.exp(-lam["financial_education"][:, None] * j)
        cus = self.customers
        w_rem, w_edu = self.weights or lever_weights(cus.will, cus.cap, cus.literacy, fx)
        eta = (
            self.known[:, t].astype(float)
            + fx.satisfaction_per_sd * sat
            + fx.resolved_complaint_6m * any_event(res_past, f6, lam["complaint"] * P_RESOLVED)
            + fx.unresolved_complaint_6m
            * any_event(unres_past, f6, lam["complaint"] * (1 - P_RESOLVED))
            + fx.reminder_3m * w_rem[:, None] * any_event(rem_past, f3, lam["payment_reminder"])
            + fx.checkin_3m * any_event(chk_past, f3, lam["proactive_checkin"])
            + fx.fatigue_per_contact_above
            * np.maximum(0.0, lender_rate - fx.fatigue_threshold_per_month)
            + fx.financial_education * w_edu[:, None] * edu
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
            in_new = free * shock_rate(self.customers.shock_prone, self.cal.macro[s + jj]) + (
                keep * in_new
            )
        h = (1 - p_shock) * sigmoid(eta) + p_shock * sigmoid(eta + fx.income_shock)
        return np.concatenate([np.zeros((n, 1)), np.cumsum(np.log1p(-h), axis=1)], axis=1)
