"""The experiment is tagged as a machine-learning one, so MLflow 3's UI does not open it in
its GenAI view (traces, token usage); stores made before the tag get it on the next run."""

from __future__ import annotations

import mlflow
from mlflow import MlflowClient

from pipeline.config import MlflowConfig
from pipeline.runs import tracking


def test_new_and_existing_experiments_are_tagged_custom_model_development(tmp_path):
    previous = mlflow.get_tracking_uri()
    try:
        uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
        cfg = MlflowConfig(tracking_uri=uri, experiment="fresh", artifact_location=tmp_path / "a")
        exp_id = tracking.setup(cfg)
        client = MlflowClient(uri)
        assert client.get_experiment(exp_id).tags["mlflow.experimentKind"] == (
            "custom_model_development"
        )
        old = client.create_experiment("old", artifact_location=(tmp_path / "b").as_uri())
        assert "mlflow.experimentKind" not in client.get_experiment(old).tags
        tracking.setup(
            cfg.model_copy(update={"experiment": "old", "artifact_location": tmp_path / "b"})
        )
        assert client.get_experiment(old).tags["mlflow.experimentKind"] == (
            "custom_model_development"
        )
    finally:
        mlflow.set_tracking_uri(previous)
