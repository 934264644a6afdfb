"""Optuna search over LightGBM's parameters; objective = AUC on the out-of-time validation split.

Each trial is a nested MLflow run. Trials stop early through LightGBM's early stopping and are
pruned (median rule) when their validation AUC lags the other trials' at the same iteration.
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
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from pipeline.config import TrainConfig

log = logging.getLogger(__name__)


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
        with mlflow.start_run(nested=True, run_name=f"trial-{trial.number:03d}"):
            booster = lgb.train(
                params,
                d_train,
                num_boost_round=cfg.num_boost_round,
                valid_sets=[d_valid],
                valid_names=["valid"],
                callbacks=[
                    lgb.early_stopping(cfg.early_stopping_rounds, verbose=False),
                    _pruning_callback(trial),
                ],
            )
            auc = float(booster.best_score["valid"]["auc"])
            iterations[trial.number] = booster.best_iteration
            mlflow.log_params(trial.params)
            mlflow.log_metrics({"valid_auc": auc, "best_iteration": booster.best_iteration})
        return auc

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=30),
        study_name="loanrisk-lightgbm",
    )
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


def _pruning_callback(trial: optuna.Trial, every: int = 10):
    """Report validation AUC to Optuna every `every` rounds; stop the trial if it is pruned."""

    def callback(env: lgb.callback.CallbackEnv) -> None:
        if env.iteration % every or not env.evaluation_result_list:
            return
        auc = env.evaluation_result_list[0][2]
        trial.report(auc, env.iteration)
        if trial.should_prune():
            raise optuna.TrialPruned(f"pruned at iteration {env.iteration}")

    callback.order = 25  # after early stopping's bookkeeping
    return callback


def fit_full(
    params: dict[str, Any],
    train: tuple[pd.DataFrame, np.ndarray],
    valid: tuple[pd.DataFrame, np.ndarray],
    cfg: TrainConfig,
    sampled_rows: int,
) -> tuple[lgb.Booster, dict[str, Any]]:
    """The final model when the trials saw a sample of `sampled_rows` training rows: the best
    trial's params with `min_child_samples` scaled to the same share of the rows (a leaf of 50
    of 200k rows is a leaf of 250 of 1M), and the rounds chosen again by early stopping on the
    validation split, which the tuning already used (more rows support more rounds). Returns
    the booster and the params it was fitted with."""
    scaled = dict(params)
    if "min_child_samples" in scaled:
        ratio = len(train[1]) / max(sampled_rows, 1)
        scaled["min_child_samples"] = max(1, round(scaled["min_child_samples"] * ratio))
    d_train = lgb.Dataset(train[0], label=train[1])
    d_valid = lgb.Dataset(valid[0], label=valid[1], reference=d_train)
    booster = lgb.train(
        scaled,
        d_train,
        num_boost_round=cfg.num_boost_round,
        valid_sets=[d_valid],
        valid_names=["valid"],
        callbacks=[lgb.early_stopping(cfg.early_stopping_rounds, verbose=False)],
    )
    return booster, scaled


def fit(params: dict[str, Any], train: tuple[pd.DataFrame, np.ndarray], rounds: int) -> lgb.Booster:
    """The final model: the chosen params, a fixed number of rounds (no validation peeking)."""
    return lgb.train(params, lgb.Dataset(train[0], label=train[1]), num_boost_round=rounds)
