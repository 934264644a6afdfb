"""The effect study against the simulated book's truth: the intervals cover the true effect of
its lever (mid-sized book, minutes: the integration tier)."""

from __future__ import annotations

import datetime as dt
import time

import pandas as pd
import pytest
from scipy import stats

from pipeline.config import Config, EffectsConfig, GenerateConfig
from pipeline.effects import study as effects
from pipeline.effects.truth import add_truth, true_effects
from pipeline.simulator.simulate import Effects, simulate

D = dt.date


SLOW_SEED = 1
SLOW_CUSTOMERS = "6000"
SLOW_SNAPSHOTS = [
    D(2020, 7, 1),
    D(2021, 1, 1),
    D(2021, 7, 1),
    D(2022, 1, 1),
    D(2022, 7, 1),
    D(2023, 1, 1),
]


@pytest.mark.slow
def test_estimates_cover_the_simulated_truth(monkeypatch):
    """The estimates cover the simulator's true effects (family-wise 95%); the null lever is not
    significant; the naive difference is biased upwards for the risk-targeted contacts."""
    t0 = time.perf_counter()
    ecfg = EffectsConfig(refutations=("placebo",))
    monkeypatch.setattr(effects, "effects_config", lambda cfg: ecfg)
    gen = GenerateConfig(size=SLOW_CUSTOMERS)
    book = simulate(gen, seed=SLOW_SEED)
    study = effects.run_study(book.tables(), Config(), snapshots=SLOW_SNAPSHOTS)
    t_est = time.perf_counter() - t0

    # Marketing is the planted null: no term of the hazard reads it, so its truth is 0.
    assert Effects().marketing == 0.0
    causal = [lv for lv in ecfg.levers if lv.name != "marketing"]
    kept = {k: r.loc[r["kept"]] for k, r in study.rows.items()}
    truth = true_effects(gen, SLOW_SEED, causal, SLOW_SNAPSHOTS, rows=kept)
    truth = pd.concat([truth, pd.DataFrame([{"lever": "marketing", "true_effect_pp": 0.0}])])
    table = add_truth(study.table, truth).set_index("lever")
    print(
        table[["true_effect_pp", "naive_pp", "ate_pp", "ci_low_pp", "ci_high_pp", "n_treated"]]
        .round(2)
        .to_string(),
        f"\nestimation {t_est:.0f} s, total {time.perf_counter() - t0:.0f} s",
    )

    assert (table["n_snapshots"] == len(SLOW_SNAPSHOTS)).all()
    # Family-wise coverage (Bonferroni over the levers), as the study's placebo check: five 95%
    # intervals all cover their truth only about 77% of the time for a correct estimator. On
    # issue 21's book seed 1 missed two by 0.07 pp each; rerun on each loan's true default
    # probability instead of its 0/1 label, all 15 intervals of seeds 1-3 covered (the misses
    # were the book's default draws, not bias).
    z = stats.norm.ppf(1 - 0.05 / (2 * len(table)))
    miss = (table["ate_pp"] - table["true_effect_pp"]).abs() > z * table["se_pp"]
    assert not miss.any(), table.loc[miss, ["true_effect_pp", "ate_pp", "se_pp"]]
    assert table.loc["marketing", "verdict"] == "cannot tell"
    for lever in ("proactive_checkin", "payment_reminder"):
        r = table.loc[lever]
        assert r["naive_pp"] > r["ci_high_pp"]  # the naive difference lies outside the CI
        assert r["naive_pp"] - r["true_effect_pp"] > 1.0  # by more than a PD point
    assert table["placebo_pass"].all()
