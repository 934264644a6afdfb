"""What a month of the simulation leaves in the data: CRM event rows and instalment rows.

`emit_events` turns the month's drawn event counts into events (time, channel, resolution,
surveys, whether an outbound contact was answered); `emit_payments` decides for each instalment
due whether, when and how much was paid. Both return columns as arrays, one dict per month;
`tables` assembles them into the contract's tables.
"""

from __future__ import annotations

import numpy as np

from pipeline.simulator.draws import categorical_draw, rng, sigmoid
from pipeline.simulator.population import Customers, Loans
from pipeline.simulator.sample import Sample
from pipeline.simulator.world import EVENT_TYPES, Calendar

_EVENT_COLUMNS = (
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
_SURVEYED_TYPES = ["service_request", "complaint", "proactive_checkin", "financial_education"]
_OUTBOUND_TYPES = ("payment_reminder", "proactive_checkin", "marketing")


def emit_events(
    seed: int,
    m: int,
    cal: Calendar,
    cus: Customers,
    due_day: np.ndarray,
    cnt: np.ndarray,
    resolved: np.ndarray,
    sat: np.ndarray,
    quiet: np.ndarray,
) -> dict[str, np.ndarray]:
    """The CRM events of month m: `cnt[t, i]` events of type t for customer i, the first
    `resolved[i]` of a customer's complaints resolved; satisfaction scores follow `sat`."""
    r = rng(seed, m, "emit")
    month_days = int((cal.month_start[m + 1] - cal.month_start[m]).astype(np.int64))
    cols: dict[str, list[np.ndarray]] = {k: [] for k in _EVENT_COLUMNS}
    for t, t_name in enumerate(EVENT_TYPES):
        c = cnt[t]
        cust = np.repeat(np.arange(cus.n), c)
        k = len(cust)
        if k == 0:
            continue
        secs = r.integers(0, month_days * 86400, k)
        if t_name == "payment_reminder":
            # Sent 1-7 days before the customer's due day.
            due = due_day[cust]
            secs = np.clip(
                (due - 1 - r.integers(1, 8, k)) * 86400 + r.integers(8 * 3600, 20 * 3600, k),
                0,
                month_days * 86400 - 1,
            )
        channel = _channel(r, t_name, cus.digital[cust])
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
        surveyed = (r.random(k) < 0.35) & np.isin(t_name, _SURVEYED_TYPES)
        s_val = np.clip(np.round(3.4 + 0.9 * sat[cust] + 0.6 * r.standard_normal(k)), 1, 5)
        n_val = np.clip(np.round(6.8 + 1.6 * sat[cust] + 1.2 * r.standard_normal(k)), 0, 10)
        has_nps = surveyed & (r.random(k) < 0.6)
        outbound = t_name in _OUTBOUND_TYPES
        answered = np.where(
            outbound,
            r.random(k) < sigmoid(0.6 + 0.7 * cus.will[cust] - 1.6 * quiet[cust]),
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


def emit_payments(
    seed: int,
    m: int,
    cal: Calendar,
    cus: Customers,
    loans: Loans,
    due_loan: np.ndarray,
    distress: np.ndarray,
    shock: np.ndarray,
    reminded: np.ndarray,
    sample: Sample | None = None,
) -> dict[str, np.ndarray]:
    """The instalments due in month m (loans where `due_loan`): a customer `lag` months into
    distress pays nothing; before that, late and partial payments follow the traits, shocks,
    distress and reminders; late ones are cured within ~70 days.
    sample: `cus` and `loans` are this sample of the book: the uniforms are drawn for every
    instalment of the whole book due in month m and indexed to the sample's."""
    loan_idx = np.flatnonzero(due_loan)
    cust = loans.cust[loan_idx]
    r = rng(seed, m, "pay")
    k = len(loan_idx)
    if sample is None:
        u_late, u_days, u_part, u_partamt, u_early = (r.random(k) for _ in range(5))
    else:
        k_full, pos = sample.due_positions(m, loan_idx)
        u_late, u_days, u_part, u_partamt, u_early = (r.random(k_full)[pos] for _ in range(5))
    d = distress[cust]
    terminal = (d >= 0) & (m >= d + cus.lag[cust])
    pre_default = (d >= 0) & ~terminal
    p_late = sigmoid(
        -3.3
        - 1.0 * cus.cap[cust]
        - 1.2 * cus.will[cust]
        + 1.6 * shock[cust]
        + 5.0 * pre_default
        - 0.6 * reminded[cust]
        + 0.15 * cal.season(m)
    )
    late = (u_late < p_late) & ~terminal
    # Late payments are cured within ~70 days: truncated geometric in days.
    days_late = np.where(late, 3 + np.floor(-np.log1p(-u_days * 0.999) * 14).clip(0, 67), 0)
    early = np.where(late, 0, np.floor(u_early * 6))
    partial = ~terminal & (u_part < 0.02 + 0.2 * shock[cust] + 0.5 * pre_default)
    inst = m - loans.orig[loan_idx]
    return {
        "loan": loan_idx,
        "inst": inst,
        "month": np.full(k, m),
        "paid": ~terminal,
        "offset_days": (days_late - early).astype(np.int64),
        "partial_share": np.where(partial, 0.3 + 0.6 * u_partamt, 1.0),
        "late": late,
    }


def _channel(r: np.random.Generator, t_name: str, dig: np.ndarray) -> np.ndarray:
    """Channel codes (index into the contract's CRM channels: phone, app, branch, email, chat,
    sms) for events of type `t_name` to customers of digital propensity `dig`."""
    k = len(dig)
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
    return categorical_draw(r, np.log(w + 1e-12)).astype(np.int8)
