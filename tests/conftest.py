"""Shared test set-up: small data, one LightGBM thread, MLflow in a temporary store."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

# Two shared cores: oversubscribed OpenMP threads slow LightGBM down tenfold.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


@dataclass(frozen=True)
class TinyRun:
    """A finished `loanrisk run` on the tiny book: every output under `root`."""

    root: Path
    config_path: Path  # YAML with every path pointing into root
    tracking_uri: str
    run_id: str
    seconds: float


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> TinyRun:
    """One tiny run (2 Optuna trials, 1 thread) shared by the notebook and MLflow UI tests.

    Read-only for its users: a test that trains again needs its own store.
    """
    import json
    import time

    from pipeline import runner
    from pipeline.config import load_config
    from tests.helpers import tiny_overrides

    root = tmp_path_factory.mktemp("tiny_run")
    raw: dict = {}
    for item in [
        *tiny_overrides(root, trials=2),
        "features.duckdb_threads=1",
        "effects.enabled=true",
    ]:
        key, _, value = item.partition("=")
        *sections, leaf = key.split(".")
        node = raw
        for section in sections:
            node = node.setdefault(section, {})
        node[leaf] = yaml.safe_load(value)
    config_path = root / "config.yaml"
    config_path.write_text(yaml.safe_dump(raw, sort_keys=False))
    cfg = load_config(config_path)
    start = time.perf_counter()
    runner.run(cfg)
    seconds = time.perf_counter() - start
    metrics = json.loads((cfg.output.reports_dir / "metrics.json").read_text())
    return TinyRun(root, config_path, cfg.mlflow.tracking_uri, metrics["run_id"], seconds)


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    """The tiny model of tests/tiny_model.py logged once per module: (model_info, parts,
    tracking_uri)."""
    import mlflow
    from tiny_model import tiny_parts, use_store

    from pipeline.modelling.model import log_model

    previous = mlflow.get_tracking_uri()
    uri = use_store(tmp_path_factory.mktemp("mlflow"))
    parts = tiny_parts()
    with mlflow.start_run():
        info = log_model(**parts)
    yield info, parts, uri
    mlflow.set_tracking_uri(previous)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Files in order of expected cost: slow and training, slow, training, the rest (stable
    within each).

    `make test` hands whole files to two workers in this order (`--dist loadfile
    --no-loadscope-reorder`), so the longest start first. xdist's default order (files with most
    tests first) left the longest single test (truth recovery, minutes) to start near the end,
    alone on one core.
    """
    rank: dict[str, int] = {}
    for item in items:
        cost = 2 * (item.get_closest_marker("slow") is None)
        cost += item.get_closest_marker("training") is None
        path = item.nodeid.split("::")[0]
        rank[path] = min(cost, rank.get(path, cost))
    items.sort(key=lambda item: rank[item.nodeid.split("::")[0]])
