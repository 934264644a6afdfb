"""MLflow set-up, done when a stage starts (never at import time)."""

from __future__ import annotations

import hashlib
import subprocess
from importlib import metadata as importlib_metadata
from pathlib import Path

import mlflow

from pipeline.config import MlflowConfig

PACKAGES = ("lightgbm", "pandas", "numpy", "scikit-learn", "mlflow", "optuna", "shap", "duckdb")


def setup(cfg: MlflowConfig) -> str:
    """Point MLflow at the configured store and experiment; return the experiment id.

    The artefact location is set explicitly: left to MLflow, artefacts land in `./mlruns` of
    whatever folder the command ran in.
    """
    mlflow.set_tracking_uri(cfg.tracking_uri)
    exp = mlflow.get_experiment_by_name(cfg.experiment)
    if exp is None:
        location = Path(cfg.artifact_location).resolve().as_uri()
        exp_id = mlflow.create_experiment(cfg.experiment, artifact_location=location)
    else:
        exp_id = exp.experiment_id
    mlflow.set_experiment(experiment_id=exp_id)
    return exp_id


def package_versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            continue
    return out


def git_commit() -> str | None:
    try:
        res = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return res.stdout.strip() or None if res.returncode == 0 else None


def file_fingerprint(path: Path) -> str:
    """SHA-256 of a file's bytes, read in blocks (inputs can be large)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
