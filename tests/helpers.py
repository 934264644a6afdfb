"""Helpers shared by the tests."""

from __future__ import annotations

import socket
from pathlib import Path

# The checkout's root: the folder of README.md, configs/ and pipeline/.
REPO = Path(__file__).resolve().parents[1]


def tiny_overrides(root: Path, trials: int = 3) -> list[str]:
    """Config overrides that keep every output of a run inside `root`."""
    return [
        f"data.raw_dir={root / 'raw'}",
        f"data.interim_dir={root / 'interim'}",
        f"data.features_dir={root / 'features'}",
        f"output.reports_dir={root / 'reports'}",
        f"output.scores_dir={root / 'scores'}",
        f"mlflow.tracking_uri=sqlite:///{root / 'mlruns.db'}",
        f"mlflow.artifact_location={root / 'mlartifacts'}",
        "generate.size=tiny",
        # A tiny book's test split holds 12-42 defaults, so its AUC is noise (+/- 0.06). With
        # the simulator's planted heterogeneity and per-customer draws (issue 17), seed 1's model
        # ranks 0.804 against the logistic baseline's 0.809 and fails the promotion gate's floor
        # (before: 0.89 against 0.83); seed 5's clears it with 3 trials (0.819 against 0.800)
        # but not with 2, seed 4's fails (0.825 against 0.867); seed 3's clears it with 2 and 3
        # trials alike (0.763 against 0.718, 26 defaults). Tests of the plumbing need a
        # champion; the gate's floor has tests of its own (tests/unit/modelling/test_gate.py).
        "seed=3",
        f"train.n_trials={trials}",
        "train.n_jobs=1",
        "train.num_boost_round=300",
        "explain.plot_rows=500",
        # Refits cost a training fit each; test_report and test_explain cover them.
        "explain.stability_refits=0",
    ]


def latest_train_result(root: Path) -> dict:
    """train_result.json of the latest finished training run of a store set up by
    `tiny_overrides(root)`, found through MLflow as `loanrisk evaluate` finds it."""
    from pipeline.config import load_config
    from pipeline.runs.context import latest_run

    return latest_run(load_config(None, tiny_overrides(root))).train_result()


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (the OS picks it; a race with another process is
    possible but unlikely)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
