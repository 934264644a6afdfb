"""Features stage: the point-in-time feature matrix and labels of every snapshot, from the
validated tables (the definitions are in `pipeline.features`).

It reads the interim tables only as the whole set ingest published, from the configured source,
and publishes the matrix and its metadata as one set (`pipeline.core.publish`) whose manifest
records that source (`pipeline.core.lineage`). With `features.engine: spark` the same build runs on
Spark, which writes the matrix partitioned by snapshot date into a private folder; it is read
back and published as the same `features.parquet`, so the later stages do not know which engine
built it (on a cluster, `spark-submit pipeline/features/spark.py` keeps the partitioned folder).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from pipeline.config import Config
from pipeline.core import catalogue, lineage
from pipeline.core.contract import TABLES
from pipeline.core.errors import DataError
from pipeline.core.fingerprint import files_sha256, read_manifest
from pipeline.core.io import owned_tempdir, write_parquet
from pipeline.core.metadata import save_metadata
from pipeline.core.publish import publish_set, read_set
from pipeline.features import build_features

log = logging.getLogger(__name__)


def run(cfg: Config) -> Path:
    """Build the matrix from cfg.data.interim_dir and publish `features.parquet` and
    `feature_metadata.json` to cfg.data.features_dir as one set. Returns the matrix path.

    Raises DataError when the interim tables are not one whole ingest or come from another
    source than the configured one, ConfigError when features_dir holds another source's
    features (unless data.replace_derived).
    """
    t0 = time.perf_counter()
    interim, out_dir = Path(cfg.data.interim_dir), Path(cfg.data.features_dir)
    source = lineage.recorded(read_set(interim), interim)
    lineage.require_source(interim, source, cfg.data.source(), "tables")
    previous = lineage.recorded(read_manifest(out_dir), out_dir)
    lineage.guard_replace(out_dir, previous, source, "features", cfg.data.replace_derived)
    if cfg.features.engine == "spark":
        from pipeline.features.spark import build_features_spark

        with owned_tempdir(out_dir, "spark-features") as scratch:
            frame, specs = build_features_spark(interim, cfg, scratch / "matrix")
    else:
        frame, specs = build_features(interim, cfg)
    if frame.empty:
        raise DataError(
            "no active loan at any snapshot date: check the snapshot range "
            "(features.first_snapshot / last_snapshot / min_history_months) against the data"
        )
    with publish_set(out_dir, "features") as out:
        path = out.final(write_parquet(frame, out.path(catalogue.FEATURES)))
        save_metadata(specs, out.path(catalogue.FEATURE_METADATA))
        out.entries["inputs_sha256"] = files_sha256(interim, catalogue.interim_names(TABLES))
        if source is not None:
            out.entries[lineage.SOURCE] = lineage.record(source, out_dir)
    labelled = frame["label"].dropna()
    log.info(
        "features: %d rows x %d features, %d snapshots (%s to %s), %d labelled, label rate "
        "%.2f%%, %.1f s (%s) -> %s",
        len(frame),
        len(specs),
        frame["snapshot_date"].nunique(),
        frame["snapshot_date"].min().date(),
        frame["snapshot_date"].max().date(),
        len(labelled),
        100 * float(labelled.mean()) if len(labelled) else float("nan"),
        time.perf_counter() - t0,
        cfg.features.engine,
        path,
    )
    return path
