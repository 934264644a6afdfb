"""What the tuner leaves in MLflow: pruned trials end FINISHED (tagged, with their params and the
round they stopped at), and the final fit's learning curves are metric steps."""

from __future__ import annotations

import mlflow
import numpy as np
import optuna
import pytest
from mlflow import MlflowClient
from tiny_model import make_book, training_frame

from pipeline.config import TrainConfig
from pipeline.modelling import tune


@pytest.fixture
def parts():
    book = make_book(600, seed=3)
    X, y = training_frame(book), book["label"].to_numpy()
    return (X.iloc[:400], y[:400]), (X.iloc[400:], y[400:])


@pytest.fixture
def store(tmp_path):
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlruns.db'}")
    exp = mlflow.create_experiment("t", artifact_location=(tmp_path / "art").as_uri())
    mlflow.set_experiment(experiment_id=exp)
    yield MlflowClient(), exp
    mlflow.set_tracking_uri(previous)


def test_pruned_trials_end_finished_with_a_tag_their_params_and_stopping_round(
    parts, store, monkeypatch
):
    client, exp = store
    # Odd trials are pruned at their second report (round 10); MLflow's own handling of the
    # exception would end them FAILED.
    reports: dict[int, int] = {}

    def should_prune(self) -> bool:
        reports[self.number] = reports.get(self.number, 0) + 1
        return self.number % 2 == 1 and reports[self.number] >= 2

    monkeypatch.setattr(optuna.trial.Trial, "should_prune", should_prune)
    cfg = TrainConfig(n_trials=4, n_jobs=1, num_boost_round=60, early_stopping_rounds=20)
    with mlflow.start_run() as parent:
        result = tune.tune(*parts, cfg, seed=0, monotone=None, show_progress=False)
    states = [t.state for t in result.study.trials]
    assert states.count(optuna.trial.TrialState.PRUNED) == 2
    trials = client.search_runs(
        [exp], filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    assert len(trials) == 4
    by_name = {r.info.run_name: r for r in trials}
    for number in (1, 3):
        run = by_name[f"trial-{number:03d}"]
        assert run.info.status == "FINISHED"
        assert run.data.tags[tune.PRUNED_TAG] == "true"
        assert run.data.tags[tune.TRIAL_STATE_TAG] == "pruned"
        assert run.data.metrics["pruned_at_iteration"] == 10
        assert set(run.data.params) == set(result.study.trials[number].params)
    for number in (0, 2):
        run = by_name[f"trial-{number:03d}"]
        assert run.info.status == "FINISHED" and run.data.tags[tune.PRUNED_TAG] == "false"
        assert "valid_auc" in run.data.metrics


def test_learning_curves_leave_the_model_unchanged_and_are_logged_per_round(parts, store):
    client, _ = store
    train, valid = parts
    params = {**tune.base_params(TrainConfig(n_jobs=1), 0, None), "num_leaves": 7}
    plain = tune.fit(params, train, 25)
    curve: dict = {}
    traced = tune.fit(params, train, 25, valid=valid, curve=curve)
    np.testing.assert_array_equal(plain.predict(valid[0]), traced.predict(valid[0]))
    assert set(curve) == {"train", "valid"}
    assert len(curve["valid"]["binary_logloss"]) == 25
    with mlflow.start_run() as run:
        tune.log_curves(curve, prefix="curve")
    history = client.get_metric_history(run.info.run_id, "curve/valid_binary_logloss")
    assert [m.step for m in history] == list(range(1, 26))
    assert history[-1].value == pytest.approx(curve["valid"]["binary_logloss"][-1])
    train_loss = client.get_metric_history(run.info.run_id, "curve/train_binary_logloss")
    assert train_loss[-1].value < train_loss[0].value  # boosting lowers the training loss


def test_the_sampled_final_fit_records_its_curve_without_changing_where_it_stops(parts):
    train, valid = parts
    cfg = TrainConfig(n_jobs=1, num_boost_round=200, early_stopping_rounds=10)
    params = {**tune.base_params(cfg, 0, None), "num_leaves": 7, "min_child_samples": 20}
    plain, _ = tune.fit_full(params, train, valid, cfg, 200)
    curve: dict = {}
    traced, _ = tune.fit_full(params, train, valid, cfg, 200, curve=curve)
    assert traced.best_iteration == plain.best_iteration
    np.testing.assert_array_equal(plain.predict(valid[0]), traced.predict(valid[0]))
    # every round evaluated, the ones after the best until early stopping gave up included
    assert len(curve["valid"]["auc"]) == traced.best_iteration + cfg.early_stopping_rounds
