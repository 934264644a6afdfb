"""Derived data is keyed by its source: which raw tables a folder of derived data came from.

A source is a small JSON-able dict: `{"kind": "files", "path": <raw folder>}` or
`{"kind": "sql", "url": <URL, password masked>, "tables": {...}}`. Ingest and features record
theirs in their manifest, the path relative to the manifest's folder (a project copied or moved
whole keeps its lineage). Ingest and features refuse to replace derived data of another source
unless told to (`data.replace_derived`), and the stages that read derived data refuse data from
a source other than the configured one, so one book's features never feed another book's run.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from pipeline.core.errors import ConfigError, DataError

SOURCE = "source"  # the manifest key


def files_source(raw_dir: Path | str) -> dict[str, Any]:
    return {"kind": "files", "path": str(Path(raw_dir).resolve())}


def sql_source(masked_url: str, tables: dict[str, str]) -> dict[str, Any]:
    return {"kind": "sql", "url": masked_url, "tables": dict(sorted(tables.items()))}


def record(source: dict[str, Any], folder: Path | str) -> dict[str, Any]:
    """`source` as stored in a manifest in `folder` (a files path relative to that folder)."""
    if source["kind"] != "files":
        return source
    try:
        rel = os.path.relpath(source["path"], Path(folder).resolve())
    except ValueError:  # another drive (Windows): keep it absolute
        rel = source["path"]
    return {**source, "path": rel}


def recorded(manifest: dict[str, Any] | None, folder: Path | str) -> dict[str, Any] | None:
    """The source stored in `manifest` (of `folder`), resolved; None when it records none."""
    source = (manifest or {}).get(SOURCE)
    if source is None or source.get("kind") != "files":
        return source
    return {**source, "path": str((Path(folder).resolve() / source["path"]).resolve())}


def describe(source: dict[str, Any]) -> str:
    if source["kind"] == "files":
        return source["path"]
    return f"the database {source['url']}"


def slug(source: dict[str, Any]) -> str:
    """A short folder name for a source: the raw folder's name (its parent's when it is called
    `raw`), or the database's name."""
    if source["kind"] == "files":
        path = Path(source["path"])
        name = path.parent.name if path.name == "raw" else path.name
    else:
        name = source["url"].rsplit("/", 1)[-1].split("?")[0]
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.") or "other"


def guard_replace(
    folder: Path | str,
    previous: dict[str, Any] | None,
    source: dict[str, Any] | None,
    what: str,
    replace: bool,
) -> None:
    """Refuse to write derived data of `source` over that of `previous` in `folder` (ConfigError
    with the overrides to use) unless `replace`; the same source, or no record, passes."""
    if previous is None or source is None or previous == source or replace:
        return
    parent = Path(folder).parent
    name = slug(source)
    raise ConfigError(
        f"{folder} holds {what} of {describe(previous)}, not of {describe(source)}; they are "
        "not replaced silently. To keep both, give this source its own folders: "
        f"-o data.interim_dir={parent / name / 'interim'} "
        f"-o data.features_dir={parent / name / 'features'} (on every command for it, or in its "
        "config file). To replace them, add -o data.replace_derived=true."
    )


def require_source(
    folder: Path | str, found: dict[str, Any] | None, expected: dict[str, Any], what: str
) -> None:
    """Refuse derived data in `folder` made from another source than the configured one
    (DataError); data that records no source passes."""
    if found is None or found == expected:
        return
    raise DataError(
        f"{folder} holds {what} of {describe(found)}, but the configuration reads "
        f"{describe(expected)}. Point data.interim_dir and data.features_dir at this source's "
        "own folders, or run `loanrisk ingest` and `loanrisk features` for it."
    )
