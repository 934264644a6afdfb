"""Ingest: read the four raw tables, check them against the data contract, write them as Parquet.

    raw_dir/<table>.{parquet,csv} or data.sql    (pipeline.sources.configured_source)
        -> validate_tables                       (pipeline.sources.validation)
        -> interim_dir/<table>.parquet + manifest.json

Reading, type conversion, validation and the error messages live in `pipeline.sources`; this
stage only runs them in order and writes the result.
"""

from __future__ import annotations

import logging
from pathlib import Path

from pipeline.config import Config
from pipeline.core.catalogue import table_file
from pipeline.core.fingerprint import file_sha256, frame_sha256, write_manifest
from pipeline.core.io import write_parquet
from pipeline.sources.configured_source import load_source
from pipeline.sources.validation import validate_tables

logger = logging.getLogger(__name__)


def run(cfg: Config) -> dict[str, Path]:
    """Load, validate and write the four tables; return {table: interim Parquet path}.

    Writes are atomic (`pipeline.core.io.write_parquet`), so a failed run leaves earlier files
    whole. Raises DataError when a table is missing, unreadable or breaks the contract; nothing
    is written then.
    """
    if cfg.data.kind != "tables":
        logger.info("data.kind is %r: no raw tables to ingest", cfg.data.kind)
        return {}
    tables = validate_tables(load_source(cfg.data))
    paths: dict[str, Path] = {}
    manifest: dict[str, dict[str, object]] = {}
    for name, frame in tables.items():
        paths[name] = write_parquet(frame, table_file(cfg.data.interim_dir, name))
        manifest[name] = {
            "rows": len(frame),
            "columns": list(frame.columns),
            "content_sha256": frame_sha256(frame),
            "file_sha256": file_sha256(paths[name]),
        }
        logger.info(
            "ingest %s: %s rows x %d columns -> %s",
            name,
            f"{len(frame):,}",
            frame.shape[1],
            paths[name],
        )
    write_manifest(cfg.data.interim_dir, {"stage": "ingest", "tables": manifest})
    return paths
