"""The promotion gate's decision on plain numbers: floor, like for like, the champion on the
same rows. No registry, no model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.modelling.gate import Evidence, GateInput, decide

IDENTITY = {
    "data.kind": "tables",
    "data.source": "/book/raw",
    "data.label": "90+ dpd within 12 months",
    "features.set": "abc",
}


def _rows(n: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from well-calibrated, informative PDs."""
    rng = np.random.default_rng(seed)
    p = 1 / (1 + np.exp(-(rng.normal(-3, 1.2, n))))
    return (rng.random(n) < p).astype(int), p


def _noisy(p: np.ndarray, weight: float, seed: int = 1) -> np.ndarray:
    """A weaker model with the same mean PD: the true PDs mixed with a shuffled copy."""
    rng = np.random.default_rng(seed)
    return (1 - weight) * p + weight * rng.permutation(p)


def _gate(y, p, **kw) -> GateInput:
    return GateInput(
        challenger=Evidence.of(y, p),
        challenger_version="3",
        identity=kw.pop("identity", IDENTITY),
        baseline_auc=kw.pop("baseline_auc", 0.6),
        **kw,
    )


def test_first_good_model_is_promoted():
    y, p = _rows()
    v = decide(_gate(y, p))
    assert v.promoted, v.reason
    assert "no champion yet" in v.reason and "2000 test rows" in v.reason


def test_a_constant_prediction_is_never_promoted_even_forced():
    # German Credit with 2 trials: best_iteration 1, one PD for every row, AUC 0.500.
    y, _ = _rows()
    p = np.full(len(y), y.mean())
    for force in (False, True):
        v = decide(_gate(y, p, baseline_auc=None, force=force))
        assert not v.promoted
        assert "constant prediction" in v.reason and "below the floor" in v.reason


def test_no_better_than_the_logistic_baseline_is_not_promoted():
    y, p = _rows()
    auc = Evidence.of(y, p).auc
    v = decide(_gate(y, p, baseline_auc=auc))
    assert not v.promoted
    assert f"logistic baseline {auc:.4f}" in v.reason and "beats baseline" in v.reason


def test_a_miscalibrated_model_is_not_promoted():
    y, p = _rows()
    v = decide(_gate(y, p / 3))  # ranks as well, predicts a third of the defaults
    assert not v.promoted
    assert "calibration" in v.reason and "outside" in v.reason


def test_the_champion_on_the_same_rows_decides():
    y, p = _rows()
    strong, weak = Evidence.of(y, p), Evidence.of(y, _noisy(p, 0.6))
    kept = decide(
        _gate(y, _noisy(p, 0.6), champion=strong, champion_version="2", champion_identity=IDENTITY)
    )
    assert not kept.promoted
    assert "champion v2 re-scored on the 2000 test rows of v3" in kept.reason
    assert "champion stays v2" in kept.reason
    better = decide(_gate(y, p, champion=weak, champion_version="2", champion_identity=IDENTITY))
    assert better.promoted and "v3 becomes champion" in better.reason


def test_a_champion_of_other_data_is_not_compared_unless_forced():
    # The 500-customer book pointed at with -o data.raw_dir=... must not replace the default
    # book's champion, whatever the two AUCs.
    y, p = _rows()
    other = {**IDENTITY, "data.source": "/small/raw"}
    v = decide(_gate(y, p, champion_version="2", champion_identity=other))
    assert not v.promoted
    assert "other data" in v.reason and "/small/raw" in v.reason and "--promote" in v.reason
    forced = decide(_gate(y, p, champion_version="2", champion_identity=other, force=True))
    assert forced.promoted and forced.forced and "forced by --promote" in forced.reason


def test_a_champion_that_cannot_be_rescored_is_kept():
    y, p = _rows()
    v = decide(
        _gate(
            y,
            p,
            champion_version="2",
            champion_identity=IDENTITY,
            champion_error="OSError: artefacts gone",
        )
    )
    assert not v.promoted and "artefacts gone" in v.reason


@pytest.mark.parametrize("extra", [None, "always fails"])
def test_checks_are_pluggable(extra):
    from pipeline.modelling.gate import CHECKS, Check

    y, p = _rows()

    def veto(g):
        return Check("veto", False, "vetoed", floor=True) if extra else None

    v = decide(_gate(y, p), checks=(*CHECKS, veto))
    assert v.promoted is (extra is None)


def test_a_champion_without_data_identity_is_not_compared():
    y, p = _rows()
    v = decide(_gate(y, p, champion_version="1", champion_identity={}))
    assert not v.promoted and "records no data identity" in v.reason and "--promote" in v.reason


def test_forced_only_when_force_overrode_a_check():
    y, p = _rows()
    v = decide(_gate(y, p, force=True))  # no champion: nothing to override
    assert v.promoted and not v.forced


def _auc_check(verdict):
    return next(c for c in verdict.checks if c.name == "champion AUC")


def test_a_material_auc_loss_refuses_only_when_the_paired_interval_says_it_is_real():
    """Challenger 0.02 below the champion (beyond the 0.005 tolerance): the interval of the
    difference decides. Wholly below 0: the champion is significantly better, refused; holding
    0: the sample cannot tell them apart, promoted. A significant but immaterial loss passes."""
    y, p = _rows()
    champ = Evidence.of(y, p)
    challenger = _noisy(p, 0.3)
    loss = Evidence.of(y, challenger).auc - champ.auc
    assert loss < -0.005
    common = {"champion": champ, "champion_version": "2", "champion_identity": IDENTITY}
    real = decide(_gate(y, challenger, auc_difference=(loss, loss - 0.01, loss + 0.01), **common))
    assert not real.promoted and not _auc_check(real).passed
    assert "(significant)" in _auc_check(real).detail
    noise = decide(_gate(y, challenger, auc_difference=(loss, loss - 0.03, 0.01), **common))
    assert _auc_check(noise).passed and "not significant" in _auc_check(noise).detail
    assert noise.promoted, noise.reason
    without = decide(_gate(y, challenger, **common))
    assert not _auc_check(without).passed  # no interval: the tolerance alone, as before
    tiny = decide(_gate(y, p, auc_difference=(-0.001, -0.002, -0.0005), **common))
    assert _auc_check(tiny).passed


def test_the_registry_measures_the_paired_difference_by_customer():
    from pipeline.modelling.registry import Challenger, paired_auc_difference
    from pipeline.riskmath.uncertainty import auc_difference

    y, p = _rows(600)
    weaker = _noisy(p, 0.5)
    customers = np.repeat(np.arange(200), 3)
    rows = pd.DataFrame({"customer_id": customers})
    ch = Challenger("r", "m", IDENTITY, rows, y, p)
    got = paired_auc_difference(ch, weaker, 200)
    assert got == auc_difference(y, p, weaker, customers, 200, 0.95, seed=0)
    assert got[1] <= got[0] <= got[2]
    assert paired_auc_difference(ch, weaker, 0) is None
