"""Batch scoring on the tiny logged model: output, chunking, atomicity, schema errors, drift."""

from __future__ import annotations

import copy
import json

import lightgbm as lgb
import mlflow
import numpy as np
import pandas as pd
import pytest
from tiny_model import FEATURES, make_book, own_output

from pipeline.config import Config, ExplainConfig, GenerateConfig, MlflowConfig, ScoringConfig
from pipeline.core.errors import ConfigError, DataError, ModelError
from pipeline.modelling.calibration import fit_calibrator
from pipeline.modelling.model import build_reference, log_model
from pipeline.scoring import run as score_mod
from pipeline.scoring.core import load_scoring_model, score_frame
from pipeline.scoring.run import run_score, summary_path
from tests.helpers import REPO

REASONS = ["reason_1", "reason_2", "reason_3"]
# each reason text with its signed contribution in PD points beside it
REASON_COLUMNS = [c for r in REASONS for c in (r, f"{r}_pd_points")]
COLUMNS = [
    "loan_id", "as_of_date", "status", "pd", "points", "tier", *REASON_COLUMNS,
    "model_name", "model_version",
]  # fmt: skip


@pytest.fixture(scope="module")
def uri(logged):
    return logged[0].model_uri


def _cfg(logged, chunk_rows: int = 200_000) -> Config:
    return Config(
        mlflow=MlflowConfig(tracking_uri=logged[2]),
        scoring=ScoringConfig(chunk_rows=chunk_rows),
        output=own_output(logged),
    )


def _portfolio(tmp_path, n=60, seed=21, shift=0.0, name="portfolio.parquet"):
    book = make_book(n, seed=seed, shift=shift)
    path = tmp_path / name
    if path.suffix == ".csv":
        book.to_csv(path, index=False)
    else:
        book.to_parquet(path, index=False)
    return book, path


def test_scores_written_with_summary(tmp_path, logged, uri):
    book, src = _portfolio(tmp_path)
    out = tmp_path / "scores" / "scored.parquet"
    summary = run_score(src, out, model_uri=uri, cfg=_cfg(logged))
    scores = pd.read_parquet(out)
    assert list(scores.columns) == COLUMNS
    assert scores["loan_id"].tolist() == book["loan_id"].tolist()
    assert (scores["as_of_date"] == pd.Timestamp("2024-03-31")).all()
    model = mlflow.pyfunc.load_model(uri)
    expected = model.predict(book)
    np.testing.assert_allclose(scores["pd"], expected["pd"], rtol=1e-12)
    np.testing.assert_allclose(scores["points"], expected["points"], rtol=1e-12)
    assert scores["tier"].tolist() == expected["tier"].tolist()
    assert (scores["reason_1"] != "").any()
    assert scores["model_version"].str.startswith("m-").all()  # a logged-model URI

    saved = json.loads(summary_path(out).read_text())
    assert saved["n_loans"] == summary.n_loans == len(book)
    assert sum(saved["tiers"].values()) == len(book)
    assert list(saved["tiers"]) == ["A", "B", "C", "D", "E"]  # best to worst, zeros kept
    assert saved["expected_defaults"] == pytest.approx(expected["pd"].sum())
    q = saved["pd_quantiles"]
    assert q["p01"] <= q["p50"] <= q["p99"]
    assert saved["as_of"] == ["2024-03-31"]
    assert set(saved["psi_features"]) == set(FEATURES)
    assert "Scored 60 loans" in str(summary)


def test_chunked_and_unchunked_outputs_identical(tmp_path, logged, uri):
    _, src = _portfolio(tmp_path, n=50)
    one = run_score(src, tmp_path / "one.parquet", model_uri=uri, cfg=_cfg(logged))
    seven = run_score(src, tmp_path / "seven.parquet", model_uri=uri, cfg=_cfg(logged, 7))
    a, b = pd.read_parquet(tmp_path / "one.parquet"), pd.read_parquet(tmp_path / "seven.parquet")
    pd.testing.assert_frame_equal(a, b)
    assert pq_row_groups(tmp_path / "seven.parquet") == 8  # 50 rows in chunks of 7
    assert one.tiers == seven.tiers and one.psi_features == seven.psi_features


def pq_row_groups(path) -> int:
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_row_groups


def test_csv_in_and_out_match_parquet(tmp_path, logged, uri):
    _, src_pq = _portfolio(tmp_path, n=30)
    _, src_csv = _portfolio(tmp_path, n=30, name="portfolio.csv")
    run_score(src_pq, tmp_path / "a.parquet", model_uri=uri, cfg=_cfg(logged))
    run_score(src_csv, tmp_path / "b.csv", model_uri=uri, cfg=_cfg(logged, 7))
    a = pd.read_parquet(tmp_path / "a.parquet")
    b = pd.read_csv(tmp_path / "b.csv", keep_default_na=False)
    assert b["loan_id"].tolist() == a["loan_id"].tolist()
    np.testing.assert_allclose(b["pd"], a["pd"], rtol=1e-9)
    assert b["reason_1"].tolist() == a["reason_1"].tolist()
    assert len(b) == 30  # header written once


def test_atomic_when_scoring_fails_midway(tmp_path, logged, uri, monkeypatch):
    _, src = _portfolio(tmp_path, n=30)
    real = load_scoring_model(uri)
    calls = {"n": 0}
    broken = copy.copy(real.model)

    def explode_on_second(X):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("boom on chunk 2")
        return real.model.predict_prepared(X)

    broken.predict_prepared = explode_on_second
    monkeypatch.setattr(
        score_mod, "load_scoring_model", lambda u: score_mod.ScoringModel(broken, u, "x", "1")
    )
    out = tmp_path / "out" / "scores.parquet"
    out.parent.mkdir()
    out.write_bytes(b"previous content")
    with pytest.raises(RuntimeError, match="boom"):
        run_score(src, out, model_uri=uri, cfg=_cfg(logged, 7))
    assert out.read_bytes() == b"previous content"
    assert sorted(p.name for p in out.parent.iterdir()) == ["scores.parquet"]  # no temp left
    calls["n"] = 0
    fresh = tmp_path / "out" / "new.csv"
    with pytest.raises(RuntimeError, match="boom"):
        run_score(src, fresh, model_uri=uri, cfg=_cfg(logged, 7))
    assert not fresh.exists() and not summary_path(fresh).exists()


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_missing_columns_listed(tmp_path, logged, uri, suffix):
    book = make_book(10, seed=2).drop(columns=["dpd_now", "product", "loan_id"])
    src = tmp_path / f"bad{suffix}"
    book.to_parquet(src) if suffix == ".parquet" else book.to_csv(src, index=False)
    out = tmp_path / "never.parquet"
    with pytest.raises(ModelError, match="3 column.*loan_id, dpd_now, product"):
        run_score(src, out, model_uri=uri, cfg=_cfg(logged))
    assert not out.exists()


def test_extra_columns_ignored(tmp_path, logged, uri):
    book = make_book(25, seed=3)
    model = load_scoring_model(uri)
    noisy = book.assign(customer_name="Jane Doe", notes="x", dpd_now_copy=book["dpd_now"] * 9)
    pd.testing.assert_frame_equal(score_frame(model, noisy), score_frame(model, book))


def test_drift_flagged_on_shifted_portfolio_only(tmp_path, logged, uri):
    _, stable_src = _portfolio(tmp_path, n=2000, seed=31, name="stable.parquet")
    _, shifted_src = _portfolio(tmp_path, n=2000, seed=32, shift=1.0, name="shifted.parquet")
    stable = run_score(stable_src, tmp_path / "s.parquet", model_uri=uri, cfg=_cfg(logged, 500))
    shifted = run_score(shifted_src, tmp_path / "t.parquet", model_uri=uri, cfg=_cfg(logged, 500))
    assert stable.drift_alerts == [] and stable.drift_warnings == []
    assert stable.psi_score < 0.1
    assert shifted.psi_score > 0.25
    assert {"score", "dpd_now", "late_count_6m", "product"} <= set(shifted.drift_alerts)
    assert max(shifted.psi_features.values()) == next(iter(shifted.psi_features.values()))


def test_unresolvable_model_uri_is_a_model_error_with_a_hint(tmp_path, logged):
    _, src = _portfolio(tmp_path, n=5)
    with pytest.raises(ModelError, match=r"(?s)models:/nope@champion.*not found.*loanrisk train"):
        run_score(src, tmp_path / "x.parquet", model_uri="models:/nope@champion", cfg=_cfg(logged))


def _register(logged, name: str) -> str:
    info = logged[0]
    return str(mlflow.register_model(info.model_uri, name).version)


def test_registered_alias_gives_name_and_version(tmp_path, logged):
    version = _register(logged, "lr-score")
    mlflow.MlflowClient().set_registered_model_alias("lr-score", "champion", version)
    model = load_scoring_model("models:/lr-score@champion")
    assert (model.name, model.version) == ("lr-score", version)
    assert model.pinned_uri == f"models:/lr-score/{version}"
    assert load_scoring_model(f"models:/lr-score/{version}").version == version
    out = score_frame(model, make_book(5, seed=4), top_k=2)
    assert out.columns.tolist() == COLUMNS  # top_k=2 keeps the third column, empty
    assert (out["reason_3"] == "").all() and out["reason_3_pd_points"].isna().all()
    assert (out["model_name"] == "lr-score").all()


def test_a_promotion_while_loading_does_not_relabel_the_scores(logged, monkeypatch):
    # The alias was resolved twice (to load, then to name the version): a promotion in between
    # labelled v1's PDs as v2. Now it is resolved once and that version is what gets loaded.
    client = mlflow.MlflowClient()
    v1, v2 = _register(logged, "lr-race"), _register(logged, "lr-race")
    client.set_registered_model_alias("lr-race", "champion", v1)
    loaded = []
    real_download = mlflow.artifacts.download_artifacts

    def download_then_promote(*a, artifact_uri, **kw):
        path = real_download(*a, artifact_uri=artifact_uri, **kw)
        loaded.append(artifact_uri.rsplit("/", 1)[1])  # the version the files came from
        client.set_registered_model_alias("lr-race", "champion", v2)  # another run promotes
        return path

    # models are fetched, checked, then loaded from the copy (pipeline.modelling.trust)
    monkeypatch.setattr(mlflow.artifacts, "download_artifacts", download_then_promote)
    model = load_scoring_model("models:/lr-race@champion")
    assert loaded == [v1]
    assert model.version == v1 != v2


def test_bad_options_and_inputs(tmp_path, logged, uri):
    _, src = _portfolio(tmp_path, n=5)
    cfg = _cfg(logged)
    with pytest.raises(ConfigError, match="format"):
        run_score(src, tmp_path / "x.out", model_uri=uri, fmt="xlsx", cfg=cfg)
    with pytest.raises(ConfigError, match="not a date"):
        run_score(src, tmp_path / "x.parquet", model_uri=uri, as_of="last tuesday", cfg=cfg)
    with pytest.raises(DataError, match="does not exist"):
        run_score(tmp_path / "nope.parquet", tmp_path / "x.parquet", model_uri=uri, cfg=cfg)
    with pytest.raises(DataError, match="no loans to score at 2020-01-01"):
        run_score(src, tmp_path / "x.parquet", model_uri=uri, as_of="2020-01-01", cfg=cfg)
    assert not (tmp_path / "x.parquet").exists()


def test_as_of_selects_one_snapshot_of_a_matrix(tmp_path, logged, uri):
    a, b = make_book(10, seed=5), make_book(12, seed=6)
    b["snapshot_date"] = pd.Timestamp("2024-06-30")
    src = tmp_path / "two.parquet"
    pd.concat([a, b]).to_parquet(src)
    s = run_score(src, tmp_path / "o.parquet", model_uri=uri, as_of="2024-06-30", cfg=_cfg(logged))
    assert s.n_loans == 12 and s.as_of == ["2024-06-30"]
    assert pd.read_parquet(tmp_path / "o.parquet")["loan_id"].tolist() == b["loan_id"].tolist()


@pytest.mark.training
def test_raw_tables_folder_scored_at_data_end(tmp_path, logged):
    """Raw tables -> ingest + features at the data end -> same scores as the matrix built by
    hand, with a tiny model trained on the real feature set."""
    from pipeline.features.engine import build_features_from_frames
    from pipeline.features.snapshots import data_end_date
    from pipeline.modelling.matrix import categories_of, to_model_frame
    from pipeline.simulator.simulate import generate
    from pipeline.sources.validation import validate_tables

    cfg = _cfg(logged, chunk_rows=64)
    book = generate(tmp_path / "raw", GenerateConfig(size="tiny"), seed=3)
    tables = validate_tables(book.tables())
    matrix, specs = build_features_from_frames(tables, cfg)
    train = matrix[matrix["label"].notna()]
    cats = categories_of(train, specs)
    X = to_model_frame(train, specs, cats)
    params = {"objective": "binary", "num_threads": 1, "verbose": -1, "num_leaves": 7}
    booster = lgb.train(params, lgb.Dataset(X, train["label"].astype(int)), num_boost_round=20)
    cal, _ = fit_calibrator(train["label"].astype(int), booster.predict(X), "platt")
    with mlflow.start_run():
        ref = build_reference(X, cal.apply(booster.predict(X)), cfg.scoring)
        info = log_model(booster, cal, specs, cats, cfg.scoring, ref, train)

    out = tmp_path / "scores.parquet"
    summary = run_score(tmp_path / "raw", out, model_uri=info.model_uri, cfg=cfg)
    end = data_end_date(tables)
    expected_rows, _ = build_features_from_frames(tables, cfg, snapshots=[end])
    scores = pd.read_parquet(out)
    assert summary.as_of == [end.isoformat()] and len(scores) == len(expected_rows) > 0
    assert scores["loan_id"].tolist() == expected_rows["loan_id"].tolist()
    p = cal.apply(booster.predict(to_model_frame(expected_rows, specs, cats)))
    np.testing.assert_allclose(scores["pd"], p, rtol=1e-12)
    # no personal fields in the output
    assert not {"birth_year", "annual_income", "customer_id"} & set(scores.columns)


# --------------------------------------------------------------------------------------------
# Early-warning list, PD distribution, drift exit code, schema, kill safety
# --------------------------------------------------------------------------------------------
EW_COLUMNS = [
    "loan_id", "customer_id", "as_of_date", "pd", "points", "tier", "previous_tier",
    "tier_change", "trigger", "outstanding_balance", "dpd_now",
]  # fmt: skip


def _ew_cfg(logged, threshold: float, chunk_rows: int = 200_000) -> Config:
    return Config(
        mlflow=MlflowConfig(tracking_uri=logged[2]),
        scoring=ScoringConfig(chunk_rows=chunk_rows, early_warning_pd=threshold),
    )


def test_early_warning_lists_worsened_tiers_and_high_pd(tmp_path, logged, uri):
    from pipeline.scoring.run import early_warning_path

    _, src = _portfolio(tmp_path, n=200, seed=41)
    first = tmp_path / "jan.parquet"
    run_score(src, first, model_uri=uri, cfg=_cfg(logged))
    jan = pd.read_parquet(first)
    order = ["A", "B", "C", "D", "E"]
    # a previous run in which every third loan was one tier better (and loan 0 unknown)
    prev = jan[["loan_id", "tier"]].copy()
    better = prev.index % 3 == 0
    prev.loc[better, "tier"] = [order[max(order.index(t) - 1, 0)] for t in prev.loc[better, "tier"]]
    prev = prev.iloc[1:]
    prev_path = tmp_path / "prev.csv"
    prev.to_csv(prev_path, index=False)

    threshold = float(np.quantile(jan["pd"], 0.9))
    out = tmp_path / "feb.csv"
    summary = run_score(
        src, out, model_uri=uri, cfg=_ew_cfg(logged, threshold, 17), previous=prev_path
    )
    ew_file = early_warning_path(out)
    assert ew_file == tmp_path / "feb.early_warning.csv"
    ew = pd.read_csv(ew_file, keep_default_na=False)
    assert ew.columns.tolist()[: len(EW_COLUMNS)] == EW_COLUMNS
    assert ew.columns.tolist()[len(EW_COLUMNS) : len(EW_COLUMNS) + 6] == REASON_COLUMNS
    assert ew["pd"].is_monotonic_decreasing  # riskiest first, not by loan_id

    prev_tier = dict(zip(prev["loan_id"], prev["tier"], strict=True))
    rank = {t: i for i, t in enumerate(order)}
    # one notch down flags a loan only when it lands in D or E (scoring.early_warning_tiers)
    worse = {
        lid
        for lid, t in zip(jan["loan_id"], jan["tier"], strict=True)
        if lid in prev_tier and rank[t] > rank[prev_tier[lid]] and t in ("D", "E")
    }
    one_notch_elsewhere = {
        lid
        for lid, t in zip(jan["loan_id"], jan["tier"], strict=True)
        if lid in prev_tier and rank[t] > rank[prev_tier[lid]] and t not in ("D", "E")
    }
    assert one_notch_elsewhere  # e.g. A->B: not an early warning
    high = set(jan.loc[jan["pd"] >= threshold, "loan_id"])
    assert worse and high - worse  # both triggers exercised
    assert set(ew["loan_id"]) == worse | high
    by_id = ew.set_index("loan_id")
    for lid in worse & high:
        assert by_id.loc[lid, "trigger"] == "tier_worsened+pd_threshold"
    for lid in worse - high:
        assert by_id.loc[lid, "trigger"] == "tier_worsened"
        assert by_id.loc[lid, "previous_tier"] == prev_tier[lid]
        assert by_id.loc[lid, "tier_change"] == f"{prev_tier[lid]}->{by_id.loc[lid, 'tier']}"
    book = make_book(200, seed=41).set_index("loan_id")
    assert (by_id["customer_id"] == book.loc[by_id.index, "customer_id"]).all()
    assert np.allclose(by_id["dpd_now"], book.loc[by_id.index, "dpd_now"])
    assert (by_id.loc[list(high - worse), "trigger"] == "pd_threshold").all()
    feb = pd.read_csv(out, keep_default_na=False).set_index("loan_id")
    assert (ew["reason_1"] != "").any()
    assert by_id[REASONS].equals(feb.loc[by_id.index, REASONS])  # the loans' own reasons
    assert by_id["pd"].equals(feb.loc[by_id.index, "pd"])
    assert summary.n_early_warning == len(ew)
    assert (summary.n_tier_worsened, summary.n_pd_threshold) == (len(worse), len(high))
    assert summary.n_matched_previous == len(prev)
    saved = json.loads(summary_path(out).read_text())
    assert saved["n_early_warning"] == len(ew) and saved["early_warning"] == str(ew_file)


def test_early_warning_without_previous_is_the_pd_threshold_list(tmp_path, logged, uri):
    from pipeline.scoring.run import early_warning_path

    _, src = _portfolio(tmp_path, n=80, seed=42)
    out = tmp_path / "s.parquet"
    s = run_score(src, out, model_uri=uri, cfg=_ew_cfg(logged, 0.999, 9))
    ew = pd.read_parquet(early_warning_path(out))
    assert len(ew) == 0 == s.n_early_warning  # nobody that risky: an empty list with a schema
    assert ew.columns.tolist()[: len(EW_COLUMNS)] == EW_COLUMNS
    s = run_score(src, out, model_uri=uri, cfg=_ew_cfg(logged, 0.05, 9))
    ew = pd.read_parquet(early_warning_path(out))
    scores = pd.read_parquet(out)
    high = scores[scores["pd"] >= 0.05].sort_values(["pd", "loan_id"], ascending=[False, True])
    assert ew["loan_id"].tolist() == high["loan_id"].tolist()
    assert (ew["trigger"] == "pd_threshold").all() and ew["previous_tier"].isna().all()
    assert (ew["tier_change"] == "").all()
    assert s.previous is None and s.n_early_warning == len(ew) > 0
    assert "tier worsened" not in str(s) and "since" not in str(s)  # no previous: no tier moves


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda d: d.drop(columns=["tier"]), "lack column.*tier"),
        (lambda d: pd.concat([d, d.head(2)]), r"2 loan_id\(s\) appear more than once"),
        (lambda d: d.assign(tier="Z"), "tier.*Z.*not tiers"),
    ],
)
def test_bad_previous_file_is_a_data_error(tmp_path, logged, uri, make, match):
    _, src = _portfolio(tmp_path, n=20, seed=43)
    run_score(src, tmp_path / "a.parquet", model_uri=uri, cfg=_cfg(logged))
    make(pd.read_parquet(tmp_path / "a.parquet")).to_parquet(tmp_path / "prev.parquet")
    with pytest.raises(DataError, match=match):
        run_score(
            src,
            tmp_path / "b.parquet",
            model_uri=uri,
            cfg=_cfg(logged),
            previous=tmp_path / "prev.parquet",
        )
    assert not (tmp_path / "b.parquet").exists()


def test_summary_pd_distribution_vs_training(tmp_path, logged, uri):
    from pipeline.modelling.model import PD_KEY

    _, src = _portfolio(tmp_path, n=300, seed=44)
    s = run_score(src, tmp_path / "o.parquet", model_uri=uri, cfg=_cfg(logged, 50))
    ref = logged[1]["reference"][PD_KEY]
    dist = s.pd_distribution
    assert [d["training_share"] for d in dist][: len(ref["shares"])] == ref["shares"]
    assert sum(d["loans"] for d in dist) == 300
    assert sum(d["portfolio_share"] for d in dist) == pytest.approx(1.0)
    assert s.psi_pd == pytest.approx(sum(d["psi"] for d in dist))
    p = pd.read_parquet(tmp_path / "o.parquet")["pd"]
    assert s.expected_defaults == pytest.approx(p.sum()) and s.mean_pd == pytest.approx(p.mean())
    saved = json.loads(summary_path(tmp_path / "o.parquet").read_text())
    assert saved["pd_distribution"] == dist and saved["model_version"] == s.model_version


def _cli(args):
    from typer.testing import CliRunner

    from pipeline.cli import app

    return CliRunner().invoke(app, args)


def test_fail_on_drift_exit_code_through_the_cli(tmp_path, logged, uri):
    from pipeline.cli import DRIFT_EXIT_CODE

    _, stable = _portfolio(tmp_path, n=2000, seed=31, name="stable.parquet")
    _, shifted = _portfolio(tmp_path, n=2000, seed=32, shift=1.0, name="shifted.parquet")
    common = ["--model", uri, "-o", f"mlflow.tracking_uri={logged[2]}", "--fail-on-drift"]
    ok = _cli(["score", "--input", str(stable), "--out", str(tmp_path / "s.parquet"), *common])
    assert ok.exit_code == 0, ok.output
    bad = _cli(["score", "--input", str(shifted), "--out", str(tmp_path / "t.parquet"), *common])
    assert DRIFT_EXIT_CODE == 3 and bad.exit_code == DRIFT_EXIT_CODE, bad.output
    assert "drift alert" in bad.output and "score" in bad.output
    assert (tmp_path / "t.parquet").exists()  # outputs are written before the exit
    # without the flag the same drifted portfolio exits 0
    plain = _cli(
        ["score", "--input", str(shifted), "--out", str(tmp_path / "u.parquet"), *common[:4]]
    )
    assert plain.exit_code == 0, plain.output
    usage = _cli(
        ["score", "--input", str(tmp_path / "nope.parquet"), "--out", "x.parquet", *common]
    )
    assert usage.exit_code == 2 and "does not exist" in usage.output


def test_mistyped_columns_listed(tmp_path, logged, uri):
    book = make_book(10, seed=7)
    book["dpd_now"] = pd.Timestamp("2024-01-01")
    book["late_count_6m"] = [[1.0]] * len(book)
    src = tmp_path / "typed.parquet"
    book.to_parquet(src)
    with pytest.raises(ModelError, match=r"2 column.*dpd_now \(timestamp.*late_count_6m \(list"):
        run_score(src, tmp_path / "o.parquet", model_uri=uri, cfg=_cfg(logged))
    text = make_book(10, seed=7).astype({"dpd_now": "str"})
    text.loc[3, "dpd_now"] = "n/a days"
    text.to_parquet(src)
    with pytest.raises(ModelError, match="non-numeric values: dpd_now"):
        run_score(src, tmp_path / "o.parquet", model_uri=uri, cfg=_cfg(logged))


def test_unseen_category_scored_as_missing_and_extra_columns_ignored(tmp_path, logged, uri):
    book = make_book(30, seed=8)
    unseen = book.assign(product="boat", customer_name="x", label=9)
    missing = book.assign(product=None)
    src_u, src_m = tmp_path / "u.parquet", tmp_path / "m.parquet"
    unseen.to_parquet(src_u)
    missing.to_parquet(src_m)
    run_score(src_u, tmp_path / "ou.parquet", model_uri=uri, cfg=_cfg(logged))
    run_score(src_m, tmp_path / "om.parquet", model_uri=uri, cfg=_cfg(logged))
    a, b = pd.read_parquet(tmp_path / "ou.parquet"), pd.read_parquet(tmp_path / "om.parquet")
    np.testing.assert_array_equal(a["pd"], b["pd"])
    assert list(a.columns) == COLUMNS  # the extra columns are not carried over
    assert not a["reason_1"].str.contains("boat").any()


def test_chunked_and_unchunked_agree_exactly_csv_and_early_warning(tmp_path, logged, uri):
    from pipeline.scoring.run import early_warning_path

    _, src = _portfolio(tmp_path, n=41, seed=45, name="p.csv")
    outs = {}
    for rows in (1, 13, 1000):
        out = tmp_path / f"c{rows}.csv"
        run_score(src, out, model_uri=uri, cfg=_ew_cfg(logged, 0.1, rows))
        outs[rows] = (out.read_bytes(), early_warning_path(out).read_bytes())
    assert outs[1] == outs[13] == outs[1000]


def test_sigkill_mid_run_leaves_previous_output_intact(tmp_path, logged, uri):
    """A real process killed while writing: the target keeps its old bytes, no partial file
    appears under the target's name, only a hidden temporary file is left, and a re-run works.
    Slow enough by construction: 20k loans in chunks of 50 (400 chunks, each written, ~25 s
    in all), killed as soon as the first chunk is on disk."""
    import os
    import signal
    import subprocess
    import sys
    import time

    root = REPO
    _, src = _portfolio(tmp_path, n=20_000, seed=46)
    out = tmp_path / "out" / "scores.parquet"
    out.parent.mkdir()
    out.write_bytes(b"last month's scores")
    summary_path(out).write_bytes(b"{}")
    cmd = [
        sys.executable, "-m", "pipeline.cli", "-q", "score", "--input", str(src), "--out",
        str(out), "--model", uri, "-o", f"mlflow.tracking_uri={logged[2]}",
        "-o", "scoring.chunk_rows=50",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, cwd=root, env=env, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    tmp_files: list = []
    while time.monotonic() < deadline and proc.poll() is None:
        tmp_files = [p for p in out.parent.glob(".scores.parquet.*.tmp") if p.stat().st_size]
        if tmp_files:
            break
        time.sleep(0.01)
    assert tmp_files, f"no temporary output appeared: {proc.communicate()[1]!r}"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL  # killed mid-run, not finished
    assert out.read_bytes() == b"last month's scores"
    assert summary_path(out).read_bytes() == b"{}"
    names = sorted(p.name for p in out.parent.iterdir())
    leftovers = [n for n in names if n not in ("scores.parquet", "scores.parquet.summary.json")]
    assert leftovers and all(n.startswith(".scores.") and n.endswith(".tmp") for n in leftovers)
    assert not (out.parent / "scores.early_warning.parquet").exists()
    # the next run replaces the old file whole
    small = tmp_path / "small.parquet"
    make_book(20, seed=47).to_parquet(small)
    run_score(small, out, model_uri=uri, cfg=_cfg(logged))
    assert len(pd.read_parquet(out)) == 20


def test_progress_bar_counts_loans_over_the_chunks(tmp_path, logged, uri):
    import io

    from rich.console import Console

    _, src = _portfolio(tmp_path, n=40, seed=48)
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=100)
    run_score(src, tmp_path / "a.parquet", model_uri=uri, cfg=_cfg(logged, 10), progress=console)
    assert "scoring" in screen.getvalue() and "40/40" in screen.getvalue()


def test_reasons_only_for_flagged_tiers_when_configured(tmp_path, logged, uri):
    _, src = _portfolio(tmp_path, n=200)
    everyone = tmp_path / "all.parquet"
    run_score(src, everyone, model_uri=uri, cfg=_cfg(logged))
    full = pd.read_parquet(everyone)
    flagged_tiers = sorted(full["tier"].unique())[-2:]  # the two worst tiers present
    cfg = _cfg(logged).model_copy(
        update={"explain": ExplainConfig(reasons_for="flagged", flagged_tiers=flagged_tiers)}
    )
    out = tmp_path / "flagged.parquet"
    run_score(src, out, model_uri=uri, cfg=cfg)
    part = pd.read_parquet(out)
    flagged = part["tier"].isin(flagged_tiers)
    assert flagged.any() and (~flagged).any()
    assert (part.loc[~flagged, "reason_1"] == "").all()
    # The flagged rows get the very reasons a full run gives them.
    assert part.loc[flagged, "reason_1"].tolist() == full.loc[flagged, "reason_1"].tolist()
    np.testing.assert_array_equal(part["pd"], full["pd"])


def test_csv_output_escapes_formula_ids_and_reads_back_as_previous(tmp_path, logged, uri):
    """Text ids such as "=HYPERLINK(..)" or "-17" are written so a spreadsheet shows them as
    text (OWASP CSV injection); the same file as --previous still matches every loan."""
    import csv

    book = make_book(40, seed=13)
    ids = ['=HYPERLINK("http://evil","x")', "-17", "+1", "@A1", *[f"L{i}" for i in range(36)]]
    book["loan_id"] = pd.Series(ids, dtype="str")
    src = tmp_path / "p.parquet"
    book.to_parquet(src)
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    run_score(src, first, model_uri=uri, cfg=_cfg(logged, 7))
    with open(first, newline="") as f:
        rows = list(csv.reader(f))[1:]
    assert [r[0] for r in rows[:4]] == ["'" + i for i in ids[:4]]
    assert all(not r[2].startswith("'") for r in rows)  # pd stays a number
    s = run_score(src, second, model_uri=uri, cfg=_cfg(logged), previous=first)
    assert s.n_matched_previous == 40 and s.n_tier_worsened == 0


def test_repeated_or_missing_loan_ids_are_refused_in_the_portfolio_as_in_previous(
    tmp_path, logged, uri
):
    """One rule for the portfolio and --previous: a loan_id once per as-of date, never empty;
    both refused naming the ids, and no output is written."""
    book = make_book(30, seed=44)
    book.loc[[3, 20], "loan_id"] = book.loc[5, "loan_id"]  # three rows of one loan
    src = tmp_path / "p.parquet"
    book.to_parquet(src)
    out = tmp_path / "o.parquet"
    repeated = rf"1 loan_id\(s\) appear more than once at one as-of date: {book.loc[5, 'loan_id']}"
    with pytest.raises(DataError, match=repeated + r" \(3 rows at 2024-03-31\)"):
        run_score(src, out, model_uri=uri, cfg=_cfg(logged, 7))
    assert not out.exists()
    # the same loans at two as-of dates are two snapshots, not a repeat
    two = pd.concat(
        [
            make_book(30, seed=45),
            make_book(30, seed=45).assign(snapshot_date=pd.Timestamp("2024-06-30")),
        ]
    )
    two.to_parquet(tmp_path / "two.parquet")
    assert run_score(tmp_path / "two.parquet", out, model_uri=uri, cfg=_cfg(logged)).n_loans == 60

    text = make_book(30, seed=46)
    text["loan_id"] = pd.Series([None, *[f"L{i % 28}" for i in range(29)]], dtype="str")
    text.to_parquet(src)
    with pytest.raises(DataError, match=r"1 row\(s\) have no loan_id \(rows 1\).*'L0' \(2 rows"):
        run_score(src, out, model_uri=uri, cfg=_cfg(logged))
    prev = tmp_path / "prev.csv"
    pd.DataFrame({"loan_id": ["L1", "L1"], "tier": ["A", "B"]}).to_csv(prev, index=False)
    with pytest.raises(DataError, match=r"prev.csv: 1 loan_id\(s\) appear more than once: 'L1'"):
        run_score(tmp_path / "two.parquet", out, model_uri=uri, cfg=_cfg(logged), previous=prev)


def test_unseen_category_values_are_reported_per_column_and_refused_with_strict(
    tmp_path, logged, uri, caplog
):
    """An upper-cased product is scored as missing as before, but no longer silently: the log
    and the summary name the column, the values and their rows; --strict exits 2, no output."""
    from typer.testing import CliRunner

    from pipeline.cli import app

    book = make_book(30, seed=9)
    book.loc[:9, "product"] = book.loc[:9, "product"].str.upper()
    src = tmp_path / "p.parquet"
    book.to_parquet(src)
    upper = book.loc[:9, "product"].value_counts()
    with caplog.at_level("WARNING", logger="pipeline.scoring.unseen"):
        s = run_score(src, tmp_path / "o.parquet", model_uri=uri, cfg=_cfg(logged, 7))
    assert s.unseen_categories == {"product": {"rows": 10, "values": upper.to_dict()}}
    assert json.loads(summary_path(tmp_path / "o.parquet").read_text())["unseen_categories"]
    first = book.loc[0, "product"]
    assert f"product: 10 rows: '{first}' ({upper[first]} rows, e.g. loan_id" in caplog.text
    assert "category values unseen in training" in str(s)

    out = tmp_path / "strict.parquet"
    args = ["score", "--input", str(src), "--out", str(out), "--model", uri, "--strict"]
    result = CliRunner().invoke(app, [*args, "-o", f"mlflow.tracking_uri={logged[2]}"])
    assert result.exit_code == 2, result.output
    flat = " ".join(result.output.split())
    assert f"product: 10 rows: '{first}'" in flat and "The model knows: product: auto, card" in flat
    assert not out.exists()


def test_key_rule_on_a_matrix_without_dates():
    from pipeline.scoring.keys import key_problem

    ids = pd.Series([7, 8, 7, 9])
    no_date = pd.Series(pd.NaT, index=ids.index, dtype="datetime64[us]")
    assert "7 (2 rows at no date)" in key_problem(ids, no_date)
    assert "appear more than once: 7 (2 rows)" in key_problem(ids)
    assert key_problem(pd.Series([7, 8])) is None
