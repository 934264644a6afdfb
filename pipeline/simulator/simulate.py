"""The simulated lender's book: four tables with a known truth (`loanrisk generate`).

The model of the world, month by month (month m covers [start + m months, start + m + 1 months)):

* Each customer has a latent repayment capacity `c` and willingness `w` (standard normal), a
  region with its own sensitivity to an economic downturn, a latent satisfaction that drifts and
  reacts to how complaints are handled, and occasional income shocks.
* The customer base is open: loans originate at one rate in every month of the horizon, and
  customers join throughout it (with their first loan, or years before it), so every snapshot
  mixes newcomers with long-standing customers. Marketing reaches everyone every month,
  prospects included, so the planted null's exposure does not follow tenure.
  The book itself starts empty in month 0, so its loans season over the horizon (older loans,
  longer relationships later on): that, not the calendar, is what still moves between the
  first snapshots and the last.
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
each customer's state at the snapshot, integrating over what happens after it (`oracle`): the
oracle, the best PD any model could give. It is written apart from the four tables, in `truth/`.
Every random draw comes from a stream keyed by (seed, month, purpose), so forcing one lever on or
off (`levers`) changes that lever only: the counterfactual mode of the effect study.

This module is the entry point (`simulate`, `generate`); the parts, bottom up:
`world` (the planted effects, levers, calendar, constants), `draws` (keyed random streams),
`population` (customers, loans), `emission` (a month's event and instalment rows), `dynamics`
(the monthly loop), `oracle` (true PD, attributions), `truth` (truth.json), `tables` (the four
contract tables) and `book` (the Book, written to a folder).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.config import GenerateConfig
from pipeline.simulator.book import Book, book_summary, write_book
from pipeline.simulator.dynamics import run_months
from pipeline.simulator.oracle import Oracle
from pipeline.simulator.population import draw_customers, draw_loans
from pipeline.simulator.tables import book_tables, loan_ids
from pipeline.simulator.truth import truth_json
from pipeline.simulator.world import (
    EFFECT_TERMS,
    EVENT_TYPES,
    LEVERS,
    Calendar,
    Effects,
    check_levers,
)

__all__ = [
    "EFFECT_TERMS",
    "EVENT_TYPES",
    "LEVERS",
    "Book",
    "Effects",
    "book_summary",
    "generate",
    "simulate",
]

log = logging.getLogger(__name__)


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
    write_book(book, out_dir, fmt)
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
    levers = check_levers(levers or {})
    fx = effects or Effects()
    sim = _Simulation(cfg, seed, window_months, levers, fx, lever_months)
    return sim.run()


class _Simulation:
    """One run: the population, the months, the tables, then the oracle's truth about them.

    After `run`, `_true_pd` answers for any snapshot months (the tests call it again)."""

    def __init__(
        self,
        cfg: GenerateConfig,
        seed: int,
        window_months: int,
        levers: dict[str, bool],
        fx: Effects,
        lever_months: tuple[int, int] | None = None,
    ):
        self.cfg = cfg
        self.seed = seed
        self.W = window_months
        self.levers = levers
        self.lever_months = lever_months
        self.fx = fx
        self.oracle: Oracle | None = None

    def run(self) -> Book:
        cfg, seed = self.cfg, self.seed
        cal = Calendar.of(cfg)
        customers = draw_customers(seed, cfg.n_customers())
        loans = draw_loans(seed, customers, cal.months)
        history = run_months(seed, cal, customers, loans, self.fx, self.levers, self.lever_months)
        tables = book_tables(cfg, seed, cal, customers, loans, history)
        self.oracle = Oracle.of(cal, customers, loans, history, self.fx, self.W)
        ids = loan_ids(loans)
        true_pd = self._true_pd(ids)
        truth = truth_json(
            cfg,
            seed,
            self.W,
            self.levers,
            self.lever_months,
            self.fx,
            true_pd,
            self.oracle.attributions(ids),
        )
        return Book(**tables, true_pd=true_pd, truth=truth)

    def _true_pd(self, loan_ids: np.ndarray, months: range | None = None) -> pd.DataFrame:
        """The oracle's true PD and pd_given_path (see `Oracle.true_pd`)."""
        if self.oracle is None:
            raise RuntimeError("run the simulation first")
        return self.oracle.true_pd(loan_ids, months)
