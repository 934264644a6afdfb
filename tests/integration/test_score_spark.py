"""--engine spark against the local engine on a small portfolio: one Spark session (local[1])
for the module; PD equal to 1e-12, the same tiers, reason codes and summary. pyspark is in the
dev extra: a missing pyspark fails here rather than skipping."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from tiny_model import make_book, own_output

from pipeline.config import Config, MlflowConfig, ScoringConfig
from pipeline.scoring.run import early_warning_path, run_score, summary_path


@pytest.fixture(scope="module")
def spark():
    from pipeline.scoring.spark import spark_session

    with spark_session("local[1]") as session:
        yield session


def test_spark_engine_matches_local(tmp_path, logged, spark):
    from pipeline.scoring.spark import write_spark_scores

    uri = logged[0].model_uri
    cfg = Config(
        mlflow=MlflowConfig(tracking_uri=logged[2]),
        scoring=ScoringConfig(chunk_rows=64, early_warning_pd=0.1),
        output=own_output(logged),
    )
    book = make_book(300, seed=51)
    book.loc[::7, "product"] = "boat"  # unseen category: both engines send it down "missing"
    src = tmp_path / "portfolio.parquet"
    book.to_parquet(src, index=False)

    local = run_score(src, tmp_path / "local.parquet", model_uri=uri, cfg=cfg)
    remote = run_score(src, tmp_path / "spark.parquet", model_uri=uri, cfg=cfg, engine="spark")
    a = pd.read_parquet(tmp_path / "local.parquet").sort_values("loan_id", ignore_index=True)
    b = pd.read_parquet(tmp_path / "spark.parquet").sort_values("loan_id", ignore_index=True)
    assert list(b.columns) == list(a.columns) and len(b) == 300
    np.testing.assert_allclose(b["pd"], a["pd"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(b["points"], a["points"], rtol=0, atol=1e-9)
    other = [c for c in a.columns if c not in ("pd", "points")]
    pd.testing.assert_frame_equal(b[other], a[other])
    assert (a["reason_1"] != "").any()
    ew_a = pd.read_parquet(early_warning_path(tmp_path / "local.parquet"))
    ew_b = pd.read_parquet(early_warning_path(tmp_path / "spark.parquet"))
    assert sorted(ew_b["loan_id"]) == sorted(ew_a["loan_id"]) and len(ew_a) > 0
    assert remote.tiers == local.tiers and remote.engine == "spark"
    assert remote.psi_features == pytest.approx(local.psi_features)
    assert json.loads(summary_path(tmp_path / "spark.parquet").read_text())["engine"] == "spark"
    assert not list(tmp_path.glob(".spark.parquet.*"))  # the staging folder is removed

    # the cluster path: Spark writes the part files itself, same columns and numbers
    write_spark_scores(spark, str(src), str(tmp_path / "parts"), uri, top_k=3)
    c = pd.read_parquet(tmp_path / "parts").sort_values("loan_id", ignore_index=True)
    assert list(c.columns) == list(a.columns)
    np.testing.assert_allclose(c["pd"], a["pd"], rtol=0, atol=1e-12)
    assert c["reason_1"].tolist() == a["reason_1"].tolist()
    assert c["tier"].tolist() == a["tier"].tolist()
