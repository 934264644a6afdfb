"""MLflow set-up, done when a stage starts (never at import time), and run provenance."""

from __future__ import annotations

import contextlib
import logging
import os
import platform
import socket
import subprocess
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from urllib.request import url2pathname

import mlflow
from filelock import FileLock
from sqlalchemy.engine import make_url

from pipeline.config import Config, MlflowConfig
from pipeline.core import catalogue
from pipeline.core.errors import ConfigError
from pipeline.core.fingerprint import file_sha256, read_manifest
from pipeline.core.publish import FILES
from pipeline.core.secrets import safe_url

# Everything that can change a number in a run: model, data handling, tuning, explanation.
PACKAGES = (
    "loanrisk",
    "lightgbm",
    "pandas",
    "numpy",
    "scipy",
    "scikit-learn",
    "pyarrow",
    "pandera",
    "mlflow",
    "optuna",
    "shap",
    "duckdb",
    "pydantic",
    "econml",
)
REPO_DIR = Path(__file__).resolve().parents[2]
# Which process owns a run: a run left RUNNING by a process that no longer exists was killed.
PID_TAG, HOST_TAG = "loanrisk.pid", "loanrisk.host"
# Without this tag MLflow 3's UI opens the experiment in its GenAI view (traces, token usage).
EXPERIMENT_KIND_TAG, EXPERIMENT_KIND = "mlflow.experimentKind", "custom_model_development"
# Tags the MLflow UI shows: the run page's description, and the commit in the run's source box.
NOTE_TAG, GIT_COMMIT_TAG = "mlflow.note.content", "mlflow.source.git.commit"
log = logging.getLogger(__name__)


def setup(cfg: MlflowConfig) -> str:
    """Point MLflow at the configured store and experiment; return the experiment id.

    The artefact location is set explicitly: left to MLflow, artefacts land in `./mlruns` of
    whatever folder the command ran in. The first opening of a new store creates its tables and
    the experiment: done under the store's lock, or two commands started together on a fresh
    store both migrate it and one fails ("no such column").
    """
    mlflow.set_tracking_uri(cfg.tracking_uri)
    location = Path(cfg.artifact_location).resolve().as_uri()
    with store_lock(cfg.tracking_uri):
        exp = mlflow.get_experiment_by_name(cfg.experiment)
        if exp is None:
            exp_id = mlflow.create_experiment(
                cfg.experiment,
                artifact_location=location,
                tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND},
            )
        else:
            check_artifact_location(cfg, exp.artifact_location, location)
            exp_id = exp.experiment_id
            if exp.tags.get(EXPERIMENT_KIND_TAG) is None:  # a store made before the tag
                mlflow.MlflowClient().set_experiment_tag(
                    exp_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND
                )
    mlflow.set_experiment(experiment_id=exp_id)
    return exp_id


@contextlib.contextmanager
def quiet_mlflow_prints():
    """Silence the lines MLflow prints itself (e.g. "Successfully registered model", "Created
    version") inside the block: they bypass logging, so the CLI's log level cannot hide them,
    and they repeat what loanrisk's own summary says."""
    from mlflow.utils import logging_utils

    was = logging_utils.MLFLOW_LOGGING_STREAM.enabled
    logging_utils.disable_logging()
    try:
        yield
    finally:
        logging_utils.MLFLOW_LOGGING_STREAM.enabled = was


def check_artifact_location(cfg: MlflowConfig, recorded: str, configured: str) -> None:
    """ConfigError when the experiment stores its artefacts elsewhere than configured.

    MLflow records an experiment's artefact location as an absolute URI when it is created: a
    copied or moved project would go on writing its models into the original's folder (or a
    folder that no longer exists). Only local (file:) locations are compared; a server store
    decides its own.
    """
    if not recorded.startswith("file:") or recorded.rstrip("/") == configured.rstrip("/"):
        return
    raise ConfigError(
        f"the tracking store {safe_url(cfg.tracking_uri)} keeps the artefacts of experiment "
        f"{cfg.experiment!r} in {recorded}, but mlflow.artifact_location is {configured}: the "
        "store was copied or moved from another folder, and its models would be written into "
        "(or read from) that folder.\nHint: run from the original project folder; or start a "
        "store of your own here (e.g. -o mlflow.tracking_uri=sqlite:///mlruns-copy.db); or, to "
        f"keep writing to the recorded place, -o mlflow.artifact_location={_uri_path(recorded)}."
    )


def _uri_path(uri: str) -> str:
    return url2pathname(urlparse(uri).path)


def store_lock(
    tracking_uri: str, timeout: float = 600.0, purpose: str | None = None
) -> contextlib.AbstractContextManager[object]:
    """An inter-process lock for one tracking store, held around read-decide-write sequences.

    A SQLite store is a file, so its lock is a file beside it and serialises every loanrisk
    process on this machine. A server store (http, postgresql, ...) coordinates its own writes;
    nothing here can lock it across machines, so no lock is taken. `purpose` names a separate
    lock (e.g. "promotion"): the promotion holds its own while it opens the store, which takes
    the set-up lock.
    """
    url = make_url(tracking_uri) if "://" in tracking_uri else None
    if url is None or url.get_backend_name() != "sqlite" or not url.database:
        return contextlib.nullcontext()
    db = Path(url.database)
    db.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(catalogue.store_lock_file(db, purpose), timeout=timeout)


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            continue
    return out


def git_commit() -> str | None:
    """HEAD of the checkout the pipeline code runs from (not of the current folder)."""
    out = _git("rev-parse", "HEAD")
    return out.strip() or None if out is not None else None


def git_dirty() -> bool | None:
    """True when the checkout has uncommitted changes: the commit alone does not give the code."""
    out = _git("status", "--porcelain", "--untracked-files=no")
    return None if out is None else bool(out.strip())


def _git(*args: str) -> str | None:
    try:
        res = subprocess.run(
            ["git", "-C", str(REPO_DIR), *args],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return res.stdout if res.returncode == 0 else None


def data_fingerprints(cfg: Config) -> dict[str, Any]:
    """What the run's data is, by hash: the modelling file as read now, and the manifests of the
    stages that built it (input tables' content and interim files, the features' inputs).

    Returns {"files": {role: sha256}, "ingest": manifest or None, "features": manifest or None,
    "stale": [why the feature matrix may not come from the current interim tables]}.
    """
    out: dict[str, Any] = {"files": {}, "ingest": None, "features": None, "stale": []}
    if cfg.data.kind == "table":
        out["files"]["table"] = file_sha256(cfg.data.path)
        return out
    features = Path(cfg.data.features_dir) / catalogue.FEATURES
    out["files"]["features"] = file_sha256(features)
    out["ingest"] = read_manifest(cfg.data.interim_dir)
    out["features"] = read_manifest(cfg.data.features_dir)
    if out["features"] is not None:
        published = out["features"].get(FILES) or out["features"].get("outputs_sha256") or {}
        if published.get(catalogue.FEATURES) != out["files"]["features"]:
            out["stale"].append(f"{features} changed after the features stage wrote it")
        for name, sha in out["features"]["inputs_sha256"].items():
            path = Path(cfg.data.interim_dir) / name
            if path.exists() and file_sha256(path) != sha:
                out["stale"].append(f"{path} changed after the features were built from it")
    return out


def fingerprint_tags(prints: dict[str, Any]) -> dict[str, str]:
    """Flat MLflow tags: data.sha256.<role> for the files, data.sha256.input.<table> for the
    content of each input table as ingested."""
    tags = {f"data.sha256.{k}": v for k, v in prints["files"].items()}
    for name, entry in ((prints.get("ingest") or {}).get("tables") or {}).items():
        tags[f"data.sha256.input.{name}"] = entry["content_sha256"]
        tags[f"data.sha256.interim.{name}"] = entry["file_sha256"]
    return tags


def tag_process() -> None:
    """Tag the active run with this process, so a later run can tell it was killed."""
    mlflow.set_tags({PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()})


def end_stale_runs(experiment_id: str) -> list[str]:
    """Mark as KILLED the runs still RUNNING whose process (same host) is gone, and their nested
    trial runs; return their ids.

    SIGTERM and Ctrl-C end a run as FAILED; SIGKILL or a crash of the machine cannot, so the next
    training run cleans up. Runs of other hosts, or without a process tag, are left alone.
    """
    client = mlflow.MlflowClient()
    running = client.search_runs(
        [experiment_id], filter_string="attributes.status = 'RUNNING'", max_results=1000
    )
    host = socket.gethostname()
    stale = {
        r.info.run_id
        for r in running
        if r.data.tags.get(HOST_TAG) == host and not _alive(r.data.tags.get(PID_TAG))
    }
    stale |= {r.info.run_id for r in running if r.data.tags.get("mlflow.parentRunId") in stale}
    for run_id in sorted(stale):
        client.set_tag(run_id, "loanrisk.ended_by", "a later run: its process was gone")
        client.set_terminated(run_id, status="KILLED")
        log.warning("run %s was left RUNNING by a killed process: marked KILLED", run_id)
    return sorted(stale)


def end_running_children(parent_run_id: str, status: str = "FAILED") -> list[str]:
    """End the nested runs of `parent_run_id` still RUNNING with `status`; return their ids."""
    client = mlflow.MlflowClient()
    exp = client.get_run(parent_run_id).info.experiment_id
    running = client.search_runs(
        [exp],
        filter_string=f"attributes.status = 'RUNNING' and tags.mlflow.parentRunId = "
        f"'{parent_run_id}'",
        max_results=1000,
    )
    for r in running:
        client.set_terminated(r.info.run_id, status=status)
    return [r.info.run_id for r in running]


def _alive(pid: str | None) -> bool:
    try:
        os.kill(int(pid), 0)  # signal 0: existence check only
    except (TypeError, ValueError, ProcessLookupError):
        return False
    except PermissionError:  # exists, another user's
        return True
    return True
