"""The four contract tables of the book, assembled from the population and the monthly rows.

`book_tables` builds customers, loans, repayments and crm_interactions as the contract
(`pipeline.core.contract`) names them: ids, dates, category names, the missing values a real
extract has, and no payment observed after the extraction date. `loan_ids` gives the loans'
ids, in the order the simulation drew them (the oracle's rows use them too).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.config import GenerateConfig
from pipeline.core.contract import CRM_CHANNELS
from pipeline.simulator.draws import rng
from pipeline.simulator.dynamics import History
from pipeline.simulator.population import Customers, Loans, joined_month
from pipeline.simulator.world import (
    EMPLOYMENT,
    EVENT_TYPES,
    LOAN_CHANNELS,
    PRODUCTS,
    REGIONS,
    Calendar,
)


def book_tables(
    cfg: GenerateConfig,
    seed: int,
    cal: Calendar,
    cus: Customers,
    loans: Loans,
    history: History,
) -> dict[str, pd.DataFrame]:
    """customers, loans, repayments and crm_interactions, in that order."""
    cust_ids = np.arange(1, cus.n + 1, dtype=np.int64)
    ids = loan_ids(loans)
    return {
        "customers": _customers(cfg, seed, cal, cus, loans, cust_ids),
        "loans": _loans(cal, loans, cust_ids, ids),
        "repayments": _repayments(cal, loans, history.payments, ids),
        "crm_interactions": _crm(cal, history.events, cust_ids),
    }


def loan_ids(loans: Loans) -> np.ndarray:
    return np.arange(1, loans.k + 1, dtype=np.int64) + 100000


def _customers(
    cfg: GenerateConfig,
    seed: int,
    cal: Calendar,
    cus: Customers,
    loans: Loans,
    cust_ids: np.ndarray,
) -> pd.DataFrame:
    n = cus.n
    rng_ = rng(seed, -1, "missing")
    # The joining month's start plus its fraction of that month, so customer_since falls in
    # the month the simulation has the customer join (marketing reaches them from the next).
    joined = joined_month(cus, loans)
    whole = np.floor(joined)
    month = np.datetime64(cal.month_start[0], "M") + whole.astype("timedelta64[M]")
    first_day = month.astype("datetime64[D]")
    days = (month + np.timedelta64(1, "M")).astype("datetime64[D]") - first_day
    since = first_day + np.floor((joined - whole) * days.astype(float)).astype("timedelta64[D]")
    # Who joins with their first loan became a customer on its origination day.
    first = np.unique(loans.cust, return_index=True)[1]
    first_orig = cal.month_start[loans.orig[first]] + (loans.day[first] - 1).astype(
        "timedelta64[D]"
    )
    with_loan = cus.tenure_at_first_loan[loans.cust[first]] == 0
    since[loans.cust[first][with_loan]] = first_orig[with_loan]
    birth_year = (cfg.start.year - np.floor(cus.age)).astype("float")
    birth_year[rng_.random(n) < cfg.missing_rate] = np.nan
    income = np.round(cus.income, -2)
    income[rng_.random(n) < cfg.missing_rate] = np.nan
    return pd.DataFrame(
        {
            "customer_id": cust_ids,
            "customer_since": pd.to_datetime(since),
            "birth_year": pd.array(birth_year, dtype="Int64"),
            "annual_income": income,
            "employment_type": pd.array(np.array(EMPLOYMENT)[cus.employment], dtype="str"),
            "region": pd.array(np.array(REGIONS)[cus.region], dtype="str"),
        }
    )


def _loans(cal: Calendar, loans: Loans, cust_ids: np.ndarray, ids: np.ndarray) -> pd.DataFrame:
    orig_date = cal.month_start[loans.orig] + (loans.day - 1).astype("timedelta64[D]")
    df = pd.DataFrame(
        {
            "loan_id": ids,
            "customer_id": cust_ids[loans.cust],
            "product": pd.array(np.array(PRODUCTS)[loans.product], dtype="str"),
            "origination_date": pd.to_datetime(orig_date),
            "principal": loans.principal,
            "term_months": loans.term,
            "interest_rate": np.round(loans.rate, 4),
            "channel": pd.array(np.array(LOAN_CHANNELS)[loans.channel], dtype="str"),
        }
    )
    df = df.sort_values(["origination_date", "loan_id"], kind="stable")
    return df.reset_index(drop=True)


def _repayments(
    cal: Calendar, loans: Loans, pays: list[dict[str, np.ndarray]], ids: np.ndarray
) -> pd.DataFrame:
    p = {k: np.concatenate([x[k] for x in pays]) for k in pays[0]}
    due = cal.month_start[p["month"]] + (loans.day[p["loan"]] - 1).astype("timedelta64[D]")
    paid_date = np.where(
        p["paid"], due + p["offset_days"].astype("timedelta64[D]"), np.datetime64("NaT")
    ).astype("datetime64[D]")
    amount_due = loans.payment[p["loan"]]
    amount_paid = np.where(p["paid"], np.round(amount_due * p["partial_share"], 2), 0.0)
    repayments = pd.DataFrame(
        {
            "loan_id": ids[p["loan"]],
            "installment_no": p["inst"].astype(np.int64),
            "due_date": pd.to_datetime(due),
            "amount_due": amount_due,
            "paid_date": pd.to_datetime(paid_date),
            "amount_paid": amount_paid,
        }
    )
    # A payment cannot be observed after the extraction date: it is still unpaid then.
    end = pd.Timestamp(cal.month_start[cal.months])
    after = repayments["paid_date"] >= end
    repayments.loc[after, "paid_date"] = pd.NaT
    repayments.loc[after, "amount_paid"] = 0.0
    repayments = repayments.sort_values(["loan_id", "installment_no"], kind="stable")
    return repayments.reset_index(drop=True)


def _crm(cal: Calendar, events: list[dict[str, np.ndarray]], cust_ids: np.ndarray) -> pd.DataFrame:
    e = {k: np.concatenate([x[k] for x in events]) for k in events[0]}
    ts = cal.month_start[e["month"]].astype("datetime64[s]") + e["seconds"].astype("timedelta64[s]")
    crm = pd.DataFrame(
        {
            "customer_id": cust_ids[e["customer"].astype(np.int64)],
            "timestamp": pd.to_datetime(ts),
            "channel": pd.array(np.array(CRM_CHANNELS)[e["channel"].astype(np.int64)], dtype="str"),
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
    return crm
