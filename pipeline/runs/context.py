"""The run context: one training run, named explicitly and handed to the stages that work on it.

A run is created once, by train, and found again by its id (`open_run`) or, for a stand-alone
command without `--run-id`, as the latest finished training run of the configured experiment,
looked up in MLflow (`latest_run`). No stage finds "its" run through a shared file: a
`loanrisk train` started while a `loanrisk run` is going cannot send the first run's
evaluate/explain/report into the second run.

Stages log through the context's client (`log_metrics`, `log_artifact`, `log_figure`), which
writes to the run by id and never re-opens it as MLflow's active run.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlflow import MlflowClient
from mlflow.entities import Metric
from mlflow.exceptions import MlflowException

from pipeline.config import Config
from pipeline.core.catalogue import RunFiles
from pipeline.core.errors import DataError
from pipeline.runs import tracking
from pipeline.runs.metric_names import grouped

if TYPE_CHECKING:
    import pandas as pd

# Tag that marks a top-level training run (Optuna trials are nested runs without it).
KIND_TAG, TRAINING = "loanrisk.kind", "training"
# MLflow's batch limit is 1,000 metrics per call.
_BATCH = 1000


@dataclass(frozen=True)
class RunContext:
    """One training run: its id, experiment, folder of artefacts and the tracking client."""

    run_id: str
    experiment_id: str
    files: RunFiles
    client: MlflowClient

    @property
    def run_dir(self) -> Path:
        return self.files.root

    def train_result(self) -> dict[str, Any]:
        """What train recorded for this run: model URI and version, AUCs, the promotion decision."""
        path = self.files.train_result
        if not path.exists():
            raise DataError(
                f"run {self.run_id} has no {path}: it is not a complete training run of this "
                "project (train it again, or pass another --run-id)"
            )
        return json.loads(path.read_text())

    def log_metrics(self, metrics: Mapping[str, float]) -> None:
        now = int(time.time() * 1000)
        # grouped for the UI's charts tab (pipeline.runs.metric_names)
        items = [Metric(grouped(k), float(v), now, 0) for k, v in metrics.items()]
        for i in range(0, len(items), _BATCH):
            self.client.log_batch(self.run_id, metrics=items[i : i + _BATCH])

    def log_artifact(self, path: Path | str, folder: str) -> None:
        self.client.log_artifact(self.run_id, str(path), folder)

    def log_table(self, table: pd.DataFrame, artifact_file: str) -> None:
        """A table MLflow's UI can show (JSON), e.g. "evaluation/gains_test.json"."""
        self.client.log_table(self.run_id, table, artifact_file)


def open_run(cfg: Config, run_id: str) -> RunContext:
    """The training run `run_id` of the configured store and experiment."""
    experiment_id = tracking.setup(cfg.mlflow)
    client = MlflowClient(tracking_uri=cfg.mlflow.tracking_uri)
    try:
        run = client.get_run(run_id)
    except MlflowException:
        raise DataError(
            f"no run {run_id!r} in the tracking store {cfg.mlflow.tracking_uri}"
        ) from None
    if run.info.experiment_id != experiment_id:
        raise DataError(
            f"run {run_id} belongs to another experiment than {cfg.mlflow.experiment!r} "
            "(mlflow.experiment)"
        )
    if run.data.tags.get(KIND_TAG) != TRAINING:
        raise DataError(f"run {run_id} is not a training run (an Optuna trial or another tool's)")
    return RunContext(run_id, experiment_id, RunFiles.of(cfg.output.reports_dir, run_id), client)


def latest_run(cfg: Config) -> RunContext:
    """The latest finished training run of the configured experiment."""
    experiment_id = tracking.setup(cfg.mlflow)
    client = MlflowClient(tracking_uri=cfg.mlflow.tracking_uri)
    runs = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`{KIND_TAG}` = '{TRAINING}' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    if not runs:
        raise DataError(
            f"no finished training run in experiment {cfg.mlflow.experiment!r} of "
            f"{cfg.mlflow.tracking_uri}: run `loanrisk train` first"
        )
    run_id = runs[0].info.run_id
    return RunContext(run_id, experiment_id, RunFiles.of(cfg.output.reports_dir, run_id), client)


def resolve(cfg: Config, run_id: str | None) -> RunContext:
    """`--run-id` when given, else the latest finished training run."""
    return open_run(cfg, run_id) if run_id else latest_run(cfg)
