"""Spark engine for `loanrisk score --engine spark`: the same model, the same output columns.

PD, points and tier come from `mlflow.pyfunc.spark_udf` (result_type a struct of every output
column: with a plain "double" the UDF silently returns only the first). Reason codes are computed
the same way as the local engine (tree SHAP of the booster ->
`pipeline.riskmath.reasons.reasons_for_scoring`) in a `mapInPandas` step over the same rows, so
both engines give the same text. Imports only the shared core (`pipeline.scoring.core`);
pyspark is imported lazily, inside the functions that need it.

Two ways to use it:
- `run_score(..., engine="spark")` (the CLI, `pipeline.scoring.run`): Spark scores into Parquet
  part files in a hidden folder beside the target; `spark_scored_chunks` then streams those
  files back as chunks through the writers both engines share, so the output file,
  early-warning list, summary and drift check are the ones of the local engine.
- `spark-submit pipeline/scoring/spark.py --input s3://.../features --out s3://.../scores --model
  URI` on a cluster: Spark reads, scores and writes a folder of Parquet part files itself
  (`write_spark_scores`), nothing passes through the driver. No summary or early-warning list.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import mlflow
import pandas as pd
import pyarrow.parquet as pq

from pipeline.config import Config
from pipeline.core import catalogue
from pipeline.core import spark as core_spark
from pipeline.core.errors import ConfigError, DataError
from pipeline.riskmath.reasons import POINTS_SUFFIX, reason_columns, reasons_for_scoring
from pipeline.scoring.core import (
    CONTEXT_COLUMNS,
    DATE_COLUMN,
    DEFAULT_DPD,
    DEFAULTED,
    DPD_COLUMN,
    ID_COLUMN,
    MIN_REASON_COLUMNS,
    PERFORMING,
    PREDICTION_COLUMNS,
    UNKNOWN,
    ScoredChunks,
    ScoringModel,
    check_columns,
    check_types,
    load_scoring_model,
    loan_context,
    output_frame,
    unseen_levels,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

# Every output column of the pyfunc model (LoanRiskModel.predict_prepared), in its order.
RESULT_TYPE = "pd double, pd_raw double, points double, tier string"


@contextmanager
def spark_session(master: str = "local[1]") -> Iterator[SparkSession]:
    """The scoring engine's session (`pipeline.core.spark`): 2 shuffle partitions."""
    with core_spark.spark_session("loanrisk-score", master, shuffle_partitions=2) as spark:
        yield spark


def score_spark_frame(
    spark: SparkSession,
    sdf: DataFrame,
    model: ScoringModel,
    top_k: int,
    reasons_for: str = "all",
    flagged_tiers: tuple[str, ...] = (),
) -> DataFrame:
    """Spark DataFrame of feature rows -> the same rows with pd, points, tier (from spark_udf)
    and reason_1, reason_1_pd_points, ... reason_{top_k}.. (tree SHAP, as the local engine)
    appended."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import DoubleType, StringType, StructField, StructType

    lr = model.model
    udf = mlflow.pyfunc.spark_udf(
        spark, model.pinned_uri, result_type=RESULT_TYPE, env_manager="local"
    )
    # The signature takes categoricals as string and numerics as double.
    inputs = [
        F.col(s.name).cast("string" if s.kind == "categorical" else "double").alias(s.name)
        for s in lr.specs
    ]
    pred = sdf.withColumn("_pred", udf(F.struct(*inputs)))
    scored = pred.select(*sdf.columns, *[F.col(f"_pred.{c}").alias(c) for c in PREDICTION_COLUMNS])
    if top_k <= 0:
        return scored
    names = reason_columns(top_k, with_points=True)
    fields = [
        StructField(n, DoubleType(), True)
        if n.endswith(POINTS_SUFFIX)
        else StructField(n, StringType(), False)
        for n in names
    ]
    schema = StructType([*scored.schema.fields, *fields])

    never = model.never_reasons

    def add_reasons(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            X = lr.prepare(batch)
            tiers = batch["tier"].to_numpy()
            reasons = reasons_for_scoring(
                lr, X, tiers, top_k, reasons_for, flagged_tiers, with_points=True, exclude=never
            )
            for n in names:
                batch[n] = reasons[n].to_numpy(dtype=float if n.endswith(POINTS_SUFFIX) else object)
            yield batch

    return scored.mapInPandas(add_reasons, schema)


@contextmanager
def spark_scored_chunks(
    input_path: Path, out_path: Path, model: ScoringModel, as_of: dt.date | None, cfg: Config
) -> Iterator[tuple[ScoredChunks, int]]:
    """The spark engine behind `run_score`: ((output, prepared features) per chunk, rows)."""
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with spark_session(cfg.scoring.spark_master) as spark:
        sdf = read_features(spark, input_path, model, as_of)
        staged = Path(
            tempfile.mkdtemp(prefix=f".{out_path.name}.", suffix=".spark", dir=out_path.parent)
        )
        try:
            scored = score_spark_frame(
                spark,
                sdf,
                model,
                cfg.scoring.reasons_top_k,
                cfg.explain.reasons_for,
                tuple(cfg.explain.flagged_tiers),
            )
            scored.write.mode("overwrite").parquet(str(staged / "scored"))
            parts = sorted((staged / "scored").glob(catalogue.SPARK_PARTS))
            n_rows = sum(pq.ParquetFile(p).metadata.num_rows for p in parts)
            chunks = _chunks(parts, model, cfg.scoring.chunk_rows, cfg.features.default_dpd)
            yield chunks, n_rows
        finally:
            shutil.rmtree(staged, ignore_errors=True)


def read_features(
    spark: SparkSession, path: Path | str, model: ScoringModel, as_of: dt.date | None
) -> DataFrame:
    """The Parquet feature matrix (file or folder) as Spark reads it: loan_id, snapshot_date
    (when present, or `as_of`), the model's features; other columns dropped."""
    from pyspark.sql import functions as F

    path = Path(path) if "://" not in str(path) else path
    if isinstance(path, Path):
        if not path.exists():
            raise DataError(f"scoring input {path} does not exist")
        if path.is_file() and path.suffix.lower() != ".parquet":
            raise DataError(f"scoring input {path}: --engine spark reads Parquet only")
        if path.is_file():
            check_types(pq.read_schema(path), model.model, path)
        elif any(path.glob("loans.*")) or any(path.glob("customers.*")):
            raise ConfigError(
                f"scoring input {path} holds raw tables: --engine spark scores a feature matrix "
                "(build one with `loanrisk features`, or use --engine local)"
            )
    sdf = spark.read.parquet(str(path))
    check_columns(sdf.columns, model.model, Path(str(path)))
    if as_of is not None:
        if DATE_COLUMN in sdf.columns:
            sdf = sdf.filter(F.to_date(F.col(DATE_COLUMN)) == F.lit(as_of))
        else:
            sdf = sdf.withColumn(DATE_COLUMN, F.lit(pd.Timestamp(as_of).to_pydatetime()))
    wanted = dict.fromkeys((ID_COLUMN, DATE_COLUMN, *CONTEXT_COLUMNS, *model.model.feature_names))
    return sdf.select(*[c for c in wanted if c in sdf.columns])


def write_spark_scores(
    spark: SparkSession,
    input_path: str,
    out_path: str,
    model_uri: str,
    as_of: dt.date | None = None,
    top_k: int = 3,
    default_dpd: int = DEFAULT_DPD,
) -> None:
    """Cluster path: read, score and write a folder of Parquet part files, all in Spark. The
    columns are the local output's (`core.output_frame`; model_name, model_version as
    literals)."""
    from pyspark.sql import functions as F

    model = load_scoring_model(model_uri)
    sdf = read_features(spark, input_path, model, as_of)
    scored = score_spark_frame(spark, sdf, model, top_k)
    date = (
        F.col(DATE_COLUMN).cast("timestamp_ntz")
        if DATE_COLUMN in scored.columns
        else F.lit(None).cast("timestamp_ntz")
    )
    if DPD_COLUMN in scored.columns:
        dpd = F.col(DPD_COLUMN)
        status = (
            F.when(dpd.isNull() | F.isnan(dpd), F.lit(UNKNOWN))
            .when(dpd >= default_dpd, F.lit(DEFAULTED))
            .otherwise(F.lit(PERFORMING))
        )
    else:
        status = F.lit(UNKNOWN)
    reasons = []
    for c in reason_columns(max(top_k, MIN_REASON_COLUMNS), with_points=True):
        points = c.endswith(POINTS_SUFFIX)
        if c in scored.columns:
            reasons.append((F.round(F.col(c), 2) if points else F.col(c)).alias(c))
        else:
            reasons.append((F.lit(None).cast("double") if points else F.lit("")).alias(c))
    scored.select(
        ID_COLUMN,
        date.alias("as_of_date"),
        status.alias("status"),
        *PREDICTION_COLUMNS,
        *reasons,
        F.lit(model.name).alias("model_name"),
        F.lit(model.version).alias("model_version"),
    ).write.mode("overwrite").parquet(out_path)


def main(argv: list[str] | None = None) -> None:
    """spark-submit entry point (see the module docstring)."""
    p = argparse.ArgumentParser(description="Score a Parquet feature matrix with Spark.")
    p.add_argument("--input", required=True, help="Parquet file or folder (any Spark path).")
    p.add_argument("--out", required=True, help="Output folder of Parquet part files.")
    p.add_argument("--model", default="models:/loanrisk@champion", help="MLflow model URI.")
    p.add_argument("--as-of", default=None, help="Keep this snapshot date (YYYY-MM-DD).")
    p.add_argument("--top-k", type=int, default=3, help="Reason codes per loan (0: none).")
    p.add_argument("--tracking-uri", default=None, help="MLflow tracking URI.")
    args = p.parse_args(argv)
    if args.tracking_uri:
        mlflow.set_tracking_uri(args.tracking_uri)
    as_of = pd.Timestamp(args.as_of).date() if args.as_of else None
    with spark_session() as spark:
        write_spark_scores(spark, args.input, args.out, args.model, as_of, args.top_k)


def _chunks(
    parts: list[Path], model: ScoringModel, size: int, default_dpd: int = DEFAULT_DPD
) -> ScoredChunks:
    """Spark's scored part files read back in batches of `size` rows, in the output layout."""
    reasons_cols = None
    for part in parts:
        for batch in pq.ParquetFile(part, pre_buffer=False).iter_batches(batch_size=size):
            df = batch.to_pandas()
            if reasons_cols is None:
                reasons_cols = [c for c in df.columns if c.startswith("reason_")]
            X = model.model.prepare(df)
            reasons = df[reasons_cols] if reasons_cols else None
            k = sum(not c.endswith(POINTS_SUFFIX) for c in reasons_cols)
            out = output_frame(model, df, df[list(PREDICTION_COLUMNS)], reasons, k, default_dpd)
            yield out, X, unseen_levels(model.model, df, X), loan_context(df)


if __name__ == "__main__":  # pragma: no cover
    main()
