"""Promotion gate on a sqlite registry in tmp: the alias moves only for a good-enough model."""

from __future__ import annotations

import itertools

import pytest
from mlflow import MlflowClient

from pipeline.config import MlflowConfig
from pipeline.modelling.registry import register_and_promote

_names = itertools.count()


@pytest.fixture
def cfg(logged) -> MlflowConfig:
    # a fresh registered model per test: the store is shared by the module
    return MlflowConfig(registered_model=f"loanrisk-{next(_names)}", promotion_tolerance=0.005)


def _register(logged, cfg, auc):
    info, _, _ = logged
    return register_and_promote(info.run_id, info.model_uri, auc, cfg)


def _champion(cfg) -> str:
    return str(MlflowClient().get_model_version_by_alias(cfg.registered_model, cfg.alias).version)


def test_first_model_becomes_champion(logged, cfg):
    d = _register(logged, cfg, 0.71)
    assert d.promoted and d.champion_version is None and d.champion_auc is None
    assert _champion(cfg) == d.version == "1"
    mv = MlflowClient().get_model_version(cfg.registered_model, d.version)
    assert float(mv.tags["oot_auc"]) == 0.71
    assert mv.tags["promotion"] == "promoted"
    assert mv.tags["run_id"] == logged[0].run_id


def test_better_model_takes_the_alias(logged, cfg):
    first = _register(logged, cfg, 0.70)
    second = _register(logged, cfg, 0.72)
    assert second.promoted
    assert second.champion_version == first.version and second.champion_auc == 0.70
    assert _champion(cfg) == second.version


def test_slightly_worse_within_tolerance_is_promoted(logged, cfg):
    _register(logged, cfg, 0.700)
    d = _register(logged, cfg, 0.696)  # 0.004 below, tolerance 0.005
    assert d.promoted and _champion(cfg) == d.version
    assert "tolerance" in d.reason


def test_worse_model_keeps_the_champion(logged, cfg):
    first = _register(logged, cfg, 0.700)
    d = _register(logged, cfg, 0.690)
    assert not d.promoted
    assert _champion(cfg) == first.version
    assert d.champion_auc == 0.700 and d.tolerance == 0.005
    assert f"stays v{first.version}" in d.reason
    mv = MlflowClient().get_model_version(cfg.registered_model, d.version)
    assert mv.tags["promotion"] == "not_promoted"
    assert mv.tags["champion_version_before"] == first.version
    # the rejected version is still registered, for the record
    assert float(mv.tags["oot_auc"]) == 0.690


def test_champion_without_auc_tag_is_kept(logged, cfg):
    first = _register(logged, cfg, 0.70)
    MlflowClient().delete_model_version_tag(cfg.registered_model, first.version, "oot_auc")
    d = _register(logged, cfg, 0.90)
    assert not d.promoted and d.champion_auc is None
    assert "set_registered_model_alias" in d.reason
    assert _champion(cfg) == first.version


def test_nan_auc_is_never_promoted(logged, cfg):
    d = _register(logged, cfg, float("nan"))
    assert not d.promoted
    with pytest.raises(Exception, match="alias"):
        _champion(cfg)
