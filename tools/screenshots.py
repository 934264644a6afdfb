"""`make screenshots`: PNGs of what people look at, for the README, from a finished run.

    python tools/screenshots.py [--config FILE] [-o key=value ...] [--run-id ID] [--out DIR]

Writes `report.png` (the report's first screen) and `mlflow_run.png` (the run's page in the
MLflow UI) at 1280 x 900 into `--out` (default docs/screenshots), as 256-colour PNGs. The run is
the latest finished training run of the configured store unless `--run-id` names one: run
`make train` on the default book first. The MLflow UI is started for the shot (`mlflow ui
--workers 1` on a free port of 127.0.0.1) and stopped afterwards. Exit code 2 when there is no
run, no report or no Chromium.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: the checkout's `pipeline` and `tools`

from pipeline.config import load_config  # noqa: E402
from pipeline.core.errors import DataError  # noqa: E402
from pipeline.reporting.html import compact_png  # noqa: E402
from pipeline.runs.context import resolve  # noqa: E402
from tools.browser import BrowserMissing, browser, new_page  # noqa: E402

# `mlflow ui` started in 43 s on 2 busy cores (tests/integration/test_mlflow_ui.py).
START_TIMEOUT_S = 180
# The run page fetches the run, its metrics and its model after the shell has loaded.
RENDER_TIMEOUT_MS = 60_000
SETTLE_MS = 4_000


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        cfg = load_config(args.config, args.override)
        run = resolve(cfg, args.run_id)
        report = run.files.report
        if not report.exists():
            raise DataError(f"no report {report}: run `loanrisk report --run-id {run.run_id}`")
        args.out.mkdir(parents=True, exist_ok=True)
        run_name = run.client.get_run(run.run_id).data.tags.get("mlflow.runName", run.run_id)
        with browser() as chromium:
            shot(chromium, report.resolve().as_uri(), args.out / "report.png")
            with mlflow_ui(cfg.mlflow.tracking_uri) as base:
                # MLflow 3.17 opens in its GenAI view whatever the experiment's kind tag says;
                # the workflowType parameter switches it to the machine-learning view.
                url = (
                    f"{base}/#/experiments/{run.experiment_id}/runs/{run.run_id}"
                    "?workflowType=machine_learning"
                )
                shot(chromium, url, args.out / "mlflow_run.png", run_name)
    except (DataError, BrowserMissing, TimeoutError) as exc:
        print(f"screenshots: {exc}", file=sys.stderr)
        return 2
    for name in ("report.png", "mlflow_run.png"):
        path = args.out / name
        print(f"{path} ({path.stat().st_size / 1024:.0f} KB)")
    return 0


def shot(chromium, url: str, path: Path, wait_for_text: str | None = None) -> Path:
    """The first screen of `url` as a palette PNG at `path`."""
    page = new_page(chromium)
    try:
        page.goto(url, wait_until="load")
        if wait_for_text:
            page.get_by_text(wait_for_text).first.wait_for(timeout=RENDER_TIMEOUT_MS)
            _close_assistant(page)
            # The UI keeps polling (never network-idle): give the panels' fetches a moment.
            page.wait_for_timeout(SETTLE_MS)
        path.write_bytes(compact_png(page.screenshot()))
    finally:
        page.close()
    return path


def _close_assistant(page) -> None:
    """MLflow 3.17 opens its chat assistant over a quarter of the run page on a first visit:
    close it when it is there (a later MLflow may not have it)."""
    close = page.get_by_role("button", name="Close", exact=True)
    if close.count():
        close.first.click(timeout=5_000)


class mlflow_ui:  # noqa: N801 - used as a context manager, like open()
    """`mlflow ui --workers 1` on a free port against `tracking_uri`, stopped on exit; enter
    gives its base URL once /health answers."""

    def __init__(self, tracking_uri: str) -> None:
        self.tracking_uri = tracking_uri
        self.server: subprocess.Popen | None = None

    def __enter__(self) -> str:
        port = _free_port()
        self.log = tempfile.TemporaryFile()
        cmd = [
            sys.executable, "-m", "mlflow", "ui",
            "--backend-store-uri", self.tracking_uri,
            "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        ]  # fmt: skip
        # Own session: the server and its workers stop together, by process group.
        self.server = subprocess.Popen(
            cmd, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )
        base = f"http://127.0.0.1:{port}"
        start = time.monotonic()
        while time.monotonic() - start < START_TIMEOUT_S:
            if self.server.poll() is not None:
                raise TimeoutError(f"mlflow ui exited ({self.server.returncode}): {self._tail()}")
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=2) as r:
                    if r.status == 200:
                        print(f"mlflow ui served after {time.monotonic() - start:.0f} s")
                        return base
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.5)
        self.__exit__(None, None, None)
        raise TimeoutError(f"mlflow ui did not serve within {START_TIMEOUT_S} s: {self._tail()}")

    def __exit__(self, *exc) -> None:
        if self.server is not None and self.server.poll() is None:
            os.killpg(self.server.pid, signal.SIGTERM)
            try:
                self.server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.server.pid, signal.SIGKILL)
                self.server.wait(timeout=30)
        self.log.close()

    def _tail(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-2000:]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default=str(ROOT / "configs" / "default.yaml"))
    p.add_argument("-o", "--override", action="append", default=[], help="key=value")
    p.add_argument("--run-id", default=None, help="default: the latest finished training run")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    return p


if __name__ == "__main__":
    raise SystemExit(main())
