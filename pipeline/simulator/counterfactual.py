"""The counterfactual mode's fast path: one loan's PD at one snapshot with a lever forced.

`simulate` builds the whole book (tables, the oracle at every month, the attributions): about
4 s on the default book. The effect study's truth needs, per (lever, snapshot, on/off), only the
PD at one snapshot given the drawn future, so `lever_pd` simulates the months up to the end of
that snapshot's outcome window and asks the oracle for that one month (about a quarter of the
cost), without the CRM event rows only the tables read, and with the book's customers and loans
drawn once. The months simulated are those of `simulate` with the same arguments (the same
keyed streams), so the PDs are identical (tested). With `customers`, only those customers are
simulated (`simulator.sample`: the whole book's draws indexed to them), with the same PDs.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence

import numpy as np
import pandas as pd

from pipeline.config import GenerateConfig
from pipeline.simulator.dynamics import MonthLoop
from pipeline.simulator.oracle import Oracle
from pipeline.simulator.population import Customers, Loans, draw_customers, draw_loans
from pipeline.simulator.sample import sample_population
from pipeline.simulator.tables import loan_ids
from pipeline.simulator.world import Calendar, Effects, check_levers


def lever_pd(
    cfg: GenerateConfig,
    seed: int,
    window_months: int,
    levers: dict[str, bool | np.ndarray],
    lever_months: tuple[int, int],
    snapshot: dt.date,
    effects: Effects | None = None,
    customers: np.ndarray | None = None,
) -> pd.DataFrame:
    """loan_id, customer (row index of `population`'s customers) and pd_given_path at
    `snapshot` (a first day of a month) of every loan active then, the `levers` forced in months
    [a, b) as in `simulate`; a lever's value may be a boolean mask over the customers (forced on
    for those only: a contact policy).
    customers: simulate only these (indices into `population`'s customers) and return their
        loans; None = the whole book."""
    arm = (levers, lever_months)
    return lever_pds(cfg, seed, window_months, [arm], snapshot, effects, customers)[0]


def lever_pds(
    cfg: GenerateConfig,
    seed: int,
    window_months: int,
    arms: Sequence[tuple[dict[str, bool | np.ndarray], tuple[int, int]]],
    snapshot: dt.date,
    effects: Effects | None = None,
    customers: np.ndarray | None = None,
) -> list[pd.DataFrame]:
    """`lever_pd` of several arms (levers, lever_months) at one snapshot, one frame per arm.

    Every arm draws the same months until its levers are forced, so the months before the
    earliest arm's window are simulated once and each arm goes on from a copy of them: the on
    and off arms of the truth's levers at a snapshot share most of their months.
    """
    arms = [(check_levers(lv), months) for lv, months in arms]
    fx = effects or Effects()
    cal = Calendar.of(cfg)
    s = (snapshot.year - cfg.start.year) * 12 + snapshot.month - cfg.start.month
    if snapshot.day != 1 or not 1 <= s <= cal.months - window_months:
        raise ValueError(f"{snapshot} is not a first-of-month snapshot with a full window")
    book_customers, book_loans = _population(seed, cfg.n_customers(), cal.months)
    if customers is None:
        cus, loans, where, weights = book_customers, book_loans, None, None
        ids, cust_of_loan = loan_ids(book_loans), book_loans.cust
    else:
        cus, loans, where = sample_population(book_customers, book_loans, customers, fx)
        weights = (where.rem_weight, where.edu_weight)
        ids = loan_ids(book_loans)[where.loans]
        cust_of_loan = where.customers[loans.cust]
    cust = pd.Series(cust_of_loan, index=ids)
    # The oracle reads hazards up to month s + W - 1; one more month keeps a margin.
    stop = min(s + window_months + 1, cal.months)
    shared = MonthLoop(seed, cal, cus, loans, fx, emit_rows=False, sample=where)
    shared.advance({}, None, min(stop, *(max(0, a) for _, (a, _b) in arms)))
    out = []
    for k, (levers, months) in enumerate(arms):
        if where is not None:
            levers = {
                name: v[where.customers] if isinstance(v, np.ndarray) else v
                for name, v in levers.items()
            }
        run = shared if k == len(arms) - 1 else shared.fork()
        run.advance(levers, months, stop)
        oracle = Oracle.of(cal, cus, loans, run.history(), fx, window_months, weights)
        tp = oracle.true_pd(ids, range(s, s + 1))[["loan_id", "pd_given_path"]]
        out.append(tp.assign(customer=cust.loc[tp["loan_id"]].to_numpy()))
    return out


def customers_of_loans(cfg: GenerateConfig, seed: int, ids: pd.Series) -> np.ndarray | None:
    """The indices in `population` of the customers holding the loans `ids` (the book's loan
    ids; others are ignored), for `lever_pd(customers=...)`; None when that is every customer
    or none (simulate the whole book)."""
    customers, loans = _population(seed, cfg.n_customers(), Calendar.of(cfg).months)
    book_ids = loan_ids(loans)
    wanted = pd.unique(pd.to_numeric(ids, errors="coerce").dropna()).astype(np.int64)
    pos = np.searchsorted(book_ids, wanted).clip(0, len(book_ids) - 1)
    who = np.unique(loans.cust[pos[book_ids[pos] == wanted]])
    return None if len(who) in (0, customers.n) else who


def population(seed: int, n: int, months: int) -> tuple[Customers, Loans]:
    """The book's customers and loans (cached: every arm of a book shares them; read only)."""
    return _population(seed, n, months)


@functools.lru_cache(maxsize=2)
def _population(seed: int, n: int, months: int) -> tuple[Customers, Loans]:
    # The same for every lever, arm and snapshot of a book (nothing downstream writes to it).
    customers = draw_customers(seed, n)
    return customers, draw_loans(seed, customers, months)
