"""`features.engine: spark` against the DuckDB engine: the build run by Spark on partitions of
customers gives the same matrix value by value (same rows, order, NaN positions, dtypes and
category levels), with two partitions or many. One local[1] Spark session for the module (it
starts in 6-10 s). pyspark is in the dev extra: a missing one fails here rather than skipping."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from minibook import random_book, write_book

from pipeline.config import Config, DataConfig, FeaturesConfig
from pipeline.core import catalogue
from pipeline.core.errors import DataError
from pipeline.features import build_features, snapshot_dates
from pipeline.stages.features import run

pytestmark = pytest.mark.slow  # a Spark session and three Spark builds: about 30 s
MONTHLY = snapshot_dates(dt.date(2021, 2, 1), dt.date(2025, 1, 1), "monthly")


@pytest.fixture(scope="module")
def spark():
    from pipeline.features.spark import spark_session

    with spark_session("local[1]") as session:
        yield session


@pytest.fixture(scope="module")
def interim(tmp_path_factory):
    # two books: the second without the optional CRM columns (direction, answered) and with
    # text ids (Spark carries them as large strings)
    root = tmp_path_factory.mktemp("books")
    full = write_book(random_book(seed=3, n_customers=60, n_loans=100).tables(), root / "full")
    tables = random_book(seed=4).tables()
    tables["crm_interactions"] = tables["crm_interactions"].drop(
        columns=["direction", "answered"], errors="ignore"
    )
    for name, key in [(t, "customer_id") for t in ("customers", "loans", "crm_interactions")] + [
        (t, "loan_id") for t in ("loans", "repayments")
    ]:
        tables[name][key] = key[0].upper() + "-" + tables[name][key].astype(str)
    return full, write_book(tables, root / "bare")


def spark_build(spark, folder, cfg, out, snapshots=None) -> pd.DataFrame:
    from pipeline.features.spark import read_spark_matrix, spark_matrix, write_spark_matrix

    matrix, levels = spark_matrix(spark, str(folder), cfg, snapshots)
    write_spark_matrix(matrix, str(out))
    return read_spark_matrix(out, levels)


def test_spark_matrix_equals_duckdb_value_by_value(spark, interim, tmp_path):
    # The book without the optional CRM columns, monthly, in partitions of ~300 events: about
    # 16 of a few customers each, some with customers without a loan. The full book is compared
    # through the stage below, in the default two partitions.
    cfg = Config(
        features=FeaturesConfig(snapshot_freq="monthly", duckdb_threads=1, spark_partition_rows=300)
    )
    expected, _ = build_features(interim[1], cfg, MONTHLY)
    got = spark_build(spark, interim[1], cfg, tmp_path / "m", MONTHLY)
    assert len(expected) > 500 and expected["label"].notna().any()
    assert expected["loan_id"].iloc[0].startswith("L-")
    # every snapshot is one partition folder
    assert (
        len(list((tmp_path / "m").glob("snapshot_date=*"))) == expected["snapshot_date"].nunique()
    )
    pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=1e-12, atol=1e-12)
    # the relationship features are not all NaN / 0 (a broken join would give that)
    assert got["days_since_last_contact"].notna().any()
    assert (got["reminders_paid_on_time_share_12m"].dropna() > 0).any()


def test_stage_with_spark_engine_publishes_the_duckdb_matrix(spark, interim, tmp_path):
    # The full book (with the optional CRM columns), monthly, through the stage.
    monthly = dict(snapshot_freq="monthly", duckdb_threads=1)
    spark_cfg = Config(
        data=DataConfig(interim_dir=interim[0], features_dir=tmp_path / "spark"),
        features=FeaturesConfig(engine="spark", **monthly),
    )
    path = run(spark_cfg)
    duck = run(
        Config(
            data=DataConfig(interim_dir=interim[0], features_dir=tmp_path / "duck"),
            features=FeaturesConfig(**monthly),
        )
    )
    got, expected = pd.read_parquet(path), pd.read_parquet(duck)
    assert len(expected) > 500 and expected["label"].notna().any()
    pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=1e-12, atol=1e-12)
    assert got["days_since_last_contact"].notna().any()
    assert (got["reminders_paid_on_time_share_12m"].dropna() > 0).any()
    # the partitioned scratch folder is gone; only the set's files stay
    names = sorted(p.name for p in (tmp_path / "spark").iterdir())
    assert names == sorted([catalogue.FEATURES, catalogue.FEATURE_METADATA, catalogue.MANIFEST])


def test_missing_table_or_column_is_a_data_error(spark, interim, tmp_path):
    from pipeline.features.spark import spark_matrix

    folder = write_book(random_book(seed=5).tables(), tmp_path / "b")
    (folder / "crm_interactions.parquet").unlink()
    with pytest.raises(DataError, match="no validated table crm_interactions in"):
        spark_matrix(spark, str(folder), Config(), MONTHLY)
    loans = pd.read_parquet(interim[0] / "loans.parquet").drop(columns="principal")
    for name in ("customers", "repayments", "crm_interactions"):
        (folder / f"{name}.parquet").write_bytes((interim[0] / f"{name}.parquet").read_bytes())
    loans.to_parquet(folder / "loans.parquet", index=False)
    with pytest.raises(DataError, match="loans lacks required column.*principal"):
        spark_matrix(spark, str(folder), Config(), MONTHLY)


def test_partition_count_keeps_every_core_busy():
    from pipeline.features.spark import partition_count

    assert partition_count(900_000, 2, 2_000_000) == 4  # two per core at least
    assert partition_count(8_900_000, 2, 2_000_000) == 6  # 5 by size, rounded up to the cores
    assert partition_count(10, 1, 2_000_000) == 2


def test_partition_without_loans_builds_no_rows(interim):
    # A partition whose customers hold no loan (its left side is empty) gives an empty matrix
    # of the declared schema, not an error from the empty loans table.
    import pyarrow as pa

    from pipeline.core.contract import TABLES
    from pipeline.features.spark import SIDES, PartitionBuild

    tables = {t: pd.read_parquet(interim[0] / f"{t}.parquet") for t in TABLES}
    loanless = tables["customers"].head(3)

    def side(names, frames):
        parts = []
        for name in names:
            k = TABLES.index(name)
            frame = frames[name].rename(columns=lambda c, k=k: f"_{k}_{c}")
            parts.append(pa.Table.from_pandas(frame.assign(_t=k), preserve_index=False))
        return pa.concat_tables(parts, promote_options="default")

    target = pa.schema([("loan_id", pa.int64()), ("x", pa.float64())])
    build = PartitionBuild(
        columns={t: list(tables[t].columns) for t in TABLES},
        cfg=Config(),
        snapshots=MONTHLY,
        data_end=dt.date(2025, 1, 1),
        target=target,
    )
    left = side(
        SIDES[0], {"repayments": tables["repayments"].head(0), "loans": tables["loans"].head(0)}
    )
    right = side(
        SIDES[1], {"crm_interactions": tables["crm_interactions"].head(0), "customers": loanless}
    )
    out = build(left, right)
    assert out.num_rows == 0 and out.schema == target
