"""What leaving the protected attributes out costs: two refits of the run's model configuration
on the same split, one on the model's features and one with the protected attributes added, and
their test AUCs. Comparing two refits (not the tuned model with a refit) keeps everything but the
attributes equal, so on a large book both refit on the tuning sample of whole customers
(`train.tune_rows`): the comparison holds on fewer rows at half the cost or less."""

from __future__ import annotations

import lightgbm as lgb
import pandas as pd
from sklearn.metrics import roc_auc_score

from pipeline.modelling.dataset import Dataset
from pipeline.modelling.shap_stability import refit_params
from pipeline.modelling.tuning_sample import scale_min_leaf, training_sample


def protected_auc(
    booster: lgb.Booster,
    data: Dataset,
    protected: tuple[str, ...],
    seed: int,
    n_jobs: int = 1,
    max_rows: int | None = None,
) -> dict[str, float] | None:
    """{"with": test AUC with the attributes, "without": without, "attributes": n,
    "train_rows": rows both refits saw} or None when the frame holds no protected attribute
    outside the model's features. `max_rows`: refit on whole customers holding about this
    many training rows (`training_sample`; None: every training row)."""
    used = {s.name for s in data.specs}
    extra = [c for c in protected if c in data.frame.columns and c not in used]
    if not extra:
        return None
    X = data.X()
    added = data.frame[extra].apply(
        lambda col: col if pd.api.types.is_numeric_dtype(col) else col.astype("category")
    )
    X_with = pd.concat([X, added.set_axis(X.index)], axis=1)
    params = {**refit_params(booster, n_jobs), "seed": seed}
    rounds = booster.current_iteration()
    train, test = data.split.index["train"], data.split.index["test"]
    sample = training_sample(data, max_rows, seed)
    if sample is not None:
        # The booster's leaves were sized for every training row (`tune.fit_full`).
        params = scale_min_leaf(params, len(sample) / len(train))
        train = train[sample]
    y = data.y
    signs = list(params.get("monotone_constraints") or [])
    aucs = {}
    for name, frame in (("without", X), ("with", X_with)):
        if signs:  # the model's features keep their constraints, the attributes get none
            params["monotone_constraints"] = signs + [0] * (frame.shape[1] - len(signs))
        data_ = lgb.Dataset(frame.iloc[train], label=y[train])
        model = lgb.train(params, data_, num_boost_round=rounds)
        aucs[name] = float(roc_auc_score(y[test], model.predict(frame.iloc[test])))
    return {**aucs, "attributes": len(extra), "train_rows": len(train)}
