"""A sample of the book's customers, simulated alone, gets the whole book's PDs."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from pipeline.config import GenerateConfig
from pipeline.simulator.counterfactual import lever_pd, population

CFG = GenerateConfig(size="tiny")
SNAP, M = dt.date(2022, 4, 1), 39  # month 39 of a book starting 2019-01


@pytest.mark.parametrize(
    "levers",
    [
        {},
        {"payment_reminder": True},
        {"financial_education": False},
        {"complaint_resolution": True},
        {"proactive_checkin": "half"},
    ],
)
def test_a_sample_of_customers_gets_the_whole_books_pds(levers):
    n = population(3, CFG.n_customers(), CFG.months)[0].n
    levers = {k: (np.arange(n) % 2 == 0) if v == "half" else v for k, v in levers.items()}
    whole = lever_pd(CFG, 3, 12, levers, (M - 3, M), SNAP)
    # every third customer, given unsorted and with a repeat (the sample sorts and dedupes)
    keep = np.concatenate([np.arange(n)[::3][::-1], [0]])
    part = lever_pd(CFG, 3, 12, levers, (M - 3, M), SNAP, customers=keep)
    expected = whole.loc[np.isin(whole["customer"], keep)].reset_index(drop=True)
    assert len(part) > 20 and len(part) < len(whole)
    assert part["loan_id"].tolist() == expected["loan_id"].tolist()
    assert part["customer"].tolist() == expected["customer"].tolist()
    np.testing.assert_array_equal(part["pd_given_path"], expected["pd_given_path"])


def test_a_sample_refuses_customers_outside_the_book():
    n = population(3, CFG.n_customers(), CFG.months)[0].n
    with pytest.raises(ValueError, match="customer indices"):
        lever_pd(CFG, 3, 12, {}, (M - 1, M), SNAP, customers=np.array([0, n]))


def test_arms_that_share_their_first_months_get_the_pds_of_separate_runs():
    """`lever_pds` simulates the months before the earliest lever window once for every arm:
    each arm's PDs are those of its own run, for the whole book and for a sample."""
    from pipeline.simulator.counterfactual import lever_pds

    n = population(3, CFG.n_customers(), CFG.months)[0].n
    arms = [
        ({"payment_reminder": True}, (M - 1, M)),
        ({"financial_education": False}, (M - 3, M)),
        ({"complaint_resolution": True}, (M - 3, M)),
        ({"proactive_checkin": np.arange(n) % 3 == 0}, (M - 1, M)),
    ]
    for keep in (None, np.arange(n)[::4]):
        together = lever_pds(CFG, 3, 12, arms, SNAP, customers=keep)
        for (levers, months), got in zip(arms, together, strict=True):
            alone = lever_pd(CFG, 3, 12, levers, months, SNAP, customers=keep)
            assert got["loan_id"].tolist() == alone["loan_id"].tolist()
            np.testing.assert_array_equal(got["pd_given_path"], alone["pd_given_path"])
    # and the arms differ: the levers are live
    assert (together[0]["pd_given_path"] != together[1]["pd_given_path"]).any()
