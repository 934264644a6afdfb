"""`mlflow server` (what `make ui` starts) on the store of a tiny run: the run, its metrics and
the registered model with its alias are served through the REST API."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.helpers import free_port

pytestmark = pytest.mark.training

START_TIMEOUT_S = 120  # start-up measured 43 s on 2 cores at load 7 (shared machine)


def test_mlflow_server_serves_the_run_metrics_and_champion(tiny_run, tmp_path):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "server.log"
    cmd = [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", tiny_run.tracking_uri,
        "--artifacts-destination", str(tiny_run.root / "mlartifacts"),
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]  # fmt: skip
    with log_path.open("wb") as log:
        # Own session: the server's workers are stopped with it, by its process group.
        server = subprocess.Popen(
            cmd, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        started = _wait_until_healthy(server, base, log_path)
        print(f"mlflow server answered /health after {started:.1f} s")
        api = f"{base}/api/2.0/mlflow"

        exp = _get(f"{api}/experiments/get-by-name", experiment_name="loanrisk")["experiment"]
        found = requests.post(
            f"{api}/runs/search",
            json={"experiment_ids": [exp["experiment_id"]], "max_results": 100},
            timeout=30,
        )
        found.raise_for_status()
        runs = {r["info"]["run_id"]: r for r in found.json()["runs"]}
        assert tiny_run.run_id in runs
        metrics = {m["key"]: m["value"] for m in runs[tiny_run.run_id]["data"]["metrics"]}
        # grouped for the charts tab: test/..., tuning/..., benchmark/... (runs.metric_names)
        for key in ("test/auc", "test/ks", "test/brier", "tuning/best_valid_auc",
                    "benchmark/oracle_auc", "calibration/test_o_e", "train/rows"):  # fmt: skip
            assert key in metrics, key
        assert 0.5 < metrics["test/auc"] <= 1.0
        # Optuna's trials are nested runs of the training run.
        children = [r for r in runs.values() if _tag(r, "mlflow.parentRunId") == tiny_run.run_id]
        assert len(children) == 2

        model = _get(f"{api}/registered-models/get", name="loanrisk")["registered_model"]
        assert {"alias": "champion", "version": "1"} in model["aliases"]
        version = _get(f"{api}/registered-models/alias", name="loanrisk", alias="champion")
        assert version["model_version"]["run_id"] == tiny_run.run_id
    finally:
        _stop(server)
    assert server.poll() is not None


def _wait_until_healthy(server: subprocess.Popen, base: str, log_path: Path) -> float:
    start = time.perf_counter()
    while time.perf_counter() - start < START_TIMEOUT_S:
        if server.poll() is not None:
            pytest.fail(f"mlflow server exited ({server.returncode}):\n{_tail(log_path)}")
        try:
            if requests.get(f"{base}/health", timeout=2).status_code == 200:
                return time.perf_counter() - start
        except requests.ConnectionError:
            pass
        time.sleep(0.5)
    pytest.fail(f"mlflow server not healthy after {START_TIMEOUT_S} s:\n{_tail(log_path)}")


def _get(url: str, **params: str) -> dict:
    res = requests.get(url, params=params, timeout=30)
    assert res.status_code == 200, f"{url} {params}: {res.status_code} {res.text[:500]}"
    return res.json()


def _tag(run: dict, key: str) -> str | None:
    return next((t["value"] for t in run["data"].get("tags", []) if t["key"] == key), None)


def _stop(server: subprocess.Popen) -> None:
    if server.poll() is not None:
        return
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=30)


def _tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
