"""The population: customers with their latent traits, and the loans the lender grants them.

`draw_customers` and `draw_loans` draw everything fixed before the book starts, each from its
own stream. The latent traits (capacity, willingness, satisfaction, shock proneness) drive the
hazard; the lender sees only a noisy risk grade, which prices the loans and targets contacts.
The helpers after them derive per-customer facts from the loans, among them when each customer
joined (`joined_month`) and so their tenure (`tenure_years`, the one definition of it).

The customer base is open and in steady state: loans originate at the same rate in every month
of the horizon, and a customer's tenure when they first borrow in the book does not depend on
when that is. So some customers join with their first loan at any point of the horizon, others
have been with the lender for years, and every snapshot mixes the two alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.simulator.draws import categorical_draw, rng, sigmoid
from pipeline.simulator.world import PRODUCT_TERMS, PRODUCTS, REGIONS

# Months at least between two loans of one customer.
MIN_GAP_MONTHS = 3


@dataclass(frozen=True)
class Customers:
    """One entry per customer (arrays of length n); indices into the world's category tuples."""

    cap: np.ndarray  # latent repayment capacity (standard normal)
    will: np.ndarray  # latent willingness to pay (standard normal)
    age: np.ndarray  # years, at the start of the book
    region: np.ndarray  # index into REGIONS
    employment: np.ndarray  # index into EMPLOYMENT
    income: np.ndarray  # annual
    tenure_at_first_loan: np.ndarray  # years with the lender when first borrowing in the book
    sat_mean: np.ndarray  # the level latent satisfaction reverts to
    digital: np.ndarray  # propensity to use digital channels (0-1)
    marketing_rate: np.ndarray  # marketing contacts a month
    shock_prone: np.ndarray  # multiplies the income-shock rate
    lag: np.ndarray  # months from distress onset to stopping payment (1-2)
    grade: np.ndarray  # what the lender sees: a noisy grade of capacity and willingness
    literacy: np.ndarray  # financial literacy (standard normal), follows income in part

    @property
    def n(self) -> int:
        return len(self.cap)


@dataclass(frozen=True)
class Loans:
    """One entry per loan (arrays of length k), in the order drawn; months count from month 0."""

    cust: np.ndarray  # index of the borrowing customer
    orig: np.ndarray  # origination month; the first instalment is due the month after
    term: np.ndarray  # months
    day: np.ndarray  # day of the month of origination and of every instalment (1-28)
    product: np.ndarray  # index into PRODUCTS
    principal: np.ndarray
    rate: np.ndarray  # annual interest rate
    channel: np.ndarray  # index into LOAN_CHANNELS
    payment: np.ndarray  # the monthly instalment

    @property
    def k(self) -> int:
        return len(self.cust)


def draw_customers(seed: int, n: int) -> Customers:
    rng_ = rng(seed, -1, "customer")
    cap = rng_.standard_normal(n)
    will = rng_.standard_normal(n)
    age = rng_.uniform(21, 72, n)
    region = rng_.integers(0, len(REGIONS), n)
    # Employment follows capacity: low capacity is more often contractor or unemployed.
    emp_logits = np.stack(
        [
            1.6 + 0.3 * cap,
            0.2 + 0.0 * cap,
            -0.1 - 0.3 * cap,
            np.where(age > 62, 2.5, -3.0),
            -1.8 - 0.7 * cap,
        ],
        axis=1,
    )
    employment = categorical_draw(rng_, emp_logits)
    income = np.exp(10.55 + 0.33 * cap + 0.3 * rng_.standard_normal(n))
    income *= np.where(employment == 4, 0.45, 1.0)
    # Years with the lender when first borrowing in the book: many long-standing, some join
    # with that loan. Drawn apart from its date, so the mix of tenures is the same every month.
    tenure_at_first_loan = np.where(rng_.random(n) < 0.3, 0.0, rng_.exponential(5.0, n))
    sat_mean = 0.3 * will + 0.9 * rng_.standard_normal(n)
    digital = sigmoid(2.5 - 0.07 * (age - 21) + 0.5 * rng_.standard_normal(n))
    marketing_rate = rng_.gamma(1.2, 0.25, n)
    shock_prone = rng_.gamma(2.0, 0.5, n)
    lag = rng_.integers(1, 3, n)
    grade = 0.6 * cap + 0.4 * will + 0.55 * rng_.standard_normal(n)
    # A stream of its own: the draws above are those of books generated before literacy was.
    log_inc = np.log(income)
    z_inc = (log_inc - log_inc.mean()) / (log_inc.std() or 1.0)
    literacy = 0.5 * z_inc + np.sqrt(0.75) * rng(seed, -1, "literacy").standard_normal(n)
    return Customers(
        cap=cap,
        will=will,
        age=age,
        region=region,
        employment=employment,
        income=income,
        tenure_at_first_loan=tenure_at_first_loan,
        sat_mean=sat_mean,
        digital=digital,
        marketing_rate=marketing_rate,
        shock_prone=shock_prone,
        lag=lag,
        grade=grade,
        literacy=literacy,
    )


def draw_loans(seed: int, customers: Customers, months: int) -> Loans:
    """One to three loans per customer, originated in any month of the book, at least
    `MIN_GAP_MONTHS` apart. Every loan's month is uniform over the horizon (the months of a
    customer's loans are sorted uniform draws, spread by the gap), so originations come at the
    same rate in every month: none are held back or piled up at the end."""
    rng_ = rng(seed, -1, "loans")
    n, M = customers.n, months
    n_loans = 1 + (rng_.random(n) < 0.35) + (rng_.random(n) < 0.10)
    cust = np.repeat(np.arange(n), n_loans)
    k = len(cust)
    nth = np.concatenate([np.arange(c) for c in n_loans])  # 0 = the customer's first loan
    span = M - MIN_GAP_MONTHS * (n_loans[cust] - 1)  # room left once the gaps are set aside
    u = rng_.random(k)
    # Sort each customer's draws (loans are grouped by customer): customer-major lexsort.
    u = u[np.lexsort((u, cust))]
    orig = np.floor(u * span).astype(np.int64) + MIN_GAP_MONTHS * nth
    product = categorical_draw(rng_, np.tile(np.log([0.45, 0.25, 0.18, 0.12]), (k, 1)) + 0.0)
    # Credit builders go to customers with thin or weak credit.
    product = np.where((customers.grade[cust] < -1.0) & (rng_.random(k) < 0.4), 3, product)
    term = np.array([rng_.choice(PRODUCT_TERMS[PRODUCTS[p]]) for p in product], dtype=np.int64)
    base = np.array([9000, 18000, 14000, 2500])[product]
    principal = np.round(
        base * np.exp(0.45 * rng_.standard_normal(k)) * (customers.income[cust] / 40000) ** 0.5, -1
    )
    principal = np.maximum(principal, 500.0)
    base_rate = np.array([0.11, 0.07, 0.09, 0.16])[product]
    rate = np.clip(
        base_rate - 0.025 * customers.grade[cust] + 0.01 * rng_.standard_normal(k), 0.02, 0.35
    )
    channel = categorical_draw(rng_, np.tile(np.log([0.4, 0.45, 0.15]), (k, 1)))
    day = rng_.integers(1, 29, k)
    r = rate / 12
    payment = np.round(principal * r / (1 - (1 + r) ** (-term)), 2)
    return Loans(
        cust=cust,
        orig=orig,
        term=term,
        day=day,
        product=product,
        principal=principal,
        rate=rate,
        channel=channel,
        payment=payment,
    )


def broker_customers(loans: Loans, n: int) -> np.ndarray:
    """1.0 for customers with a loan through a broker, else 0.0."""
    b = np.zeros(n)
    np.maximum.at(b, loans.cust, (loans.channel == 2).astype(float))
    return b


def customer_due_day(loans: Loans, n: int) -> np.ndarray:
    """Each customer's due day: the first loan's (later loans are usually aligned to it)."""
    d = np.full(n, 15)
    first = np.unique(loans.cust, return_index=True)[1]
    d[loans.cust[first]] = loans.day[first]
    return d


def seasoning(loans: Loans, n: int, m: int) -> np.ndarray:
    """1 when the customer's newest loan is 3-18 months old at month m."""
    age = np.full(n, 10_000)
    started = loans.orig <= m
    np.minimum.at(age, loans.cust[started], m - loans.orig[started])
    return ((age >= 3) & (age <= 18)).astype(float)


def joined_month(customers: Customers, loans: Loans) -> np.ndarray:
    """The month (from month 0, fractional; negative: before the book) each customer joined:
    their tenure at their first loan of the book before its origination month."""
    first = np.full(customers.n, np.iinfo(np.int64).max)
    np.minimum.at(first, loans.cust, loans.orig)
    return first - 12.0 * customers.tenure_at_first_loan


def tenure_years(joined: np.ndarray, months: int | np.ndarray) -> np.ndarray:
    """Years with the lender at the start of month(s) `months`: (n,) for one month, (n, k) for k
    months. 0 before joining."""
    return np.maximum(0.0, np.subtract.outer(np.asarray(months, dtype=float), joined).T) / 12.0
