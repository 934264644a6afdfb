"""The Spark engine: the DuckDB engine's own build (`engine`) run by Spark on partitions of the
book that each hold whole customers, for books past one machine.

    loanrisk features --engine spark                      # local[N] (features.spark_master)
    spark-submit pipeline/features/spark.py --interim s3://.../interim --out s3://.../features

Every feature of a row is a function of one customer's loans, instalments and CRM events and of
three facts of the whole book: the snapshot dates, the data end date and the category levels.
So the driver reads those facts in one pass (`book_facts`); Spark spreads the four tables over
partitions by a hash of the customer (instalments through their loan's customer), co-grouped
into two sides (instalments with loans, CRM events with customers); and a Python worker builds
each partition with `engine.build_arrow_on`, the DuckDB engine's code. One definition of every
feature, run by both engines, so their matrices are equal by construction (and tested value by
value); no second copy of the families in Spark SQL to keep in step.

The partitions are sized to `features.spark_partition_rows` events (at least two per core): a
worker holds one partition's events and its DuckDB build (threads 1: Spark runs one task per
core) at a time. The matrix is written as Parquet partitioned by snapshot date
(`write_spark_matrix`); the local stage reads that folder back as the DuckDB engine's sorted
pandas matrix (`read_spark_matrix`), so training does not know which engine built it. pyspark is
imported lazily (the `spark` extra).
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from pipeline.config import Config, load_config
from pipeline.core import catalogue
from pipeline.core import spark as core_spark
from pipeline.core.contract import REQUIRED, TABLES
from pipeline.core.errors import DataError
from pipeline.core.metadata import FeatureSpec
from pipeline.features.engine import KEYS
from pipeline.features.plan import CATEGORY_SOURCES
from pipeline.features.snapshots import default_snapshots, end_date_from, normalise_snapshots
from pipeline.features.specs import feature_names, feature_specs

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType

PACKAGE_ROOT = Path(__file__).resolve().parents[2]
PARTITION = "snapshot_date"
# The two co-grouped sides and the tables each carries, numbered as the `_t` column tells them
# apart (a side is the union of its tables, each column prefixed `_<number>_`).
SIDES = (("repayments", "loans"), ("crm_interactions", "customers"))
OWNER = "_owner"  # an instalment's customer, from its loan: the partition key of the left side


@dataclass(frozen=True)
class BookFacts:
    """What every partition's build needs of the whole book."""

    data_end: dt.date
    first_origination: dt.date | None
    levels: dict[str, list[str]]  # each category's sorted values in its input table
    events: int  # instalments + CRM events: what sizes the partitions


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
    spark: SparkSession,
    interim: str,
    cfg: Config,
    snapshots: list[dt.date] | None = None,
    empty: bool = False,
) -> tuple[DataFrame, dict[str, list[str]]]:
    """(matrix, category levels) of the validated tables in the folder `interim` (any Spark
    path). The matrix is unordered, categories as text (`read_spark_matrix` restores them).

    empty: every partition returns no rows without building: Spark's own cost of the same
    job (`bench/features.py` measures that floor)."""
    from pyspark.sql import functions as F

    frames = read_tables(spark, interim)
    facts = book_facts(frames)
    fcfg = cfg.features
    if snapshots is None:
        if facts.first_origination is None:
            raise DataError("the loans table is empty")
        snapshots = default_snapshots(facts.first_origination, facts.data_end, fcfg)
    parts = partition_count(
        facts.events, spark.sparkContext.defaultParallelism, fcfg.spark_partition_rows
    )
    owners = frames["loans"].select("loan_id", F.col("customer_id").alias(OWNER))
    keyed = {
        "repayments": (frames["repayments"].join(owners, "loan_id"), OWNER),
        "loans": (frames["loans"], "customer_id"),
        "crm_interactions": (frames["crm_interactions"], "customer_id"),
        "customers": (frames["customers"], "customer_id"),
    }
    left, right = (
        _side([(n, *keyed[n], frames[n].columns) for n in side], parts) for side in SIDES
    )
    schema = matrix_schema(frames)
    build = PartitionBuild(
        columns={t: frames[t].columns for t in TABLES},
        cfg=cfg.model_copy(update={"features": fcfg.model_copy(update={"duckdb_threads": 1})}),
        snapshots=normalise_snapshots(snapshots),
        data_end=facts.data_end,
        target=_arrow_schema(schema),
    )

    def run(left: pa.Table, right: pa.Table) -> pa.Table:
        # a function of two arguments: pyspark reads the key-or-not from the signature
        return build.target.empty_table() if empty else build(left, right)

    matrix = left.groupBy("_p").cogroup(right.groupBy("_p")).applyInArrow(run, schema)
    return matrix, facts.levels


def read_tables(spark: SparkSession, interim: str) -> dict[str, DataFrame]:
    """The four validated tables of `interim`; DataError naming a missing table or column."""
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
    return frames


def book_facts(frames: dict[str, DataFrame]) -> BookFacts:
    """The data end date (`snapshots.data_end_date`), the first origination, the category levels
    and the event count, in one Spark job of four single-row aggregates."""
    from pyspark.sql import functions as F

    def levels(table: str) -> list:
        return [
            F.sort_array(F.collect_set(F.col(col).cast("string"))).alias(name)
            for name, (_, _, source, col) in CATEGORY_SOURCES.items()
            if source == table
        ]

    def last(col: str) -> object:
        return F.max(F.col(col).cast("date"))

    row = (
        frames["repayments"]
        .agg(
            last("paid_date").alias("paid"),
            last("due_date").alias("due"),
            F.count(F.lit(1)).alias("n_rep"),
        )
        .crossJoin(
            frames["crm_interactions"].agg(
                last("timestamp").alias("contact"), F.count(F.lit(1)).alias("n_crm")
            )
        )
        .crossJoin(
            frames["loans"].agg(
                F.min(F.col("origination_date").cast("date")).alias("first"), *levels("loans")
            )
        )
        .crossJoin(frames["customers"].agg(*levels("customers")))
        .first()
    )
    events = [d for d in (row["paid"], row["contact"]) if d is not None]
    return BookFacts(
        # as END_SQL: the last payment or contact, due dates only in a book with neither
        data_end=end_date_from(max(events) if events else row["due"]),
        first_origination=row["first"],
        levels={name: list(row[name]) for name in CATEGORY_SOURCES},
        events=int(row["n_rep"]) + int(row["n_crm"]),
    )


def partition_count(events: int, parallelism: int, rows_per_partition: int) -> int:
    """Partitions of at most about `rows_per_partition` events, at least two per core (so that
    one slow partition does not leave a core idle at the end) and a whole number per core."""
    cores = max(parallelism, 1)
    return cores * max(2, math.ceil(events / rows_per_partition / cores))


def _side(tables: list[tuple[str, DataFrame, str, list[str]]], parts: int) -> DataFrame:
    """One co-grouped side: the union of `tables` (name, frame, customer column, columns), each
    column prefixed with the table's number, keyed by the partition `_p` of the customer."""
    from pyspark.sql import functions as F

    side = None
    for name, frame, customer, columns in tables:
        k = TABLES.index(name)
        rows = frame.select(
            F.lit(k).alias("_t"),
            F.pmod(F.xxhash64(frame[customer]), F.lit(parts)).alias("_p"),
            *(frame[c].alias(f"_{k}_{c}") for c in columns),
        )
        side = rows if side is None else side.unionByName(rows, allowMissingColumns=True)
    return side


def matrix_schema(frames: dict[str, DataFrame]) -> StructType:
    """The matrix's Spark schema: the keys as typed in the input, the features as doubles and
    the categories as text."""
    from pyspark.sql import types as T

    return T.StructType(
        [
            T.StructField("loan_id", frames["loans"].schema["loan_id"].dataType),
            T.StructField("customer_id", frames["customers"].schema["customer_id"].dataType),
            T.StructField(PARTITION, T.DateType()),
            T.StructField("label", T.ByteType()),
            *(
                T.StructField(n, T.StringType() if n in CATEGORY_SOURCES else T.DoubleType())
                for n in feature_names()
            ),
        ]
    )


def _arrow_schema(schema: StructType) -> pa.Schema:
    from pyspark.sql.pandas.types import to_arrow_schema

    return to_arrow_schema(schema)


@dataclass(frozen=True)
class PartitionBuild:
    """The build of one partition, run in a Spark worker: its two sides split back into the
    four tables and handed to the DuckDB engine with the whole book's snapshots and data end."""

    columns: dict[str, list[str]]
    cfg: Config
    snapshots: list[dt.date]
    data_end: dt.date
    target: pa.Schema

    def __call__(self, left: pa.Table, right: pa.Table) -> pa.Table:
        from pipeline.features.engine import build_arrow_on, duckdb_connection

        tables = {}
        for side, names in zip((left, right), SIDES, strict=True):
            for name in names:
                k = TABLES.index(name)
                cols = self.columns[name]
                rows = side.filter(pc.equal(side.column("_t"), k))
                tables[name] = rows.select([f"_{k}_{c}" for c in cols]).rename_columns(cols)
        if tables["loans"].num_rows == 0:  # customers without loans: no rows
            return self.target.empty_table()
        with duckdb_connection(self.cfg) as con:
            for name, table in tables.items():
                con.register(name, table)
            matrix = build_arrow_on(con, self.cfg, self.snapshots, self.data_end)
        return matrix.cast(self.target)


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
    """The feature engine's session (`pipeline.core.spark`) with a larger local heap than
    Spark's default 1g: in local mode the driver is also the executor that shuffles the
    events."""
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
