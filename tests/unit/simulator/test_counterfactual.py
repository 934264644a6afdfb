"""The counterfactual fast path gives the full simulation's PDs at its snapshot."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from pipeline.config import GenerateConfig
from pipeline.simulator.counterfactual import lever_pd
from pipeline.simulator.simulate import simulate


@pytest.mark.parametrize(
    ("lever", "on"), [("payment_reminder", True), ("complaint_resolution", False)]
)
def test_lever_pd_equals_the_full_simulation_at_its_snapshot(lever, on):
    cfg = GenerateConfig(size="tiny")
    s, m = dt.date(2022, 4, 1), 39  # month 39 of a book starting 2019-01
    window = (m - 3, m)
    full = simulate(cfg, seed=3, levers={lever: on}, lever_months=window).true_pd
    full = full.loc[full["snapshot_date"] == pd.Timestamp(s), ["loan_id", "pd_given_path"]]
    fast = lever_pd(cfg, 3, 12, {lever: on}, window, s)
    both = full.merge(fast, on="loan_id", how="outer", indicator=True)
    assert (both["_merge"] == "both").all() and len(both) > 50
    assert (both["pd_given_path_x"] == both["pd_given_path_y"]).all()
    # and the lever is live: forcing it the other way moves some PD
    other = lever_pd(cfg, 3, 12, {lever: not on}, window, s)
    assert (other["pd_given_path"].to_numpy() != fast["pd_given_path"].to_numpy()).any()


def test_lever_pd_refuses_a_snapshot_without_a_full_window():
    with pytest.raises(ValueError, match="full window"):
        lever_pd(GenerateConfig(size="tiny"), 3, 12, {}, (0, 1), dt.date(2024, 6, 1))


def test_reminders_help_the_forgetful_not_the_short_of_money():
    """The planted heterogeneity (truth.json `heterogeneity`): forcing reminders lowers the PD
    of low-willingness customers with capacity, and does nothing through the reminder term for
    customers short of money (what is left for them is the fatigue of one more contact)."""
    from pipeline.simulator.population import draw_customers, draw_loans
    from pipeline.simulator.tables import loan_ids

    cfg = GenerateConfig(size="small")
    s, m = dt.date(2022, 4, 1), 39
    on = lever_pd(cfg, 5, 12, {"payment_reminder": True}, (m - 1, m), s)
    off = lever_pd(cfg, 5, 12, {"payment_reminder": False}, (m - 1, m), s)
    d = on.merge(off, on="loan_id", suffixes=("_on", "_off"))
    cus = draw_customers(5, cfg.n_customers())
    loans = draw_loans(5, cus, cfg.months)
    idx = pd.Series(loans.cust, index=loan_ids(loans)).loc[d["loan_id"]].to_numpy()
    delta = (d["pd_given_path_on"] - d["pd_given_path_off"]).to_numpy()
    forgetful = (cus.will[idx] < -0.5) & (cus.cap[idx] >= -1.0)
    short = cus.cap[idx] < -1.0
    assert delta[forgetful].mean() < 2 * delta[short].mean() - 1e-4
    assert delta[forgetful].mean() < 0


def test_a_customer_mask_forces_a_lever_for_those_customers_only():
    """A policy's contacts: a mask of every customer is the lever forced for everybody, an
    empty one the book as drawn, and a half mask moves only the PDs of the masked customers'
    loans: each customer's draws come from their own uniforms (common random numbers), so a
    contact never reshuffles another customer's future."""
    import numpy as np

    from pipeline.simulator.counterfactual import population

    cfg = GenerateConfig(size="tiny")
    s, m = dt.date(2022, 4, 1), 39
    n = population(3, cfg.n_customers(), cfg.months)[0].n
    for lever in ("payment_reminder", "complaint_resolution"):
        every = lever_pd(cfg, 3, 12, {lever: np.ones(n, bool)}, (m - 1, m), s)
        forced = lever_pd(cfg, 3, 12, {lever: True}, (m - 1, m), s)
        assert (every["pd_given_path"] == forced["pd_given_path"]).all()
    natural = lever_pd(cfg, 3, 12, {}, (m - 1, m), s)
    nobody = lever_pd(cfg, 3, 12, {"payment_reminder": np.zeros(n, bool)}, (m - 1, m), s)
    assert (nobody["pd_given_path"] == natural["pd_given_path"]).all()
    half = np.arange(n) % 2 == 0
    for lever in ("financial_education", "payment_reminder", "complaint_resolution"):
        some = lever_pd(cfg, 3, 12, {lever: half}, (m - 1, m), s)
        moved = some["pd_given_path"].to_numpy() != natural["pd_given_path"].to_numpy()
        assert moved.any()
        assert half[some["customer"].to_numpy()[moved]].all()
