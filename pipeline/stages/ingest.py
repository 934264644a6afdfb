"""Ingest: read the four raw tables, check them against the data contract, write them as Parquet.

    raw_dir/<table>.{parquet,csv} or data.sql    (pipeline.sources.configured_source)
        -> validate_tables                       (pipeline.sources.validation)
        -> interim_dir/<table>.parquet + manifest.json, published as one set

Reading, type conversion, validation and the error messages live in `pipeline.sources`; this
stage only runs them in order and writes the result. The four tables are published together
(`pipeline.core.publish`): a killed ingest leaves the previous four, never new `customers`
beside old `loans`. The manifest records the source; tables of another source are not replaced
unless `data.replace_derived` is set (`pipeline.core.lineage`).
"""

from __future__ import annotations

import logging
from pathlib import Path

from pipeline.config import Config
from pipeline.core import lineage
from pipeline.core.catalogue import table_file
from pipeline.core.fingerprint import file_sha256, frame_sha256, read_manifest
from pipeline.core.io import write_parquet
from pipeline.core.publish import publish_set
from pipeline.sources.configured_source import load_source
from pipeline.sources.validation import validate_tables

logger = logging.getLogger(__name__)


def run(cfg: Config) -> dict[str, Path]:
    """Load, validate and write the four tables; return {table: interim Parquet path}.

    The four tables are published as one set, so a failed or killed run leaves the earlier four
    as they were. Raises DataError when a table is missing, unreadable or breaks the contract
    (nothing is written then), ConfigError when interim_dir holds another source's tables.
    """
    if cfg.data.kind != "tables":
        logger.info("data.kind is %r: no raw tables to ingest", cfg.data.kind)
        return {}
    interim = Path(cfg.data.interim_dir)
    source = cfg.data.source()
    previous = lineage.recorded(read_manifest(interim), interim)
    lineage.guard_replace(interim, previous, source, "tables", cfg.data.replace_derived)
    tables = validate_tables(load_source(cfg.data))
    paths: dict[str, Path] = {}
    manifest: dict[str, dict[str, object]] = {}
    with publish_set(interim, "ingest") as out:
        for name, frame in tables.items():
            staged = write_parquet(frame, table_file(out.root, name))
            paths[name] = out.final(staged)
            manifest[name] = {
                "rows": len(frame),
                "columns": list(frame.columns),
                "content_sha256": frame_sha256(frame),
                "file_sha256": file_sha256(staged),
            }
        out.entries.update({lineage.SOURCE: lineage.record(source, interim), "tables": manifest})
    for name, frame in tables.items():
        logger.info(
            "ingest %s: %s rows x %d columns -> %s",
            name,
            f"{len(frame):,}",
            frame.shape[1],
            paths[name],
        )
    return paths
