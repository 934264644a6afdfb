"""Optuna search over LightGBM's parameters; objective = AUC on the out-of-time validation split.

Each trial is a nested MLflow run. Trials stop early through LightGBM's early stopping and are
pruned (median rule) when their validation AUC lags the other trials' at the same iteration. A
pruned trial is a normal outcome of the search, not an error: its run ends FINISHED, tagged
`pruned`, with its params and the iteration it stopped at (MLflow would mark it FAILED).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import mlflow
import numpy as np
import optuna
import pandas as pd
from mlflow.entities import Metric
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from pipeline.config import TrainConfig
from pipeline.core.heartbeat import Heartbeat, output_is_terminal
from pipeline.modelling.tuning_sample import scale_min_leaf

log = logging.getLogger(__name__)
# Tags of a trial's run: how it ended, and the boosting round a pruned trial stopped at.
TRIAL_STATE_TAG, PRUNED_TAG = "loanrisk.trial_state", "pruned"


@dataclass
class TuneResult:
    params: dict[str, Any]  # full LightGBM params of the best trial
    best_iteration: int
    valid_auc: float
    study: optuna.Study
    seconds: float


def base_params(cfg: TrainConfig, seed: int, monotone: list[int] | None) -> dict[str, Any]:
    params: dict[str, Any] = {
        "objective": "binary",
        "metric": "auc",
        "verbosity": -1,
        "seed": seed,
        "deterministic": True,
        "force_col_wise": True,
        "num_threads": cfg.n_jobs,
        "feature_pre_filter": False,
    }
    if monotone and any(monotone):
        params["monotone_constraints"] = monotone
        params["monotone_constraints_method"] = "advanced"
    return params


def search_space(trial: optuna.Trial, cfg: TrainConfig) -> dict[str, Any]:
    return {
        "num_leaves": trial.suggest_int("num_leaves", 4, 64, log=True),
        "max_depth": trial.suggest_int("max_depth", 2, cfg.max_depth_cap),
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.15, log=True),
        # Each loan appears in many snapshots: large leaves stop the trees memorising loans.
        "min_child_samples": trial.suggest_int("min_child_samples", 50, 1000, log=True),
        "lambda_l1": trial.suggest_float("lambda_l1", 1e-8, 10.0, log=True),
        "lambda_l2": trial.suggest_float("lambda_l2", 1e-8, 30.0, log=True),
        "bagging_fraction": trial.suggest_float("bagging_fraction", 0.5, 1.0),
        "bagging_freq": 1,
        "feature_fraction": trial.suggest_float("feature_fraction", 0.3, 1.0),
    }


def tune(
    train: tuple[pd.DataFrame, np.ndarray],
    valid: tuple[pd.DataFrame, np.ndarray],
    cfg: TrainConfig,
    seed: int,
    monotone: list[int] | None,
    show_progress: bool = True,
) -> TuneResult:
    """Run the study; every trial logs its params and validation AUC as a nested MLflow run."""
    start = time.perf_counter()
    d_train = lgb.Dataset(train[0], label=train[1], free_raw_data=False)
    d_valid = lgb.Dataset(valid[0], label=valid[1], reference=d_train, free_raw_data=False)
    fixed = base_params(cfg, seed, monotone)
    iterations: dict[int, int] = {}

    def objective(trial: optuna.Trial) -> float:
        params = {**fixed, **search_space(trial, cfg)}
        stopped: dict[str, int] = {}
        pruned: optuna.TrialPruned | None = None
        with mlflow.start_run(nested=True, run_name=f"trial-{trial.number:03d}"):
            mlflow.log_params(trial.params)
            try:
                booster = _train_early_stopped(
                    params, d_train, d_valid, cfg, _pruning_callback(trial, stopped)
                )
            except optuna.TrialPruned as exc:
                # Raised outside the `with`, so the run ends FINISHED rather than FAILED.
                pruned = exc
                mlflow.set_tags({TRIAL_STATE_TAG: "pruned", PRUNED_TAG: "true"})
                mlflow.log_metric("pruned_at_iteration", stopped.get("iteration", 0))
            else:
                auc = float(booster.best_score["valid"]["auc"])
                iterations[trial.number] = booster.best_iteration
                mlflow.set_tags({TRIAL_STATE_TAG: "complete", PRUNED_TAG: "false"})
                mlflow.log_metrics({"valid_auc": auc, "best_iteration": booster.best_iteration})
        if pruned is not None:
            raise pruned
        return auc

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=30),
        study_name="loanrisk-lightgbm",
    )
    # A bar where a terminal shows it; a line every few seconds in a log file or a pipe.
    beat = Heartbeat("tuning", log, enabled=not (show_progress and output_is_terminal()))
    with Progress(
        TextColumn("tuning"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} trials  best valid AUC {task.fields[best]}"),
        TimeElapsedColumn(),
        disable=not show_progress,
        transient=True,
    ) as progress:
        task = progress.add_task("tune", total=cfg.n_trials, best="-")

        def on_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
            best = f"{study.best_value:.4f}" if _has_complete(study) else "-"
            progress.update(task, advance=1, best=best)
            done = len(study.trials)
            pruned = sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials)
            beat.beat(done, cfg.n_trials, f"trials, {pruned} pruned, best valid AUC {best}")

        study.optimize(
            objective,
            n_trials=cfg.n_trials,
            timeout=cfg.timeout_seconds,
            callbacks=[on_trial],
            catch=(),
        )
    if not _has_complete(study):
        raise RuntimeError("no tuning trial completed; raise train.timeout_seconds")
    best = study.best_trial
    params = {**fixed, **search_space(optuna.trial.FixedTrial(best.params), cfg)}
    return TuneResult(
        params=params,
        best_iteration=max(iterations[best.number], 1),
        valid_auc=float(best.value),
        study=study,
        seconds=time.perf_counter() - start,
    )


def _has_complete(study: optuna.Study) -> bool:
    return any(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)


def _pruning_callback(trial: optuna.Trial, stopped: dict[str, int], every: int = 10):
    """Report validation AUC to Optuna every `every` rounds; stop the trial if it is pruned
    (the round it stopped at goes into `stopped["iteration"]`)."""

    def callback(env: lgb.callback.CallbackEnv) -> None:
        if env.iteration % every or not env.evaluation_result_list:
            return
        auc = env.evaluation_result_list[0][2]
        trial.report(auc, env.iteration)
        if trial.should_prune():
            stopped["iteration"] = env.iteration
            raise optuna.TrialPruned(f"pruned at iteration {env.iteration}")

    callback.order = 25  # after early stopping's bookkeeping
    return callback


def log_curves(curve: dict[str, dict[str, list[float]]], prefix: str, run_id: str | None = None):
    """The learning curves LightGBM recorded ({set: {metric: [value per round]}}) as metric
    steps `<prefix>/<set>_<metric>` (step = boosting round), in one batch: one call per value
    is 7x slower on the SQLite store. `run_id`: the active run when None."""
    now = int(time.time() * 1000)
    metrics = [
        Metric(f"{prefix}/{name}_{metric}", float(v), now, step)
        for name, by_metric in curve.items()
        for metric, values in by_metric.items()
        for step, v in enumerate(values, start=1)
    ]
    if metrics:
        run_id = run_id or mlflow.active_run().info.run_id
        mlflow.MlflowClient().log_batch(run_id, metrics=metrics)


def fit(
    params: dict[str, Any],
    train: tuple[pd.DataFrame, np.ndarray],
    rounds: int,
    valid: tuple[pd.DataFrame, np.ndarray] | None = None,
    curve: dict[str, Any] | None = None,
) -> lgb.Booster:
    """The final model: the chosen params, a fixed number of rounds (no validation peeking).

    With `valid` and `curve` (a dict), the train and validation log loss of every round are
    recorded into `curve` for the learning curves: evaluation only, no early stopping, so the
    model is the same as without them. Log loss, not AUC: AUC sorts the training rows again at
    every round.
    """
    d_train = lgb.Dataset(train[0], label=train[1])
    if valid is None or curve is None:
        return lgb.train(params, d_train, num_boost_round=rounds)
    d_valid = lgb.Dataset(valid[0], label=valid[1], reference=d_train)
    return lgb.train(
        {**params, "metric": "binary_logloss"},
        d_train,
        num_boost_round=rounds,
        valid_sets=[d_train, d_valid],
        valid_names=["train", "valid"],
        callbacks=[lgb.record_evaluation(curve)],
    )


def fit_full(
    params: dict[str, Any],
    train: tuple[pd.DataFrame, np.ndarray],
    valid: tuple[pd.DataFrame, np.ndarray],
    cfg: TrainConfig,
    sampled_rows: int,
    curve: dict[str, Any] | None = None,
) -> tuple[lgb.Booster, dict[str, Any]]:
    """The final model when the trials saw a sample of `sampled_rows` training rows: the best
    trial's params with `min_child_samples` scaled to the same share of the rows (a leaf of 50
    of 200k rows is a leaf of 250 of 1M), and the rounds chosen again by early stopping on the
    validation split, which the tuning already used (more rows support more rounds). Returns
    the booster and the params it was fitted with. With `curve` (a dict) the validation metric
    of every round is recorded into it (the early-stopping metric only: another metric would
    change where it stops)."""
    scaled = scale_min_leaf(params, len(train[1]) / max(sampled_rows, 1))
    d_train = lgb.Dataset(train[0], label=train[1])
    d_valid = lgb.Dataset(valid[0], label=valid[1], reference=d_train)
    recorder = [lgb.record_evaluation(curve)] if curve is not None else []
    booster = _train_early_stopped(scaled, d_train, d_valid, cfg, *recorder)
    return booster, scaled


def _train_early_stopped(
    params: dict[str, Any],
    d_train: lgb.Dataset,
    d_valid: lgb.Dataset,
    cfg: TrainConfig,
    *callbacks: Any,
) -> lgb.Booster:
    """Boost up to `cfg.num_boost_round` rounds, stopping when the validation AUC has not risen
    for `cfg.early_stopping_rounds`; `callbacks` join it (LightGBM orders them by `order`)."""
    return lgb.train(
        params,
        d_train,
        num_boost_round=cfg.num_boost_round,
        valid_sets=[d_valid],
        valid_names=["valid"],
        callbacks=[lgb.early_stopping(cfg.early_stopping_rounds, verbose=False), *callbacks],
    )
