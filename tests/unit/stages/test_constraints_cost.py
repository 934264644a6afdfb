"""The cost of the monotone constraints in train: a refit without them on every training row,
or on a book tuned on a sample, a constrained and an unconstrained refit on that sample."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score
from tiny_model import make_book, training_frame

from pipeline.config import TrainConfig
from pipeline.modelling import tune
from pipeline.stages.train import _constraints_cost


def _setup():
    book = make_book(900, seed=5)
    X, y = training_frame(book), book["label"].to_numpy()
    parts = {"train": (X.iloc[:600], y[:600]), "test": (X.iloc[600:], y[600:])}
    monotone = [1, 1, -1, 0]  # dpd_now, late_count_6m, tenure_months, product
    params = {
        **tune.base_params(TrainConfig(n_jobs=1), 0, monotone),
        "learning_rate": 0.1,
        "num_leaves": 7,
        "min_child_samples": 20,
    }
    result = tune.TuneResult(params, 30, 0.7, study=None, seconds=0.0)
    return parts, result


def test_without_a_sample_one_refit_without_constraints_on_every_row():
    parts, tuned = _setup()
    cost = _constraints_cost(tuned, tuned, parts, None)
    assert set(cost) == {"test_auc_unconstrained"}
    free = {k: v for k, v in tuned.params.items() if not k.startswith("monotone")}
    booster = tune.fit(free, parts["train"], 30)
    expected = roc_auc_score(parts["test"][1], booster.predict(parts["test"][0]))
    assert cost["test_auc_unconstrained"] == expected


def test_on_a_sampled_book_both_refits_see_the_tuning_sample():
    parts, tuned = _setup()
    rows = np.arange(0, 600, 2)
    sample = (parts["train"][0].iloc[rows], parts["train"][1][rows])
    # the final model's params (leaves scaled to every row) must not be the pair's
    final = tune.TuneResult({**tuned.params, "min_child_samples": 40}, 55, 0.7, None, 0.0)
    cost = _constraints_cost(tuned, final, parts, sample)
    assert cost["constraints_pair_rows"] == 300
    constrained = tune.fit(tuned.params, sample, 30)
    X_test, y_test = parts["test"]
    assert cost["test_auc_constrained_refit"] == roc_auc_score(y_test, constrained.predict(X_test))
    assert 0.5 < cost["test_auc_unconstrained"] <= 1.0
    assert cost["test_auc_unconstrained"] != cost["test_auc_constrained_refit"]
