"""A small, hand-controllable lender's book for the feature tests.

`BookBuilder` adds customers, loans (with a payment behaviour per instalment) and CRM events one
by one and returns the four validated tables with the dtypes the ingest stage writes
(datetime64[us], str, boolean, Int64). `random_book` fills a builder with a seeded RNG: ~50
customers, ~80 loans with on-time, early, late, partial, unpaid, cured, prepaid and defaulting
instalments, and CRM events of every type, including events at 00:00:00 and 23:59:59 around
month starts, on the leap day 2024-02-29, and customers without any event.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.core.contract import CRM_CHANNELS, CRM_TYPES

END = dt.date(2025, 1, 1)  # extraction date of the random book: events before it are present
OUTBOUND_TYPES = ("payment_reminder", "proactive_checkin", "marketing")


def annuity(principal: float, rate: float, term: int) -> float:
    r = rate / 12
    return round(principal / term if r == 0 else principal * r / (1 - (1 + r) ** -term), 2)


def add_months(d: dt.date, months: int) -> dt.date:
    return (pd.Timestamp(d) + pd.DateOffset(months=months)).date()


@dataclass
class BookBuilder:
    """Rows of the four tables; `tables()` returns typed DataFrames.

    end: the extraction date: instalments due on or after it are left out, payments on or after
    it are unobserved (paid_date NaT, amount_paid 0).
    """

    end: dt.date = END
    customers: list[dict] = field(default_factory=list)
    loans: list[dict] = field(default_factory=list)
    repayments: list[dict] = field(default_factory=list)
    crm: list[dict] = field(default_factory=list)

    def customer(
        self,
        customer_id: int,
        since: dt.date = dt.date(2015, 3, 10),
        birth_year: int | None = 1980,
        income: float | None = 40_000.0,
        employment: str = "salaried",
        region: str = "north",
    ) -> None:
        self.customers.append(
            {
                "customer_id": customer_id,
                "customer_since": pd.Timestamp(since),
                "birth_year": birth_year,
                "annual_income": np.nan if income is None else income,
                "employment_type": employment,
                "region": region,
                "gender": "f" if customer_id % 2 else "m",  # sensitive: must never be used
                "age_band": "30-45",
            }
        )

    def loan(
        self,
        loan_id: int,
        customer_id: int,
        orig: dt.date,
        term: int = 12,
        principal: float = 5_000.0,
        rate: float = 0.12,
        payments: list[int | None] | None = None,
        partial: dict[int, float] | None = None,
        product: str = "personal",
        channel: str = "online",
    ) -> list[dt.date]:
        """A loan with monthly instalments due orig + k months (k = 1..term).

        payments[k-1]: days after the due date the instalment is paid (negative = early, None =
        never); missing entries are paid on the due date. partial: {k: share paid}. Returns the
        due dates (all of them, also those left out after the extraction date).
        """
        self.loans.append(
            {
                "loan_id": loan_id,
                "customer_id": customer_id,
                "product": product,
                "origination_date": pd.Timestamp(orig),
                "principal": principal,
                "term_months": term,
                "interest_rate": rate,
                "channel": channel,
            }
        )
        amount = annuity(principal, rate, term)
        payments = payments or []
        partial = partial or {}
        dues = [add_months(orig, k) for k in range(1, term + 1)]
        for k, due in enumerate(dues, start=1):
            if due >= self.end:
                break
            offset = payments[k - 1] if k - 1 < len(payments) else 0
            paid = None if offset is None else due + dt.timedelta(days=offset)
            if paid is not None and paid >= self.end:
                paid = None
            share = partial.get(k, 1.0)
            self.repayments.append(
                {
                    "loan_id": loan_id,
                    "installment_no": k,
                    "due_date": pd.Timestamp(due),
                    "amount_due": amount,
                    "paid_date": pd.NaT if paid is None else pd.Timestamp(paid),
                    "amount_paid": 0.0 if paid is None else round(amount * share, 2),
                }
            )
        return dues

    def event(
        self,
        customer_id: int,
        ts: dt.datetime | pd.Timestamp | str,
        etype: str = "service_request",
        channel: str = "app",
        resolved: bool | None = None,
        resolution_days: float | None = None,
        satisfaction: int | None = None,
        nps: int | None = None,
        answered: bool | None = None,
    ) -> None:
        self.crm.append(
            {
                "interaction_id": len(self.crm) + 1,
                "customer_id": customer_id,
                "timestamp": pd.Timestamp(ts),
                "channel": channel,
                "type": etype,
                "resolved": resolved,
                "resolution_days": np.nan if resolution_days is None else resolution_days,
                "satisfaction": satisfaction,
                "nps": nps,
                "direction": "outbound" if etype in OUTBOUND_TYPES else "inbound",
                "answered": answered,
                "notes": "free text, never a feature",
            }
        )

    def tables(self, optional_columns: bool = True) -> dict[str, pd.DataFrame]:
        customers = pd.DataFrame(self.customers)
        customers = customers.astype(
            {
                "customer_id": "int64",
                "customer_since": "datetime64[us]",
                "birth_year": "Int64",
                "annual_income": "float64",
                "employment_type": "str",
                "region": "str",
                "gender": "str",
                "age_band": "str",
            }
        )
        loans = pd.DataFrame(self.loans).astype(
            {
                "loan_id": "int64",
                "customer_id": "int64",
                "product": "str",
                "origination_date": "datetime64[us]",
                "principal": "float64",
                "term_months": "int64",
                "interest_rate": "float64",
                "channel": "str",
            }
        )
        rep_cols = [
            "loan_id",
            "installment_no",
            "due_date",
            "amount_due",
            "paid_date",
            "amount_paid",
        ]
        repayments = pd.DataFrame(self.repayments, columns=rep_cols).astype(
            {
                "loan_id": "int64",
                "installment_no": "int64",
                "due_date": "datetime64[us]",
                "amount_due": "float64",
                "paid_date": "datetime64[us]",
                "amount_paid": "float64",
            }
        )
        crm_cols = [
            "interaction_id",
            "customer_id",
            "timestamp",
            "channel",
            "type",
            "resolved",
            "resolution_days",
            "satisfaction",
            "nps",
            "direction",
            "answered",
            "notes",
        ]
        crm = pd.DataFrame(self.crm, columns=crm_cols).astype(
            {
                "interaction_id": "int64",
                "customer_id": "int64",
                "timestamp": "datetime64[us]",
                "channel": "str",
                "type": "str",
                "resolved": "boolean",
                "resolution_days": "float64",
                "satisfaction": "Int64",
                "nps": "Int64",
                "direction": "str",
                "answered": "boolean",
                "notes": "str",
            }
        )
        if not optional_columns:
            crm = crm.drop(columns=["direction", "answered"])
        return {
            "customers": customers,
            "loans": loans,
            "repayments": repayments.sort_values(["loan_id", "installment_no"], ignore_index=True),
            "crm_interactions": crm,
        }


def write_book(tables: dict[str, pd.DataFrame], folder: Path) -> Path:
    """Write the tables as `<folder>/<table>.parquet` (the interim layout); returns folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        frame.to_parquet(folder / f"{name}.parquet", index=False)
    return folder


def random_book(seed: int = 0, n_customers: int = 50, n_loans: int = 80) -> BookBuilder:
    """A seeded random book from 2021 to the end of 2024 (see the module docstring)."""
    rng = np.random.default_rng(seed)
    b = BookBuilder()
    for c in range(1, n_customers + 1):
        since = dt.date(2012, 1, 1) + dt.timedelta(days=int(rng.integers(0, 365 * 10)))
        b.customer(
            c,
            since=since,
            birth_year=None if rng.random() < 0.1 else int(rng.integers(1950, 2002)),
            income=None
            if rng.random() < 0.08
            else (0.0 if c == 7 else float(rng.integers(15, 120) * 1000)),
            employment=str(rng.choice(["salaried", "self_employed", "retired", "contractor"])),
            region=str(rng.choice(["north", "south", "east", "west"])),
        )
    loan_customers = rng.integers(1, n_customers + 1, n_loans)
    for i in range(n_loans):
        orig = dt.date(2021, 1, 1) + dt.timedelta(days=int(rng.integers(0, 365 * 3 + 200)))
        if i == 0:
            orig = dt.date(2023, 11, 29)  # instalment due on the leap day 2024-02-29
        if i == 1:
            orig = dt.date(2024, 1, 31)  # due dates clamp to month ends (2024-02-29)
        term = int(rng.choice([6, 12, 24, 36]))
        b.loan(
            1000 + i,
            int(loan_customers[i]),
            orig,
            term=term,
            principal=float(rng.integers(10, 300) * 100),
            rate=0.0 if i == 2 else round(float(rng.uniform(0.03, 0.3)), 4),
            payments=_behaviour(rng, term, i),
            partial={int(k): 0.5 for k in rng.integers(1, term + 1, 2)}
            if rng.random() < 0.25
            else None,
            product=str(rng.choice(["personal", "auto", "credit_builder"])),
            channel=str(rng.choice(["branch", "online", "broker"])),
        )
    _random_events(b, rng, n_customers)
    return b


def _behaviour(rng: np.random.Generator, term: int, i: int) -> list[int | None]:
    """Days late per instalment for one of five behaviours."""
    kind = ["good", "sloppy", "default", "cure", "prepay"][i % 5]
    out: list[int | None] = []
    stop = int(rng.integers(2, max(3, term)))
    for k in range(1, term + 1):
        if kind == "good":
            out.append(int(rng.integers(-5, 1)) if rng.random() < 0.9 else int(rng.integers(1, 5)))
        elif kind == "sloppy":
            out.append(int(rng.integers(1, 60)) if rng.random() < 0.4 else 0)
        elif kind == "default":
            out.append(None if k >= stop else int(rng.integers(0, 20)))
        elif kind == "cure":
            out.append(int(rng.integers(60, 100)) if k in (stop, stop + 1) else 0)
        else:  # pays the rest of the loan at once, early
            out.append(0 if k < stop else -30 * (k - stop) - 3)
    return out


def _random_events(b: BookBuilder, rng: np.random.Generator, n_customers: int) -> None:
    types = [*CRM_TYPES, "other"]  # a type of the lender's own: a contact of no listed type
    weights = np.array([6, 1, 4, 2, 1, 1, 3, 0.5])
    weights /= weights.sum()
    silent = set(range(n_customers - 4, n_customers + 1))  # customers without any CRM event
    start = pd.Timestamp("2020-06-01")
    span = int((pd.Timestamp(END) - start).total_seconds())
    for c in range(1, n_customers + 1):
        if c in silent:
            continue
        for _ in range(int(rng.poisson(40))):
            ts = start + pd.Timedelta(seconds=int(rng.integers(0, span)))
            _random_event(b, rng, c, ts, str(rng.choice(types, p=weights)))
        # boundaries: midnight on a month start (a snapshot) and the second before it
        month = pd.Timestamp(2022, 1, 1) + pd.DateOffset(months=int(rng.integers(0, 30)))
        _random_event(b, rng, c, month, "service_request")
        _random_event(b, rng, c, month - pd.Timedelta(seconds=1), "complaint")
        if c % 3 == 0:
            _random_event(b, rng, c, pd.Timestamp("2024-02-29 12:30:00"), "payment_reminder")
    # reminders shortly before due dates, so that reminded instalments exist
    loans = {r["loan_id"]: r["customer_id"] for r in b.loans}
    for r in b.repayments:
        if rng.random() < 0.15:
            ts = r["due_date"] - pd.Timedelta(seconds=int(rng.integers(1, 12 * 86400)))
            _random_event(b, rng, loans[r["loan_id"]], ts, "payment_reminder")


def _random_event(
    b: BookBuilder, rng: np.random.Generator, c: int, ts: pd.Timestamp, etype: str
) -> None:
    resolvable = etype in ("complaint", "service_request", "hardship_request")
    resolved = None
    days = None
    if resolvable and rng.random() < 0.9:
        resolved = bool(rng.random() < 0.7)
        if resolved and rng.random() < 0.9:
            days = float(rng.integers(0, 60)) + (0.5 if rng.random() < 0.3 else 0.0)
    outbound = etype in OUTBOUND_TYPES
    b.event(
        c,
        ts,
        etype,
        channel=str(rng.choice(CRM_CHANNELS)),
        resolved=resolved,
        resolution_days=days,
        satisfaction=int(rng.integers(1, 6)) if rng.random() < 0.4 else None,
        nps=int(rng.integers(0, 11)) if rng.random() < 0.3 else None,
        answered=(bool(rng.random() < 0.6) if rng.random() < 0.9 else None) if outbound else None,
    )
