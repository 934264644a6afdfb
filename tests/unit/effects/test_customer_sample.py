"""The study on a sample of whole customers (`effects.max_customers`): which customers, what the
study and its truth run on, and what the summary says."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from pipeline.config import EffectsConfig, GenerateConfig, load_config
from pipeline.effects import stage, truth
from pipeline.effects import study as effects
from pipeline.effects.design import sample_customers
from pipeline.simulator import counterfactual
from pipeline.simulator.simulate import generate, simulate
from pipeline.stages import ingest
from tests.helpers import tiny_overrides


@pytest.fixture(scope="module")
def tables() -> dict[str, pd.DataFrame]:
    return simulate(GenerateConfig(size="tiny"), seed=3).tables()  # 400 customers


def test_the_sample_keeps_whole_customers(tables):
    sub, n_book = sample_customers(tables, 150, seed=42)
    assert n_book == 400
    chosen = set(sub["customers"]["customer_id"])
    assert len(chosen) == 150 == len(sub["customers"])
    # every loan, instalment and CRM event of a sampled customer, and nobody else's
    for name, key in (("loans", "customer_id"), ("crm_interactions", "customer_id")):
        whole = tables[name].loc[tables[name][key].isin(chosen)]
        assert len(sub[name]) == len(whole) > 0 and set(sub[name][key]) <= chosen
    their_loans = set(tables["loans"].loc[tables["loans"]["customer_id"].isin(chosen), "loan_id"])
    reps = tables["repayments"]
    assert len(sub["repayments"]) == int(reps["loan_id"].isin(their_loans).sum())
    assert set(sub["repayments"]["loan_id"]) == their_loans & set(reps["loan_id"])


def test_the_sample_is_deterministic_from_the_seed(tables):
    ids = lambda t: t["customers"]["customer_id"].tolist()  # noqa: E731
    first = ids(sample_customers(tables, 150, seed=42)[0])
    assert first == ids(sample_customers(tables, 150, seed=42)[0])
    # the tables' row order does not matter, the seed does
    shuffled = {k: v.sample(frac=1.0, random_state=1) for k, v in tables.items()}
    assert sorted(first) == sorted(ids(sample_customers(shuffled, 150, seed=42)[0]))
    assert sorted(first) != sorted(ids(sample_customers(tables, 150, seed=43)[0]))
    # no sample when the book is not bigger than it
    for k in (None, 400, 1000):
        same, n = sample_customers(tables, k, seed=42)
        assert n == 400 and all(same[t] is tables[t] for t in tables)


def test_max_customers_is_validated():
    assert EffectsConfig().max_customers is None
    assert load_config(None, []).effects.max_customers == 20_000  # the default book: all
    with pytest.raises(ValidationError):
        EffectsConfig(max_customers=10)


def test_a_sampled_study_runs_and_is_checked_on_its_sample(tmp_path, monkeypatch):
    """Rows, truth and replay come from the sampled customers; the truth simulates only them
    and equals the whole book's simulation over the same rows; the summary names the sample."""
    ecfg = EffectsConfig(
        n_estimators=20,
        min_child_samples=20,
        min_arm_size=20,
        refutations=("placebo",),
        max_customers=250,
        truth_snapshots=2,
    )
    monkeypatch.setattr(effects, "effects_config", lambda cfg: ecfg)
    snaps = ["features.first_snapshot=2021-01-01", "features.last_snapshot=2021-07-01"]
    cfg = load_config(None, [*tiny_overrides(tmp_path), *snaps])  # 400 customers
    generate(cfg.data.raw_dir, cfg.generate, seed=cfg.seed)
    ingest.run(cfg)
    tables = stage.read_interim(cfg.data.interim_dir)
    study = effects.run_study(tables, cfg)
    assert (study.customers, study.customers_in_book, study.sampled) == (250, 400, True)
    sampled = set(sample_customers(tables, 250, ecfg.seed)[0]["customers"]["customer_id"])
    assert study.rows and all(set(r["customer_id"]) <= sampled for r in study.rows.values())

    simulated: list[int] = []
    real = counterfactual.lever_pd

    def spy(*args, customers=None, **kw):
        simulated.append(-1 if customers is None else len(customers))
        return real(*args, customers=customers, **kw)

    monkeypatch.setattr(truth, "lever_pd", spy)
    got, note = truth.truth_for_book(cfg, tables, study)
    assert got is not None, note
    assert simulated and 0 < max(simulated) <= 250  # the sample only, never the whole book
    # the check that stands in for re-simulating the whole book fails on another book
    gen, seed = truth.generated_book(cfg, 12)
    loans = pd.concat(study.rows.values())["loan_id"]
    last = max(study.snapshots)
    assert truth.reproduces_true_pd(gen, seed, 12, loans, last, cfg)
    assert not truth.reproduces_true_pd(gen, seed + 1, 12, loans, last, cfg)
    kept = {k: r.loc[r["kept"]] for k, r in study.rows.items()}
    picked = truth.sample_snapshots(study.snapshots, ecfg.truth_snapshots)
    for _, r in got.iterrows():
        rows = kept[r["lever"]]
        on = pd.to_datetime(rows["snapshot_date"]).isin([pd.Timestamp(s) for s in picked])
        assert r["n_rows"] == int(on.sum()) > 0  # averaged over the study's own rows
    # the whole book simulated gives the same truth over those rows
    monkeypatch.setattr(truth, "customers_of_loans", lambda *a, **k: None)
    whole = truth.true_effects(
        *truth.generated_book(cfg, 12),
        [lv for lv in ecfg.levers if lv.name in kept],
        study.snapshots,
        rows=kept,
        sample=ecfg.truth_snapshots,
    )
    np.testing.assert_array_equal(got["true_effect_pp"], whole["true_effect_pp"])
    monkeypatch.undo()

    monkeypatch.setattr(effects, "effects_config", lambda cfg: ecfg)
    summary = stage.run(cfg)
    assert "on a random sample of 250 of the 400 customers" in summary
    assert "CIs cover the true effect" in summary
    doc = json.loads((tmp_path / "reports" / "effects" / "effects.json").read_text())
    assert (doc["customers"], doc["customers_in_book"]) == (250, 400)
    assert doc["policy"] is not None and "flagged" in doc["policy"]["note"]
    # the sample's share of the monthly contact budget, not the whole book's budget
    budget = round(ecfg.monthly_contact_budget * 250 / 400)
    assert f"{budget:,} for the sample's 62% of the customers" in doc["policy"]["note"]
