"""A slow pandas implementation of the feature definitions (pipeline/features/__init__.py).

It follows the definitions literally, one snapshot at a time with boolean masks over the whole
tables, and shares no code with the DuckDB engine, so the tests can compare the two. Money is
rounded to whole cents half away from zero, as DuckDB's round() does, so that the two agree to
the last bit where the definitions accumulate cents.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from pipeline.core.contract import CRM_CHANNELS
from pipeline.features.specs import CHANNEL_WINDOWS, WINDOWS, feature_names

DAY = pd.Timedelta(days=1)
MONTH_DAYS = 30.4375
LENDER_TYPES = ("payment_reminder", "proactive_checkin", "marketing")


def reference_features(
    tables: dict[str, pd.DataFrame],
    snapshots: list[dt.date],
    default_dpd: int = 90,
    window_months: int = 12,
    income_step: float = 100.0,
) -> pd.DataFrame:
    """The matrix for `snapshots`: same rows, columns and order as `build_features`
    (income_step: features.income_rounding)."""
    cust = tables["customers"].set_index("customer_id")
    loans = tables["loans"].copy()
    loans["orig"] = loans["origination_date"].dt.normalize()
    loans["monthly_payment"] = [
        _annuity(p, r, n)
        for p, r, n in zip(loans.principal, loans.interest_rate, loans.term_months, strict=True)
    ]
    rep = tables["repayments"].merge(
        loans[["loan_id", "customer_id", "term_months", "interest_rate"]], on="loan_id"
    )
    rep["due"] = rep["due_date"].dt.normalize()
    rep["paid"] = rep["paid_date"].dt.normalize()
    crm = tables["crm_interactions"].copy()
    for col in ("type", "channel", "direction"):  # speed only: str compares are slow in pandas
        if col in crm:
            crm[col] = crm[col].astype("category")
    rep["reminded"] = _reminded(rep, crm)
    crm["day"] = crm["timestamp"].dt.normalize()
    # the last observed event (payment or contact); scheduled due dates do not date the book
    data_end = max(rep["paid"].max(), crm["day"].max()) + DAY
    rows = [
        _snapshot(
            pd.Timestamp(s),
            loans,
            rep,
            crm,
            cust,
            data_end,
            default_dpd,
            window_months,
            income_step,
        )
        for s in sorted(snapshots)
    ]
    out = pd.concat([r for r in rows if len(r)], ignore_index=True)
    return out[["loan_id", "customer_id", "snapshot_date", "label", *feature_names()]]


def _snapshot(s, loans, rep, crm, cust, data_end, dpd, window, income_step) -> pd.DataFrame:
    # -- which loans are rows ---------------------------------------------------------------
    paid_before = rep["paid"].notna() & (rep["paid"] < s)
    default_day = rep["due"] + dpd * DAY
    unpaid_at_default = rep["paid"].isna() | (rep["paid"] > default_day)
    defaulted = rep.loc[(default_day < s) & unpaid_at_default, "loan_id"].unique()
    in_term = rep["installment_no"].between(1, rep["term_months"])
    n_paid = rep[paid_before & in_term].groupby("loan_id").size()
    closed = n_paid.index[
        n_paid.to_numpy() >= loans.set_index("loan_id").loc[n_paid.index, "term_months"].to_numpy()
    ]
    held = loans[(loans["orig"] < s) & ~loans["loan_id"].isin(closed)]
    active = held[~held["loan_id"].isin(defaulted)].sort_values("loan_id")
    if active.empty:
        return pd.DataFrame()
    hi = s + pd.DateOffset(months=window)
    out = pd.DataFrame(
        {"loan_id": active["loan_id"].to_numpy(), "customer_id": active["customer_id"].to_numpy()}
    )
    out["snapshot_date"] = s
    in_window = (default_day >= s) & (default_day < hi) & unpaid_at_default
    bad = set(rep.loc[in_window, "loan_id"])
    out["label"] = pd.array(
        [pd.NA if hi > data_end else int(x in bad) for x in out["loan_id"]], dtype="Int8"
    )

    # -- repayment ------------------------------------------------------------------------
    r = rep[rep["loan_id"].isin(active["loan_id"])].copy()
    r_paid = r["paid"].notna() & (r["paid"] < s)
    r_due = r["due"] < s
    r["delay"] = np.where(
        r_paid, (r["paid"] - r["due"]).dt.days.clip(lower=0), (s - r["due"]).dt.days
    )
    r["late"] = r_due & (r["paid"].isna() | (r["paid"] > r["due"]))
    key = out["loan_id"]

    def per_loan(mask: pd.Series, col: str, how: str, fill: float = np.nan) -> np.ndarray:
        g = r.loc[mask, col].groupby(r.loc[mask, "loan_id"]).agg(how)
        return key.map(g).fillna(fill).to_numpy(dtype=float)

    unsettled = r_due & ~r_paid
    r["since_due"] = (s - r["due"]).dt.days
    out["dpd_now"] = per_loan(unsettled, "since_due", "max", 0)
    for w in WINDOWS:
        win = r_due & (r["due"] >= s - pd.DateOffset(months=w))
        out[f"dpd_max_{w}m"] = per_loan(win, "delay", "max", 0)
    for w in WINDOWS:
        win = r_due & (r["due"] >= s - pd.DateOffset(months=w))
        out[f"dpd_mean_{w}m"] = per_loan(win, "delay", "mean", 0)
    for w in WINDOWS:
        win = r_due & (r["due"] >= s - pd.DateOffset(months=w))
        out[f"late_instalments_{w}m"] = per_loan(win & r["late"], "late", "size", 0)
    w12 = r_due & (r["due"] >= s - pd.DateOffset(months=12))
    r["due_c"] = _cents(r["amount_due"])
    r["paid_c"] = np.where(r_paid, _cents(r["amount_paid"]), 0)
    out["partial_payments_12m"] = per_loan(
        w12 & r_paid & (r["paid_c"] < r["due_c"]), "late", "size", 0
    )
    out["paid_to_due_ratio_12m"] = per_loan(w12, "paid_c", "sum") / per_loan(w12, "due_c", "sum")
    # the last day with DPD > 0: the late payment's date, or s while still unpaid
    r["last_late_day"] = r["paid"].where(r_paid, s)
    last = r[r["late"]].groupby("loan_id")["last_late_day"].max().reindex(key.to_numpy())
    out["months_since_last_delinquency"] = np.where(
        out["dpd_now"] > 0, 0.0, (s - last).dt.days.to_numpy(dtype=float) / MONTH_DAYS
    )
    out["dpd_max_ever"] = per_loan(r_due, "delay", "max", 0)
    v = 1.0 / (1.0 + r["interest_rate"] / 12.0)
    share = v ** (r["term_months"] - r["installment_no"] + 1)
    r["prin_c"] = np.where(r_paid, _cents(r["amount_paid"] * share), 0)
    lo = active.set_index("loan_id").loc[key]
    balance = np.maximum(
        lo["principal"].to_numpy() - per_loan(r_paid, "prin_c", "sum", 0) / 100.0, 0.0
    )
    out["outstanding_balance"] = balance
    out["balance_share_of_principal"] = balance / lo["principal"].to_numpy()
    out["loan_age_months"] = (s - lo["orig"]).dt.days.to_numpy() / MONTH_DAYS
    n_due = per_loan(r_due, "late", "size", 0)
    out["remaining_term_months"] = np.maximum(lo["term_months"].to_numpy() - n_due, 0).astype(float)
    out["instalments_due_so_far"] = n_due
    rem = w12 & r["reminded"]
    reminded_ok = per_loan(rem & (r["paid"] <= r["due"]), "late", "size", 0)
    reminded_n = per_loan(rem, "late", "size", 0)

    # -- relationship -------------------------------------------------------------------------
    c_ids = out["customer_id"]
    ev = crm[crm["timestamp"] < s]
    ev12 = ev[ev["timestamp"] >= s - pd.DateOffset(months=12)]
    in3 = ev12["timestamp"] >= s - pd.DateOffset(months=3)
    in6 = ev12["timestamp"] >= s - pd.DateOffset(months=6)

    def count(mask: pd.Series, frame: pd.DataFrame = ev12) -> np.ndarray:
        g = frame.loc[mask, "customer_id"].value_counts()
        return c_ids.map(g).fillna(0).to_numpy(dtype=float)

    def is_type(t: str) -> pd.Series:
        return ev12["type"] == t

    out["tenure_months"] = (
        s - cust.loc[c_ids, "customer_since"].dt.normalize()
    ).dt.days.to_numpy() / MONTH_DAYS
    every = pd.Series(True, index=ev12.index)
    out["contacts_per_month_3m"] = count(in3) / 3
    out["contacts_per_month_6m"] = count(in6) / 6
    out["contacts_per_month_12m"] = count(every) / 12
    for ch in CRM_CHANNELS:
        for w in CHANNEL_WINDOWS:
            m = (ev12["channel"] == ch) & (in3 if w == 3 else every)
            out[f"contacts_{ch}_per_month_{w}m"] = count(m) / w
    out["reminders_3m"] = count(is_type("payment_reminder") & in3)
    out["reminders_paid_on_time_share_12m"] = np.where(
        reminded_n > 0, reminded_ok / np.where(reminded_n > 0, reminded_n, 1), np.nan
    )
    out["checkins_3m"] = count(is_type("proactive_checkin") & in3)
    out["checkins_12m"] = count(is_type("proactive_checkin"))
    out["lender_contacts_per_month_3m"] = (out["reminders_3m"] + out["checkins_3m"]) / 3
    complaint = is_type("complaint")
    days_us = np.round(ev12["resolution_days"].fillna(0).to_numpy() * 86400e6).astype("int64")
    resolved_at = ev12["timestamp"] + pd.to_timedelta(days_us, unit="us")
    res = ev12["resolved"].fillna(False).astype(bool) & (resolved_at < s)
    out["complaints_3m"] = count(complaint & in3)
    out["complaints_12m"] = count(complaint)
    out["complaints_resolved_6m"] = count(complaint & in6 & res)
    out["complaints_unresolved_6m"] = count(complaint & in6) - out["complaints_resolved_6m"]
    n_c = count(complaint)
    out["complaint_resolution_rate_12m"] = np.where(
        n_c > 0, count(complaint & res) / np.where(n_c > 0, n_c, 1), np.nan
    )
    med = ev12[complaint & res].groupby("customer_id")["resolution_days"].median()
    out["complaint_resolution_days_median_12m"] = c_ids.map(med).to_numpy(dtype=float)
    out["service_requests_12m"] = count(is_type("service_request"))
    rated = ev[ev["satisfaction"].notna()].sort_values(["timestamp", "interaction_id"])
    out["satisfaction_last"] = c_ids.map(
        rated.groupby("customer_id")["satisfaction"].last()
    ).to_numpy(dtype=float)
    out["satisfaction_mean_12m"] = _mean(ev12, "satisfaction", c_ids)
    out["satisfaction_trend_12m"] = _slope(ev12, c_ids, s)
    answered_nps = ev[ev["nps"].notna()].sort_values(["timestamp", "interaction_id"])
    out["nps_last"] = c_ids.map(answered_nps.groupby("customer_id")["nps"].last()).to_numpy(
        dtype=float
    )
    out["nps_mean_12m"] = _mean(ev12, "nps", c_ids)
    out["fin_edu_sessions_total"] = count(ev["type"] == "financial_education", ev)
    out["hardship_requests_3m"] = count(is_type("hardship_request") & in3)
    out["hardship_requests_12m"] = count(is_type("hardship_request"))
    out["marketing_contacts_12m"] = count(is_type("marketing"))
    out["products_held"] = c_ids.map(held.groupby("customer_id").size()).to_numpy(dtype=float)
    out["channel_diversity_12m"] = (
        c_ids.map(ev12.groupby("customer_id")["channel"].nunique()).fillna(0).to_numpy(dtype=float)
    )
    own = ~ev12["type"].isin(LENDER_TYPES)
    n3, n9 = count(own & in3), count(own & ~in3)
    out["activity_change_3m_vs_9m"] = np.where(
        n9 > 0, 3.0 * n3 / np.where(n9 > 0, n9, 1) - 1, np.nan
    )
    last_day = ev.groupby("customer_id")["day"].max()
    out["days_since_last_contact"] = (s - last_day.reindex(c_ids.to_numpy())).dt.days.to_numpy(
        dtype=float
    )
    if "answered" in ev12:
        known = ev12["answered"].notna()
        if "direction" in ev12:
            known &= ev12["direction"] == "outbound"
        yes = known & ev12["answered"].fillna(False).astype(bool)
        n_known = count(known)
        out["answered_share_12m"] = np.where(
            n_known > 0, count(yes) / np.where(n_known > 0, n_known, 1), np.nan
        )
    else:
        out["answered_share_12m"] = np.nan

    # -- customer and loan --------------------------------------------------------------------
    income = cust.loc[c_ids, "annual_income"].to_numpy(dtype=float)
    mp_c = active.assign(c=_cents(active["monthly_payment"])).groupby("customer_id")["c"].sum()
    debt = c_ids.map(mp_c).to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["debt_to_income"] = np.where(income == 0, np.nan, debt / 100.0 * 12 / income)
    out["annual_income"] = (
        np.floor(income / income_step + 0.5) * income_step if income_step > 0 else income
    )
    birth = cust.loc[c_ids, "birth_year"].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    out["customer_age_years"] = s.year - birth
    out["monthly_payment"] = lo["monthly_payment"].to_numpy()
    out["principal"] = lo["principal"].to_numpy()
    out["interest_rate"] = lo["interest_rate"].to_numpy()
    out["term_months"] = lo["term_months"].to_numpy(dtype=float)
    out["product"] = lo["product"].to_numpy()
    out["employment_type"] = cust.loc[c_ids, "employment_type"].to_numpy()
    out["region"] = cust.loc[c_ids, "region"].to_numpy()
    out["loan_channel"] = lo["channel"].to_numpy()
    return out


def _reminded(rep: pd.DataFrame, crm: pd.DataFrame) -> pd.Series:
    """True where the customer got a payment reminder with timestamp in [due - 10 days, due)."""
    rem = crm.loc[crm["type"] == "payment_reminder", ["customer_id", "timestamp"]]
    pairs = rep[["customer_id", "due"]].reset_index().merge(rem, on="customer_id")
    hit = (pairs["timestamp"] >= pairs["due"] - 10 * DAY) & (pairs["timestamp"] < pairs["due"])
    return rep.index.isin(pairs.loc[hit, "index"])


def _mean(ev12: pd.DataFrame, col: str, c_ids: pd.Series) -> np.ndarray:
    vals = ev12[ev12[col].notna()].groupby("customer_id")[col].agg(["sum", "count"])
    return (c_ids.map(vals["sum"]) / c_ids.map(vals["count"])).to_numpy(dtype=float)


def _slope(ev12: pd.DataFrame, c_ids: pd.Series, s: pd.Timestamp) -> np.ndarray:
    """OLS slope of satisfaction on day (days relative to s) x 30.4375: points per month. Exact
    integer sums, as the engine does; NaN unless two ratings on different days."""
    e = ev12[ev12["satisfaction"].notna()]
    x = (e["day"] - s).dt.days.to_numpy(dtype="int64")
    y = e["satisfaction"].to_numpy(dtype="int64")
    sums = (
        pd.DataFrame(
            {"n": 1, "x": x, "y": y, "xx": x * x, "xy": x * y}, index=e["customer_id"].to_numpy()
        )
        .groupby(level=0)
        .sum()
    )
    g = sums.reindex(c_ids.to_numpy()).fillna(0).astype("int64")
    den = g["n"] * g["xx"] - g["x"] ** 2
    num = g["n"] * g["xy"] - g["x"] * g["y"]
    ok = (g["n"] >= 2) & (den > 0)
    out = num.astype(float) / den.where(ok, 1).astype(float) * MONTH_DAYS
    return np.where(ok, out, np.nan)


def _round_half_away(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def _cents(amount: pd.Series) -> np.ndarray:
    return _round_half_away(np.asarray(amount, dtype=float) * 100).astype("int64")


def _annuity(principal: float, rate: float, term: int) -> float:
    r = rate / 12
    raw = principal / term if r == 0 else principal * r / (1 - (1 + r) ** -term)
    return float(_round_half_away(np.array([raw * 100]))[0] / 100)
