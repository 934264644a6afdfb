"""The relationship effect study: treatment windows, inference helpers, the stage's outputs, and
(slow) the estimates against the simulator's counterfactual truth."""

from __future__ import annotations

import datetime as dt
import json

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from pydantic import ValidationError

from pipeline.config import Config, EffectsConfig, GenerateConfig, Lever, load_config
from pipeline.core.errors import DataError
from pipeline.effects import estimation, stage
from pipeline.effects import study as effects
from pipeline.effects.design import assign_treatment, study_frame, treatment_counts
from pipeline.effects.inference import cluster_mean, fit_dr, verdict
from pipeline.simulator.simulate import generate, simulate
from pipeline.stages import ingest
from tests.helpers import tiny_overrides

D = dt.date
TS = pd.Timestamp


def _crm(rows: list[tuple[int, str, str, object]]) -> pd.DataFrame:
    """CRM events (customer_id, timestamp, type, resolved)."""
    df = pd.DataFrame(rows, columns=["customer_id", "timestamp", "type", "resolved"])
    df["timestamp"] = pd.to_datetime(df["timestamp"]).astype("datetime64[us]")
    df["resolved"] = df["resolved"].astype("boolean")
    df["type"] = df["type"].astype("str")
    return df


# -- treatment construction ----------------------------------------------------------------------
def test_treatment_window_is_strictly_before_the_snapshot():
    crm = _crm(
        [
            (1, "2021-04-01 00:00:00", "proactive_checkin", None),  # on s: next window
            (1, "2021-03-31 23:59:59", "proactive_checkin", None),  # last second: in
            (2, "2021-01-01 00:00:00", "proactive_checkin", None),  # window start: in
            (3, "2020-12-31 23:59:59", "proactive_checkin", None),  # before the window
            (4, "2021-02-15 10:00:00", "marketing", None),  # another type
        ]
    )
    out = treatment_counts(crm, [D(2021, 4, 1)], "proactive_checkin", 3)
    got = dict(zip(out["customer_id"], out["n_events"], strict=True))
    assert got == {1: 1, 2: 1}
    assert out["snapshot_date"].eq(TS("2021-04-01")).all()


def test_treatment_counts_overlapping_windows_and_resolutions():
    crm = _crm(
        [
            (7, "2021-02-10", "complaint", True),
            (7, "2021-03-05", "complaint", False),
            (7, "2021-03-20", "complaint", None),  # resolution unknown: not resolved
            (8, "2021-01-20", "complaint", True),
        ]
    )
    snaps = [D(2021, 2, 1), D(2021, 3, 1), D(2021, 4, 1)]
    out = treatment_counts(crm, snaps, "complaint", 2).set_index(["customer_id", "snapshot_date"])
    # Windows: [Dec, Feb) [Jan, Mar) [Feb, Apr).
    assert out.loc[(8, TS("2021-02-01")), "n_events"] == 1
    assert out.loc[(8, TS("2021-03-01")), "n_events"] == 1
    assert (8, TS("2021-04-01")) not in out.index
    assert out.loc[(7, TS("2021-03-01"))].tolist() == [1, 1]
    assert out.loc[(7, TS("2021-04-01"))].tolist() == [3, 1]
    assert (7, TS("2021-02-01")) not in out.index


def test_treatment_counts_match_a_loop_on_the_simulated_book():
    book = simulate(GenerateConfig(size="tiny"), seed=3)
    crm = book.crm_interactions
    snaps = [D(2021, 1, 1), D(2021, 2, 1), D(2022, 6, 1)]
    got = treatment_counts(crm, snaps, "payment_reminder", 3)
    for s in snaps:
        lo = TS(s) - pd.DateOffset(months=3)
        ev = crm[(crm["type"] == "payment_reminder") & (crm["timestamp"] >= lo)]
        ev = ev[ev["timestamp"] < TS(s)]
        want = ev.groupby("customer_id").size()
        have = got[got["snapshot_date"] == TS(s)].set_index("customer_id")["n_events"]
        pd.testing.assert_series_equal(
            have.sort_index(), want.sort_index(), check_names=False, check_dtype=False
        )


def test_assign_treatment_contact_and_resolution():
    frame = pd.DataFrame(
        {"customer_id": [1, 2, 3, 4], "snapshot_date": [TS("2021-04-01")] * 4, "x": range(4)}
    )
    counts = pd.DataFrame(
        {
            "customer_id": [1, 2, 3],
            "snapshot_date": [TS("2021-04-01")] * 3,
            "n_events": [1, 2, 3],
            "n_resolved": [1, 2, 1],
        }
    )
    contact = assign_treatment(frame, counts, Lever(name="c", event_type="complaint", min_events=2))
    assert contact["treated"].tolist() == [0, 1, 1, 0]
    res = assign_treatment(
        frame, counts, Lever(name="r", event_type="complaint", kind="resolution")
    )
    # Only customers who complained; treated = every complaint resolved.
    assert res["customer_id"].tolist() == [1, 2, 3]
    assert res["treated"].tolist() == [1, 1, 0]


def test_controls_come_from_the_window_start_not_the_snapshot():
    s, pre = TS("2021-04-01"), TS("2021-03-01")
    matrix = pd.DataFrame(
        {
            "loan_id": [10, 10, 11, 12, 12],
            "customer_id": [1, 1, 2, 3, 3],
            "snapshot_date": [pre, s, s, pre, s],
            "label": pd.array([pd.NA, 1, 0, 0, pd.NA], dtype="Int8"),
            "dpd_now": [5.0, 60.0, 0.0, 1.0, 2.0],
            "region": pd.Categorical(["a", "b", "a", "b", "b"]),
        }
    )
    out = study_frame(matrix, [s.date()], {s.date(): pre.date()}, ["dpd_now", "region"])
    # Loan 11 has no row at the window start, loan 12 no label at s: only loan 10 is left.
    assert out["loan_id"].tolist() == [10]
    assert out["dpd_now"].tolist() == [5.0]  # the pre-window value, not 60 days at s
    assert out["label"].tolist() == [1]
    assert out["region"].tolist() == [0.0]


# -- inference helpers ---------------------------------------------------------------------------
def test_cluster_mean_widens_with_repeated_clusters():
    rng = np.random.default_rng(0)
    v = rng.normal(size=400)
    single = cluster_mean(v, np.arange(400))
    assert single.mean == pytest.approx(v.mean())
    iid = v.std(ddof=0) / np.sqrt(400) * np.sqrt(400 / 399)
    assert single.se == pytest.approx(iid, rel=1e-9)
    # The same values repeated 4 times in the same clusters: 4x the rows, not 4x the evidence.
    rep = cluster_mean(np.repeat(v, 4), np.repeat(np.arange(400), 4))
    assert rep.se == pytest.approx(single.se, rel=1e-9)
    assert rep.low < rep.mean < rep.high
    assert 0 <= rep.p_value <= 1


def test_verdicts():
    assert verdict(-0.5, -0.1) == "reduces default"
    assert verdict(0.1, 0.4) == "raises default"
    assert verdict(-0.2, 0.3) == "cannot tell"
    assert verdict(float("nan"), 0.3) == "not estimated"


def _confounded(n: int, effect: float, seed: int = 0):
    """Risky rows (high x) are treated more and default more; T lowers the default log-odds."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    t = (rng.random(n) < 1 / (1 + np.exp(-(1.2 * x[:, 0] - 0.3)))).astype(int)
    logit = -2.0 + 1.0 * x[:, 0] + 0.5 * x[:, 1] + effect * t
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)
    p1 = 1 / (1 + np.exp(-(logit - effect * t + effect)))
    p0 = 1 / (1 + np.exp(-(logit - effect * t)))
    return x, t, y, float((p1 - p0).mean())


def test_fit_dr_scores_reproduce_econml_and_remove_confounding():
    x, t, y, true_ate = _confounded(6000, effect=-0.8)
    ecfg = EffectsConfig(n_estimators=60, min_child_samples=50)
    fit = fit_dr(y, t, x, np.arange(len(y)) // 2, ecfg)
    # The mean of the cached scores is econml's own ATE: we read its cache correctly.
    assert fit.scores.mean() == pytest.approx(fit.library_ate, abs=1e-12)
    assert ((fit.propensity > 0) & (fit.propensity < 1)).all()
    est = cluster_mean(fit.scores, np.arange(len(y)) // 2)
    naive = y[t == 1].mean() - y[t == 0].mean()
    assert naive > 0 > true_ate  # the naive comparison gets the sign wrong
    assert est.low <= true_ate <= est.high
    assert est.high < 0


# -- configuration -------------------------------------------------------------------------------
def test_placebo_interval_is_bonferroni_over_the_levers():
    """One placebo per lever: its interval is at 1 - alpha / levers, so a study of five levers
    does not fail one by chance in a quarter of its runs."""
    x, t, y, _ = _confounded(3000, effect=-0.8, seed=1)
    d = pd.DataFrame(
        {
            "snapshot_date": np.repeat([1, 2], 1500),
            "treated": t,
            "baseline_pd": np.full(3000, y.mean()),
        }
    )
    groups = np.arange(len(y)) // 2
    widths = {}
    for n in (1, 5):
        levers = tuple(Lever(name=f"l{i}", event_type="marketing") for i in range(n))
        ecfg = EffectsConfig(levers=levers, n_estimators=30, min_child_samples=50,
                             refutations=("placebo",))  # fmt: skip
        est = cluster_mean(fit_dr(y, t, x, groups, ecfg).scores, groups)
        out = estimation._refute(levers[0], d, y, t, x, groups, est, ecfg, [])
        widths[n] = (out["placebo_pp"], out["placebo_ci_high_pp"] - out["placebo_ci_low_pp"])
    # The same permutation (keyed by seed and lever name), a wider interval.
    assert widths[5][0] == pytest.approx(widths[1][0])
    assert widths[5][1] / widths[1][1] == pytest.approx(2.5758 / 1.9600, rel=1e-3)


def test_effects_config_validates():
    cfg = EffectsConfig()
    assert [lv.name for lv in cfg.levers] == [
        "proactive_checkin",
        "payment_reminder",
        "financial_education",
        "complaint_resolution",
        "marketing",
    ]
    with pytest.raises(ValidationError, match="extra"):
        EffectsConfig(n_fold=3)
    with pytest.raises(ValidationError, match="propensity_bounds"):
        EffectsConfig(propensity_bounds=(0.6, 0.9))
    with pytest.raises(ValidationError, match="event_type"):
        Lever(name="x", event_type="phone_call")
    with pytest.raises(ValidationError, match="unique"):
        EffectsConfig(levers=(Lever(name="a", event_type="marketing"),) * 2)
    assert effects.effects_config(Config()) == EffectsConfig()


# -- the stage on a tiny generated book ---------------------------------------------------------
def test_run_writes_reports_and_mlflow_run(tmp_path, monkeypatch):
    ecfg = EffectsConfig(
        n_estimators=30, min_child_samples=20, min_arm_size=30, refutations=("placebo",)
    )
    monkeypatch.setattr(effects, "effects_config", lambda cfg: ecfg)
    snaps = ["features.first_snapshot=2021-01-01", "features.last_snapshot=2021-07-01"]
    cfg = load_config(None, [*tiny_overrides(tmp_path), *snaps])  # 400 customers
    generate(cfg.data.raw_dir, cfg.generate, seed=cfg.seed)
    ingest.run(cfg)
    summary = stage.run(cfg)
    print(summary)

    out = tmp_path / "reports" / "effects"
    table = pd.read_csv(out / "effects.csv")
    assert table["lever"].tolist() == [lv.name for lv in ecfg.levers]
    est = table[table["verdict"] != "not estimated"]
    assert len(est) >= 3
    assert (est["ci_low_pp"] <= est["ate_pp"]).all() and (est["ate_pp"] <= est["ci_high_pp"]).all()
    assert (est["n_treated"] + est["n_control"] == est["n_rows"]).all()
    # The generated book carries its truth: the table gains the true effects.
    assert est["true_effect_pp"].notna().all()
    assert "Reduce default" in summary and "cannot tell" in summary
    doc = json.loads((out / "effects.json").read_text())
    assert {"summary", "effects", "tiers", "overlap", "config"} <= set(doc)
    cate = json.loads((out / "cate.json").read_text())["levers"]
    assert {c["lever"] for c in cate} == set(est["lever"])  # every estimated lever's numbers
    assert all(len(c["coef"]) == len(c["modifiers"]) + 1 and c["verdict"] for c in cate)
    names = ("tiers.csv", "overlap.csv", "effects.html", "forest.png", "overlap.png")
    for name in (*names, "heterogeneity.csv", "policy.csv", "qini.csv", "qini.png"):
        assert (out / name).stat().st_size > 0, name
    # The generated book also gets the policy replay, and the section says how to judge a
    # policy on a real book.
    assert doc["policy"] is not None and "flagged" in doc["policy"]["note"]
    assert "randomised hold-out" in (out / "effects.html").read_text()

    mlflow.set_tracking_uri(cfg.mlflow.tracking_uri)
    runs = MlflowClient().search_runs(
        [mlflow.get_experiment_by_name(cfg.mlflow.experiment).experiment_id],
        filter_string="attributes.run_name = 'effects'",
    )
    assert len(runs) == 1
    lever = est["lever"].iloc[0]
    assert runs[0].data.metrics[f"{lever}.ate_pp"] == pytest.approx(est["ate_pp"].iloc[0])
    arts = {a.path for a in MlflowClient().list_artifacts(runs[0].info.run_id, "effects")}
    assert {"effects/forest.png", "effects/overlap.png", "effects/effects.csv"} <= arts


def test_run_without_ingested_tables_is_a_data_error(tmp_path):
    cfg = load_config(None, tiny_overrides(tmp_path))
    with pytest.raises(DataError, match="loanrisk ingest"):
        stage.run(cfg)


def test_write_results_publishes_the_study_whole(tmp_path, monkeypatch):
    """A study stopped while drawing its last plot leaves the previous study's files: never a
    table that disagrees with its plot and the report's section (two estimates of one lever)."""
    from matplotlib.figure import Figure

    from pipeline.effects import results
    from pipeline.effects.schema import EffectStudy

    monkeypatch.setattr(results, "summary_text", lambda study, truth_note="": "summary")
    monkeypatch.setattr(results, "html_section", lambda study: "<p>study</p>")
    monkeypatch.setattr(results, "forest_plot", lambda table: Figure())
    monkeypatch.setattr(results, "overlap_plot", lambda rows, bounds: Figure())

    def study(ate: float) -> EffectStudy:
        table = pd.DataFrame({"lever": ["checkin"], "ate_pp": [ate]})
        return EffectStudy(table, pd.DataFrame({"tier": ["A"]}), pd.DataFrame({"arm": [1]}))

    out = tmp_path / "effects"
    results.write_results(study(-1.0), out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    class Stopped(Figure):
        def savefig(self, *args, **kwargs):
            raise KeyboardInterrupt("stopped while drawing")

    monkeypatch.setattr(results, "overlap_plot", lambda rows, bounds: Stopped())
    with pytest.raises(KeyboardInterrupt):
        results.write_results(study(-2.0), out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert pd.read_csv(out / "effects.csv")["ate_pp"].tolist() == [-1.0]
