"""Data fingerprints: which exact inputs a run was built from.

Each stage that writes data publishes its files as one set with a manifest
(`pipeline.core.publish`): the SHA-256 of every file, the source the data came from and what the
stage adds. Ingest records, per table, the content hash of the table as read (so a SQL source is
fingerprinted like a file); features records the hashes of the interim files it read. Train logs
both manifests and the current file hashes to MLflow, so a run names the input tables it came
from, not just the feature file.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.core import catalogue
from pipeline.core.errors import DataError
from pipeline.core.io import write_json


def file_sha256(path: Path | str) -> str:
    """SHA-256 of a file's bytes, read in 1 MB blocks (inputs can be large)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def frame_sha256(frame: pd.DataFrame) -> str:
    """SHA-256 of a table's content: column names, dtypes and every value, not the index.

    Independent of the file format it came from: the same validated table read from CSV,
    Parquet or a database gives the same hash.
    """
    h = hashlib.sha256()
    h.update(json.dumps([[str(c), str(t)] for c, t in frame.dtypes.items()]).encode())
    if len(frame):
        h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return h.hexdigest()


def write_manifest(
    folder: Path | str, entries: dict[str, Any], name: str = catalogue.MANIFEST
) -> Path:
    """Write `folder/<name>` (atomically); no timestamps, so a re-run is byte-identical."""
    return write_json(entries, Path(folder) / name)


def read_manifest(folder: Path | str, name: str = catalogue.MANIFEST) -> dict[str, Any] | None:
    """The manifest `folder/<name>`, or None when there is none. DataError when it cannot be
    read (a power cut can leave a renamed file without its content)."""
    path = Path(folder) / name
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise DataError(
            f"{path} is not a readable manifest: re-run the stage that writes {folder}"
        ) from None


def files_sha256(folder: Path | str, names: list[str]) -> dict[str, str]:
    """{name: sha256} of the files `folder/name` that exist."""
    folder = Path(folder)
    return {n: file_sha256(folder / n) for n in names if (folder / n).exists()}
