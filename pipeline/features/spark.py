"""The Spark engine: the feature plan (`plan`) transpiled from DuckDB SQL to Spark SQL by SQLGlot
and run on a Spark session, for books past one machine.

    loanrisk features --engine spark                      # local[N] (features.spark_master)
    spark-submit pipeline/features/spark.py --interim s3://.../interim --out s3://.../features

Each step of the plan becomes a cached temp view; the final SELECT is written as Parquet
partitioned by snapshot date (`write_spark_matrix`). The local stage reads that folder back as
the same sorted pandas matrix the DuckDB engine gives (`read_spark_matrix`), so training does not
know which engine built it. pyspark and sqlglot are imported lazily (the `spark` extra).

Two rewrites SQLGlot does not do, both applied to its syntax tree: decimal literals become
DOUBLE (Spark would compute `days / 30.4375` in DECIMAL and round it to 6 places, DuckDB in
double), and DuckDB's epoch_us becomes Spark's unix_micros.
"""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from pipeline.config import Config, load_config
from pipeline.core import catalogue
from pipeline.core import spark as core_spark
from pipeline.core.contract import REQUIRED, TABLES
from pipeline.core.errors import DataError
from pipeline.core.metadata import FeatureSpec
from pipeline.features.engine import KEYS
from pipeline.features.plan import CATEGORY_SOURCES, final_sql, steps
from pipeline.features.snapshots import (
    END_SQL,
    default_snapshots,
    end_date_from,
    normalise_snapshots,
)
from pipeline.features.specs import feature_names, feature_specs

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

PACKAGE_ROOT = Path(__file__).resolve().parents[2]
PARTITION = "snapshot_date"


def build_features_spark(
    interim_dir: Path, cfg: Config, out_dir: Path, snapshots: list[dt.date] | None = None
) -> tuple[pd.DataFrame, list[FeatureSpec]]:
    """`build_features` on Spark: the matrix of the validated tables in `interim_dir`, written
    to `out_dir` (Parquet partitioned by snapshot_date) and returned as the DuckDB engine's
    sorted pandas matrix (same columns, dtypes, category levels and row order)."""
    with spark_session(cfg.features.spark_master, cfg.features.spark_driver_memory) as spark:
        matrix, levels = spark_matrix(spark, str(interim_dir), cfg, snapshots)
        write_spark_matrix(matrix, str(out_dir))
    return read_spark_matrix(out_dir, levels), feature_specs()


def spark_matrix(
    spark: SparkSession, interim: str, cfg: Config, snapshots: list[dt.date] | None = None
) -> tuple[DataFrame, dict[str, list[str]]]:
    """(matrix, category levels): the plan run on `spark` over the validated tables in the
    folder `interim` (any Spark path).
    The matrix is unordered, categories as text; levels are each category's sorted values in
    its input table (the DuckDB engine's ENUM levels)."""
    frames, missing = {}, []
    # names joined as text: a Path would fold the // of s3://... or hdfs://...
    for t, name in zip(TABLES, catalogue.interim_names(TABLES), strict=True):
        try:
            frames[t] = spark.read.parquet(f"{interim.rstrip('/')}/{name}")
        except Exception:  # AnalysisException: the path does not exist
            missing.append(t)
    if missing:
        raise DataError(
            f"no validated table {', '.join(missing)} in {interim}: run `loanrisk ingest` first"
        )
    for t, frame in frames.items():
        lacking = [c for c in REQUIRED[t] if c not in frame.columns]
        if lacking:
            raise DataError(f"table {t} lacks required column(s) {', '.join(lacking)}")
        frame.createOrReplaceTempView(t)
    fcfg = cfg.features
    data_end = end_date_from(spark.sql(transpile(END_SQL)).collect()[0][0])
    if snapshots is None:
        first = spark.sql("SELECT min(CAST(origination_date AS DATE)) FROM loans").collect()[0][0]
        if first is None:
            raise DataError("the loans table is empty")
        snapshots = default_snapshots(first, data_end, fcfg)
    snapshots = normalise_snapshots(snapshots)
    crm_cols = set(spark.table("crm_interactions").columns)
    for name, sql in steps(snapshots, fcfg, "direction" in crm_cols, "answered" in crm_cols):
        spark.sql(transpile(sql)).cache().createOrReplaceTempView(name)
    levels = {
        name: [
            r[0]
            for r in spark.sql(
                f"SELECT DISTINCT CAST({col} AS STRING) FROM {table} "
                f"WHERE {col} IS NOT NULL ORDER BY 1"
            ).collect()
        ]
        for name, (_, table, col) in CATEGORY_SOURCES.items()
    }
    matrix = spark.sql(transpile(final_sql(data_end, fcfg.income_rounding)))
    return matrix, levels


def transpile(sql: str) -> str:
    """DuckDB SQL -> Spark SQL (SQLGlot, plus the two rewrites in the module docstring)."""
    import sqlglot
    from sqlglot import exp

    def rewrite(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Literal) and node.is_number and not node.this.isdigit():
            return exp.cast(node.copy(), "DOUBLE")
        if isinstance(node, exp.Anonymous) and node.name.lower() == "epoch_us":
            return exp.Anonymous(this="UNIX_MICROS", expressions=node.expressions)
        return node

    tree = sqlglot.parse_one(sql, read="duckdb").transform(rewrite)
    return tree.sql(dialect="spark")


def write_spark_matrix(matrix: DataFrame, out: str) -> None:
    """The matrix as Parquet partitioned by snapshot date, replacing what `out` held."""
    matrix.write.mode("overwrite").partitionBy(PARTITION).parquet(out)


def read_spark_matrix(folder: Path, levels: dict[str, list[str]]) -> pd.DataFrame:
    """The partitioned matrix as pandas in the DuckDB engine's layout: KEYS then the features,
    sorted by (snapshot_date, loan_id), label Int8, snapshot_date datetime64[us], categories with
    `levels`."""
    part = ds.partitioning(pa.schema([(PARTITION, pa.date32())]), flavor="hive")
    table = ds.dataset(folder, format="parquet", partitioning=part).to_table()
    df = table.select([*KEYS, *feature_names()]).to_pandas(date_as_object=False)
    days = df[PARTITION].to_numpy().astype("datetime64[D]").astype(np.int64)
    df = df.iloc[np.lexsort((df["loan_id"].to_numpy(), days))].reset_index(drop=True)
    df["label"] = df["label"].astype("Int8")
    df[PARTITION] = df[PARTITION].astype("datetime64[us]")
    for name, cats in levels.items():
        df[name] = pd.Categorical(df[name], categories=cats, ordered=False)
    return df


@contextmanager
def spark_session(master: str = "local[2]", driver_memory: str = "4g") -> Iterator[SparkSession]:
    """The feature engine's session (`pipeline.core.spark`): 4 shuffle partitions and a larger
    local heap, since caching every step of a book of millions of events does not fit Spark's
    default 1g (bench/features.py --size 0.2 --spark: 340 s with 1g, 246 s with 4g, on a
    machine under varying load)."""
    with core_spark.spark_session(
        "loanrisk-features", master, shuffle_partitions=4, driver_memory=driver_memory
    ) as spark:
        yield spark


def main(argv: list[str] | None = None) -> None:
    """spark-submit entry point: the cluster reads the interim tables and writes the matrix."""
    p = argparse.ArgumentParser(description="loanrisk features on a Spark cluster")
    p.add_argument("--interim", required=True, help="folder of the validated tables (ingest's)")
    p.add_argument("--out", required=True, help="folder for the partitioned matrix")
    p.add_argument("--config", default=str(PACKAGE_ROOT / "configs" / "default.yaml"))
    a = p.parse_args(argv)
    cfg = load_config(a.config)
    with spark_session(cfg.features.spark_master) as spark:
        matrix, _ = spark_matrix(spark, a.interim, cfg)
        write_spark_matrix(matrix, a.out)


if __name__ == "__main__":  # pragma: no cover
    main()
