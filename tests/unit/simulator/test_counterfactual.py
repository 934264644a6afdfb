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
