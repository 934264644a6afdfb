"""Some of the book's customers, simulated alone with the whole book's random numbers.

The customers of the simulated book do not interact: each month's draws are vectors over the
whole book (one uniform or normal per customer, one set per due instalment), and a customer's
path depends on their own entries only. So a sample's months are the whole book's months
restricted to the sample, if every draw is taken at the whole book's size and then indexed to
the sample; the draws are cheap, the arrays the months fill are what costs, and those shrink
with the sample. Two quantities are normalised over the whole population (the lever weights,
`world.lever_weights`): the sample keeps the whole book's.

The effect study's truth on a sample of customers (`effects.max_customers`) simulates only
them: a quarter of the customers, about a quarter of the cost, and the same PDs (tested).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from pipeline.simulator.population import Customers, Loans
from pipeline.simulator.world import Effects, lever_weights


@dataclass(frozen=True)
class Sample:
    """Where a sample sits in the whole book.

    customers: sorted indices of the sample's customers in the whole book (length n).
    loans: indices of their loans in the whole book's loans, in the book's order.
    n_full: customers in the whole book; full_orig, full_term: every loan's origination month
        and term (which instalments of the whole book are due in a month, for the payment draws).
    rem_weight, edu_weight: the sample's lever weights, normalised over the whole book.
    """

    customers: np.ndarray
    loans: np.ndarray
    n_full: int
    full_orig: np.ndarray
    full_term: np.ndarray
    rem_weight: np.ndarray
    edu_weight: np.ndarray

    def pick(self, draw: np.ndarray) -> np.ndarray:
        """The sample's entries of a per-customer draw over the whole book."""
        return draw[self.customers]

    def due_positions(self, m: int, loan_idx: np.ndarray) -> tuple[int, np.ndarray]:
        """(instalments of the whole book due in month m, positions among them of the sample's
        due loans `loan_idx`, indices into the sample's loans)."""
        due = (self.full_orig < m) & (m <= self.full_orig + self.full_term)
        rank = np.cumsum(due) - 1
        return int(due.sum()), rank[self.loans[loan_idx]]


def sample_population(
    customers: Customers, loans: Loans, keep: np.ndarray, fx: Effects
) -> tuple[Customers, Loans, Sample]:
    """The customers `keep` (indices in the whole book; sorted and deduplicated here), their
    loans (customer indices renumbered 0..n-1 in the sample) and where they sit in the book."""
    keep = np.unique(np.asarray(keep, dtype=np.int64))
    if keep.size and (keep[0] < 0 or keep[-1] >= customers.n):
        raise ValueError(f"customer indices must lie in [0, {customers.n})")
    sub_cus = Customers(**{f.name: getattr(customers, f.name)[keep] for f in _fields(Customers)})
    in_sample = np.isin(loans.cust, keep)
    loan_idx = np.flatnonzero(in_sample)
    cols = {f.name: getattr(loans, f.name)[loan_idx] for f in _fields(Loans)}
    cols["cust"] = np.searchsorted(keep, cols["cust"])
    w_rem, w_edu = lever_weights(customers.will, customers.cap, customers.literacy, fx)
    where = Sample(
        customers=keep,
        loans=loan_idx,
        n_full=customers.n,
        full_orig=loans.orig,
        full_term=loans.term,
        rem_weight=w_rem[keep],
        edu_weight=w_edu[keep],
    )
    return sub_cus, Loans(**cols), where


def _fields(cls: type) -> tuple[dataclasses.Field, ...]:
    return dataclasses.fields(cls)
