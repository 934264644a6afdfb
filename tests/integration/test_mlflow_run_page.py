"""What the MLflow UI shows of a tiny run (read through the client, as the UI reads it): the
experiment's kind, the run's description, git commit and datasets, the learning curves, grouped
curve names, FINISHED trials and a description on the model version."""

from __future__ import annotations

import pytest
from mlflow import MlflowClient

from pipeline.runs import tracking
from pipeline.runs.metric_names import flat_metrics

pytestmark = pytest.mark.training


def test_the_run_page_has_a_description_datasets_commit_and_learning_curves(tiny_run):
    client = MlflowClient(tiny_run.tracking_uri)
    run = client.get_run(tiny_run.run_id)
    exp = client.get_experiment(run.info.experiment_id)
    assert exp.tags[tracking.EXPERIMENT_KIND_TAG] == "custom_model_development"

    note = run.data.tags[tracking.NOTE_TAG]
    m = flat_metrics(run.data.metrics)
    assert f"test AUC {m['test_auc']:.3f} (95% CI {m['test_auc_lower']:.3f}" in note
    assert "observed/expected defaults" in note and "champion" in note
    if tracking.git_commit():  # the suite runs from a git checkout, or the tag is absent
        assert run.data.tags[tracking.GIT_COMMIT_TAG] == tracking.git_commit()

    inputs = {d.dataset.name: d for d in run.inputs.dataset_inputs}
    assert set(inputs) == {"features-train", "features-valid", "features-test"}
    contexts = {d.tags[0].value for d in inputs.values()}
    assert contexts == {"training", "validation", "test"}
    test_input = inputs["features-test"].dataset
    assert '"num_rows": ' + str(int(m["test_rows"])) in test_input.profile
    assert test_input.source.endswith('features.parquet"}') and test_input.digest

    curve = client.get_metric_history(tiny_run.run_id, "curve/valid_binary_logloss")
    assert len(curve) == int(m["best_iteration"]) and curve[0].step == 1

    trials = client.search_runs(
        [exp.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{tiny_run.run_id}'"
    )
    assert trials and all(t.info.status == "FINISHED" for t in trials)

    # the charts tab groups by the prefix before "/": a few groups, not 90 single charts
    groups = {k.split("/", 1)[0] for k in run.data.metrics if "/" in k}
    assert {"test", "valid", "train", "calibration", "tuning", "benchmark", "curve"} <= groups
    assert not [k for k in run.data.metrics if "/" not in k]

    version = client.get_model_version("loanrisk", "1")
    assert version.description.strip()
