"""Commands started together on a fresh tracking store: only one creates its tables.

Without the store's lock, `loanrisk run` and `loanrisk train` started at once both migrated a new
SQLite store and one failed with "no such column: spans.dimension_attributes".
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.helpers import REPO

SETUP = textwrap.dedent(
    """
    import sys
    from pipeline.config import MlflowConfig
    from pipeline.runs import tracking
    root = sys.argv[1]
    cfg = MlflowConfig(
        tracking_uri=f"sqlite:///{root}/mlruns.db",
        experiment="race",
        artifact_location=f"{root}/mlartifacts",
    )
    print(tracking.setup(cfg))
    """
)


def test_commands_started_together_on_a_fresh_store_share_one_experiment(tmp_path):
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", SETUP, str(tmp_path)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    for proc, (_, err) in zip(procs, outs, strict=True):
        assert proc.returncode == 0, err[-2000:]
    assert len({out.strip() for out, _ in outs}) == 1  # one experiment, not one per process


def test_a_server_store_takes_no_file_lock(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    from pipeline.runs.tracking import store_lock

    with store_lock("http://127.0.0.1:5000"):
        pass
    with store_lock(f"sqlite:///{tmp_path}/sub/mlruns.db"):
        assert (tmp_path / "sub" / "mlruns.db.lock").exists()
    assert list(tmp_path.iterdir()) == [tmp_path / "sub"]
