"""Features stage: the point-in-time feature matrix and labels of every snapshot, from the
validated tables (the definitions are in `pipeline.features`)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from pipeline.config import Config
from pipeline.core import catalogue
from pipeline.core.contract import TABLES
from pipeline.core.errors import DataError
from pipeline.core.fingerprint import files_sha256, write_manifest
from pipeline.core.io import write_parquet
from pipeline.core.metadata import save_metadata
from pipeline.features import build_features

log = logging.getLogger(__name__)


def run(cfg: Config) -> Path:
    """Build the matrix from cfg.data.interim_dir and write `features.parquet` and
    `feature_metadata.json` to cfg.data.features_dir (each atomically). Returns the matrix path.
    """
    t0 = time.perf_counter()
    frame, specs = build_features(Path(cfg.data.interim_dir), cfg)
    if frame.empty:
        raise DataError(
            "no active loan at any snapshot date: check the snapshot range "
            "(features.first_snapshot / last_snapshot / min_history_months) against the data"
        )
    out_dir = Path(cfg.data.features_dir)
    path = write_parquet(frame, out_dir / catalogue.FEATURES)
    save_metadata(specs, out_dir / catalogue.FEATURE_METADATA)
    outputs = [catalogue.FEATURES, catalogue.FEATURE_METADATA]
    write_manifest(
        out_dir,
        {
            "stage": "features",
            "inputs_sha256": files_sha256(cfg.data.interim_dir, catalogue.interim_names(TABLES)),
            "outputs_sha256": files_sha256(out_dir, outputs),
        },
    )
    labelled = frame["label"].dropna()
    log.info(
        "features: %d rows x %d features, %d snapshots (%s to %s), %d labelled, label rate "
        "%.2f%%, %.1f s -> %s",
        len(frame),
        len(specs),
        frame["snapshot_date"].nunique(),
        frame["snapshot_date"].min().date(),
        frame["snapshot_date"].max().date(),
        len(labelled),
        100 * float(labelled.mean()) if len(labelled) else float("nan"),
        time.perf_counter() - t0,
        path,
    )
    return path
