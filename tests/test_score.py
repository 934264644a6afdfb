"""Batch scoring on the tiny logged model: output, chunking, atomicity, schema errors, drift."""

from __future__ import annotations

import copy
import json

import lightgbm as lgb
import mlflow
import numpy as np
import pandas as pd
import pytest
from test_model import FEATURES, logged, make_book  # noqa: F401  (logged: fixture)

from pipeline import score as score_mod
from pipeline.calibration import fit_calibrator
from pipeline.config import Config, GenerateConfig, MlflowConfig, ScoringConfig
from pipeline.errors import ConfigError, DataError, ModelError
from pipeline.model import build_reference, log_model
from pipeline.score import load_scoring_model, run_score, score_frame, summary_path

REASONS = ["reason_1", "reason_2", "reason_3"]
COLUMNS = ["loan_id", "as_of_date", "pd", "points", "tier", *REASONS, "model_name", "model_version"]


@pytest.fixture(scope="module")
def uri(logged):  # noqa: F811
    return logged[0].model_uri


def _cfg(logged, chunk_rows: int = 200_000) -> Config:  # noqa: F811
    return Config(
        mlflow=MlflowConfig(tracking_uri=logged[2]),
        scoring=ScoringConfig(chunk_rows=chunk_rows),
    )


def _portfolio(tmp_path, n=60, seed=21, shift=0.0, name="portfolio.parquet"):
    book = make_book(n, seed=seed, shift=shift)
    path = tmp_path / name
    if path.suffix == ".csv":
        book.to_csv(path, index=False)
    else:
        book.to_parquet(path, index=False)
    return book, path


def test_scores_written_with_summary(tmp_path, logged, uri):  # noqa: F811
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


def test_chunked_and_unchunked_outputs_identical(tmp_path, logged, uri):  # noqa: F811
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


def test_csv_in_and_out_match_parquet(tmp_path, logged, uri):  # noqa: F811
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


def test_atomic_when_scoring_fails_midway(tmp_path, logged, uri, monkeypatch):  # noqa: F811
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
def test_missing_columns_listed(tmp_path, logged, uri, suffix):  # noqa: F811
    book = make_book(10, seed=2).drop(columns=["dpd_now", "product", "loan_id"])
    src = tmp_path / f"bad{suffix}"
    book.to_parquet(src) if suffix == ".parquet" else book.to_csv(src, index=False)
    out = tmp_path / "never.parquet"
    with pytest.raises(ModelError, match="3 column.*loan_id, dpd_now, product"):
        run_score(src, out, model_uri=uri, cfg=_cfg(logged))
    assert not out.exists()


def test_extra_columns_ignored(tmp_path, logged, uri):  # noqa: F811
    book = make_book(25, seed=3)
    model = load_scoring_model(uri)
    noisy = book.assign(customer_name="Jane Doe", notes="x", dpd_now_copy=book["dpd_now"] * 9)
    pd.testing.assert_frame_equal(score_frame(model, noisy), score_frame(model, book))


def test_drift_flagged_on_shifted_portfolio_only(tmp_path, logged, uri):  # noqa: F811
    _, stable_src = _portfolio(tmp_path, n=2000, seed=31, name="stable.parquet")
    _, shifted_src = _portfolio(tmp_path, n=2000, seed=32, shift=1.0, name="shifted.parquet")
    stable = run_score(stable_src, tmp_path / "s.parquet", model_uri=uri, cfg=_cfg(logged, 500))
    shifted = run_score(shifted_src, tmp_path / "t.parquet", model_uri=uri, cfg=_cfg(logged, 500))
    assert stable.drift_alerts == [] and stable.drift_warnings == []
    assert stable.psi_score < 0.1
    assert shifted.psi_score > 0.25
    assert {"score", "dpd_now", "late_count_6m", "product"} <= set(shifted.drift_alerts)
    assert max(shifted.psi_features.values()) == next(iter(shifted.psi_features.values()))


def test_unresolvable_model_uri_is_a_model_error_with_a_hint(tmp_path, logged):  # noqa: F811
    _, src = _portfolio(tmp_path, n=5)
    with pytest.raises(ModelError, match=r"(?s)models:/nope@champion.*not found.*loanrisk train"):
        run_score(src, tmp_path / "x.parquet", model_uri="models:/nope@champion", cfg=_cfg(logged))


def test_registered_alias_gives_name_and_version(tmp_path, logged):  # noqa: F811
    from pipeline.registry import register_and_promote

    info = logged[0]
    mcfg = MlflowConfig(tracking_uri=logged[2], registered_model="lr-score")
    decision = register_and_promote(info.run_id, info.model_uri, 0.7, mcfg)
    model = load_scoring_model("models:/lr-score@champion")
    assert (model.name, model.version) == ("lr-score", decision.version)
    assert load_scoring_model(f"models:/lr-score/{decision.version}").version == decision.version
    out = score_frame(model, make_book(5, seed=4), top_k=2)
    assert out.columns.tolist()[-4:] == ["reason_1", "reason_2", "model_name", "model_version"]
    assert (out["model_name"] == "lr-score").all()


def test_bad_options_and_inputs(tmp_path, logged, uri):  # noqa: F811
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


def test_as_of_selects_one_snapshot_of_a_matrix(tmp_path, logged, uri):  # noqa: F811
    a, b = make_book(10, seed=5), make_book(12, seed=6)
    b["snapshot_date"] = pd.Timestamp("2024-06-30")
    src = tmp_path / "two.parquet"
    pd.concat([a, b]).to_parquet(src)
    s = run_score(src, tmp_path / "o.parquet", model_uri=uri, as_of="2024-06-30", cfg=_cfg(logged))
    assert s.n_loans == 12 and s.as_of == ["2024-06-30"]
    assert pd.read_parquet(tmp_path / "o.parquet")["loan_id"].tolist() == b["loan_id"].tolist()


@pytest.mark.training
def test_raw_tables_folder_scored_at_data_end(tmp_path, logged):  # noqa: F811
    """Raw tables -> ingest + features at the data end -> same scores as the matrix built by
    hand, with a tiny model trained on the real feature set."""
    from pipeline.features.engine import build_features_from_frames
    from pipeline.features.snapshots import data_end_date
    from pipeline.ingest import validate_tables
    from pipeline.matrix import categories_of, to_model_frame
    from pipeline.simulate import generate

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
