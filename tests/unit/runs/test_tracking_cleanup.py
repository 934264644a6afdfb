"""A trial run left open by a signal is ended with its parent, and only its parent's."""

from __future__ import annotations

import mlflow
from mlflow import MlflowClient

from pipeline.runs import tracking


def test_end_running_children_ends_only_the_open_trials_of_that_parent(tmp_path) -> None:
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlruns.db'}")
    client = MlflowClient()
    exp = client.create_experiment("t", artifact_location=str(tmp_path / "art"))
    parent = client.create_run(exp).info.run_id
    other = client.create_run(exp).info.run_id
    tag = "mlflow.parentRunId"
    open_trial = client.create_run(exp, tags={tag: parent}).info.run_id
    done_trial = client.create_run(exp, tags={tag: parent}).info.run_id
    client.set_terminated(done_trial, status="FINISHED")
    foreign = client.create_run(exp, tags={tag: other}).info.run_id

    assert tracking.end_running_children(parent) == [open_trial]
    status = {r: client.get_run(r).info.status for r in (open_trial, done_trial, foreign, parent)}
    assert status == {
        open_trial: "FAILED",
        done_trial: "FINISHED",
        foreign: "RUNNING",
        parent: "RUNNING",
    }
