"""The simulated book: deterministic, realistic, and carrying every planted effect."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from pipeline.config import GenerateConfig
from pipeline.core.contract import REQUIRED, TABLES
from pipeline.simulator.simulate import Effects, generate, simulate


@pytest.fixture(scope="module")
def book():
    return simulate(GenerateConfig(size="default"), seed=7)


def _labels(book) -> pd.DataFrame:
    """Realised label per (loan, snapshot): 90+ DPD reached within 12 months after it."""
    r = book.repayments
    d90 = r["due_date"] + pd.Timedelta(days=90)
    bad = r["paid_date"].isna() | (r["paid_date"] > d90)
    first = d90[bad].groupby(r.loc[bad, "loan_id"]).min()
    tp = book.true_pd.copy()
    tp["d90"] = tp["loan_id"].map(first)
    end = tp["snapshot_date"] + pd.DateOffset(months=12)
    tp["label"] = ((tp["d90"] >= tp["snapshot_date"]) & (tp["d90"] < end)).astype(int)
    return tp[tp["snapshot_date"].dt.month.isin([1, 4, 7, 10])]


def test_same_seed_same_bytes(tmp_path):
    cfg = GenerateConfig(size="tiny")
    generate(tmp_path / "a", cfg, seed=3)
    generate(tmp_path / "b", cfg, seed=3)
    generate(tmp_path / "c", cfg, seed=4)
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.*"))
    assert len(files) == 6  # four tables + truth.json + true_pd

    def digest(root):
        return {f: hashlib.sha256((root / f).read_bytes()).hexdigest() for f in files}

    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    assert digest(tmp_path / "a") != digest(tmp_path / "c")


def test_tables_follow_the_contract(book):
    tables = book.tables()
    assert set(tables) == set(TABLES)
    for name, df in tables.items():
        assert set(REQUIRED[name]) <= set(df.columns), name
        assert len(df) > 0
    assert book.customers["customer_id"].is_unique
    assert book.loans["loan_id"].is_unique
    assert not book.repayments.duplicated(["loan_id", "installment_no"]).any()
    assert book.loans["customer_id"].isin(book.customers["customer_id"]).all()
    assert book.repayments["loan_id"].isin(book.loans["loan_id"]).all()
    assert book.crm_interactions["customer_id"].isin(book.customers["customer_id"]).all()
    merged = book.repayments.merge(book.loans, on="loan_id")
    assert (merged["due_date"] > merged["origination_date"]).all()
    paid = book.repayments.dropna(subset=["paid_date"])
    assert (paid["amount_paid"] > 0).all()
    sat = book.crm_interactions["satisfaction"].dropna()
    assert sat.between(1, 5).all() and book.crm_interactions["nps"].dropna().between(0, 10).all()


def test_realistic_default_rate_and_oracle_auc(book):
    lab = _labels(book)
    rate = lab["label"].mean()
    assert 0.02 <= rate <= 0.08
    auc = roc_auc_score(lab["label"], lab["true_pd"])
    assert 0.75 <= auc <= 0.90
    # The true PD is calibrated: its mean matches the realised rate.
    assert abs(lab["true_pd"].mean() - rate) < 0.006


def test_oracle_is_the_state_at_the_snapshot_not_the_drawn_future(book):
    lab = _labels(book)
    # Both truths are calibrated; knowing the drawn future can only sharpen the ranking.
    assert abs(lab["pd_given_path"].mean() - lab["label"].mean()) < 0.006
    state = roc_auc_score(lab["label"], lab["true_pd"])
    path = roc_auc_score(lab["label"], lab["pd_given_path"])
    assert state <= path + 0.002


def test_oracle_at_a_snapshot_ignores_what_is_forced_after_it():
    cfg = GenerateConfig(size="tiny")
    m = 30  # snapshot month; check-ins forced for everybody from then on
    base = simulate(cfg, seed=5)
    later = simulate(cfg, seed=5, levers={"proactive_checkin": True}, lever_months=(m, m + 12))
    s = pd.Timestamp(cfg.start) + pd.DateOffset(months=m)
    a, b = (
        bk.true_pd[bk.true_pd["snapshot_date"] == s].set_index("loan_id") for bk in (base, later)
    )
    assert len(a) > 100
    pd.testing.assert_series_equal(a["true_pd"], b["true_pd"])
    assert not np.allclose(a["pd_given_path"], b["pd_given_path"])


def test_downturn_year_has_more_defaults(book):
    lab = _labels(book)
    by_year = lab.groupby(lab["snapshot_date"].dt.year)["true_pd"].mean()
    assert by_year[2022] > 1.15 * by_year.drop(2022).mean()


def test_missing_values_are_present(book):
    assert 0.01 < book.customers["annual_income"].isna().mean() < 0.06
    assert book.crm_interactions["satisfaction"].isna().mean() > 0.5


@pytest.mark.parametrize(
    "lever",
    ["proactive_checkin", "payment_reminder", "financial_education", "complaint_resolution"],
)
def test_each_lever_lowers_the_true_pd(lever):
    cfg = GenerateConfig(size="small")
    on = simulate(cfg, seed=11, levers={lever: True}).true_pd["true_pd"].mean()
    off = simulate(cfg, seed=11, levers={lever: False}).true_pd["true_pd"].mean()
    assert on < off


def test_planted_null_has_no_effect_and_its_knob_is_live():
    cfg = GenerateConfig(size="small")
    base = simulate(cfg, seed=5)
    assert Effects().marketing == 0.0  # the default book's marketing is the planted null
    assert base.truth["effects"]["marketing_contacts"]["sign"] == 0
    # the coefficient is read by the hazard: set, marketing raises default, and the truth says so
    loud = simulate(cfg, seed=5, effects=Effects(marketing=0.5))
    assert loud.truth["effects"]["marketing_contacts"]["sign"] == 1
    assert loud.true_pd["true_pd"].mean() > base.true_pd["true_pd"].mean()


def test_unresolved_complaints_raise_the_hazard_and_satisfaction_enters_it():
    cfg = GenerateConfig(size="small")
    base = simulate(cfg, seed=2)
    no_unres = simulate(cfg, seed=2, effects=Effects(unresolved_complaint_6m=0.0))
    no_sat = simulate(cfg, seed=2, effects=Effects(satisfaction_per_sd=0.0))
    assert no_unres.true_pd["true_pd"].mean() < base.true_pd["true_pd"].mean()
    # satisfaction is centred, so removing it moves PDs both ways: the mean only has to move;
    # its direction is the truth's (protective), measured on the oracle
    assert no_sat.true_pd["true_pd"].mean() != base.true_pd["true_pd"].mean()
    assert base.truth["effects"]["satisfaction"]["sign"] == -1
    assert no_sat.truth["effects"]["satisfaction"]["sign"] == 0


def test_contact_is_confounded_with_risk(book):
    """The lender contacts risky customers more: naive association has the wrong sign."""
    crm = book.crm_interactions
    reminded = set(crm.loc[crm["type"] == "payment_reminder", "customer_id"])
    lab = _labels(book).merge(book.loans[["loan_id", "customer_id"]], on="loan_id")
    with_rem = lab["customer_id"].isin(reminded)
    assert lab.loc[with_rem, "label"].mean() > lab.loc[~with_rem, "label"].mean()


def test_activity_drops_before_default(book):
    """Customers go quiet before their missed payments start."""
    crm = book.crm_interactions
    inbound = crm[crm["type"] == "service_request"]
    r = book.repayments.merge(book.loans[["loan_id", "customer_id"]], on="loan_id")
    first_miss = r[r["paid_date"].isna()].groupby("customer_id")["due_date"].min()
    # Unpaid at the extraction date is not yet a missed-payment run: keep earlier ones.
    first_miss = first_miss[first_miss.between("2020-06-01", "2024-06-01")]
    # Only customers who borrowed through the whole comparison: one who joined with a loan a
    # few months before their first miss had no contacts yet 6-15 months before it.
    first_loan = book.loans.groupby("customer_id")["origination_date"].min()
    borrowing = first_loan.reindex(first_miss.index) < first_miss - pd.Timedelta(days=16 * 30.4)
    first_miss = first_miss[borrowing]
    ev = inbound[inbound["customer_id"].isin(first_miss.index)].copy()
    ev["months_before"] = (ev["customer_id"].map(first_miss) - ev["timestamp"]).dt.days / 30.4
    recent = ((ev["months_before"] > 0) & (ev["months_before"] <= 2)).sum() / 2
    earlier = ((ev["months_before"] > 6) & (ev["months_before"] <= 15)).sum() / 9
    assert recent < 0.6 * earlier


def test_truth_lists_every_effect_with_sign(book):
    eff = book.truth["effects"]
    for name in (
        "satisfaction",
        "resolved_complaint",
        "unresolved_complaint",
        "payment_reminder",
        "proactive_checkin",
        "contact_fatigue",
        "financial_education",
        "activity_drop",
        "tenure",
        "marketing_contacts",
    ):
        assert name in eff
        assert eff[name]["sign"] in (-1, 0, 1)
        assert eff[name]["features"]
    assert eff["unresolved_complaint"]["sign"] == 1
    assert eff["contact_fatigue"]["sign"] == 1
    assert eff["proactive_checkin"]["sign"] == -1


def test_truth_gives_each_effect_its_size_in_the_oracle(book):
    """attribution: the effect's mean |SHAP| in the oracle. The null has none; the big, common
    effects are large; fatigue (few customers over two contacts a month) is small."""
    eff = book.truth["effects"]
    assert eff["marketing_contacts"]["attribution"] == 0.0
    assert all(e["attribution"] > 0 for n, e in eff.items() if e.get("size"))
    assert (
        eff["satisfaction"]["attribution"] > 0.1 and eff["financial_education"]["attribution"] > 0.1
    )
    assert eff["contact_fatigue"]["attribution"] < 0.02
    # Who gets the exposure: the risk-targeted contacts are confounded against their effect.
    assert {n for n, e in eff.items() if e.get("confounding") == "opposite"} >= {
        "payment_reminder",
        "proactive_checkin",
    }


def test_true_pd_for_some_months_is_that_subset_of_all_months():
    from pipeline.simulator import simulate as sim_module

    seen = {}
    original = sim_module._Simulation._true_pd

    def spy(self, loan_ids, months=None):
        seen.setdefault("sim", (self, loan_ids))
        return original(self, loan_ids, months)

    sim_module._Simulation._true_pd = spy
    try:
        full = simulate(GenerateConfig(size="tiny"), seed=5).true_pd
    finally:
        sim_module._Simulation._true_pd = original
    sim, ids = seen["sim"]
    part = original(sim, ids, range(13, 30, 4))
    want = full[full["snapshot_date"].isin(part["snapshot_date"].unique())]
    assert part["snapshot_date"].nunique() == 5
    pd.testing.assert_frame_equal(part.reset_index(drop=True), want.reset_index(drop=True))


def test_originations_come_at_one_rate_through_the_horizon(book):
    """No month holds loans back or piles them up: the originations follow a flat rate (the
    simulator plants no seasonality or downturn in lending), with Poisson-sized noise."""
    months = book.loans["origination_date"].dt.to_period("M")
    counts = months.value_counts().reindex(
        pd.period_range("2019-01", "2024-12", freq="M"), fill_value=0
    )
    rate = counts.mean()
    z = (counts - rate) / np.sqrt(rate)
    assert z.abs().max() < 4.5, counts[z.abs() >= 4.5]
    # The last months are as busy as any: the end of the book is not a cut-off for lending.
    assert counts.iloc[-3:].min() > 0.75 * rate


def test_customers_join_throughout_the_horizon(book):
    """An open base: new customers join with their first loan in every year, so every snapshot
    mixes newcomers with customers of many years' standing."""
    cust = book.customers.set_index("customer_id")["customer_since"]
    first_loan = book.loans.groupby("customer_id")["origination_date"].min()
    assert (cust <= first_loan.reindex(cust.index)).all()
    joined_in = cust[cust >= "2019-01-01"].dt.year.value_counts()
    assert set(joined_in.index) == set(range(2019, 2025))
    assert joined_in.min() > 0.02 * len(cust)
    # Marketing reaches everyone every month, prospects included (else its count would measure
    # how long a customer had been with the lender, and the planted null would look protective).
    mkt = book.crm_interactions[book.crm_interactions["type"] == "marketing"]
    early = mkt["timestamp"] < cust.reindex(mkt["customer_id"]).to_numpy()
    assert 0.1 < early.mean() < 0.9
    loans = book.loans.merge(cust.rename("since"), left_on="customer_id", right_index=True)
    ends = loans["origination_date"] + pd.to_timedelta(loans["term_months"] * 30.44, unit="D")
    for s in pd.date_range("2020-01-01", "2025-01-01", freq="YS"):
        active = loans[(loans["origination_date"] < s) & (ends >= s)]
        tenure = (s - active["since"]).dt.days / 365.25
        assert (tenure < 1).mean() > 0.03, s
        assert (tenure > 5).mean() > 0.2, s


def test_missing_values_are_alike_at_every_snapshot(book):
    """The configured missing_rate (birth year, income) applies alike at every date, and the
    days-past-due features are never missing: a loan with nothing due yet has 0 days past due.
    (Features that say "never happened", such as months since the last delinquency, are missing
    more often where loans are younger: that is history, not a missing value.)"""
    from pipeline.config import load_config
    from pipeline.features import build_features_from_frames

    f, _ = build_features_from_frames(book.tables(), load_config(None))
    end = f["snapshot_date"].max()
    assert end == pd.Timestamp("2025-01-01")
    dpd = [c for c in f.columns if c.startswith("dpd_")]
    assert len(dpd) == 8 and not f[dpd].isna().any().any()
    assert (f["instalments_due_so_far"] == 0).groupby(f["snapshot_date"]).mean().loc[end] > 0.02
    blanked = f[["annual_income", "customer_age_years"]].isna().groupby(f["snapshot_date"]).mean()
    n_end = (f["snapshot_date"] == end).sum()
    share = blanked.drop(index=end).mean()
    # Four binomial standard errors of the end date's share.
    tolerance = 4 * np.sqrt(share * (1 - share) / n_end)
    assert ((blanked.loc[end] - share).abs() < tolerance).all(), (blanked.loc[end], share)
    assert (share.between(0.01, 0.06)).all()
