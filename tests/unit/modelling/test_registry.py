"""Registry and promotion on a sqlite store in tmp: versions are registered pending, the champion
is re-scored on the challenger's rows, the decision is taken under the promotion lock, and the
alias moves last."""

from __future__ import annotations

import itertools
import threading
import time

import numpy as np
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from tiny_model import make_book

from pipeline.config import MlflowConfig
from pipeline.modelling import registry
from pipeline.modelling.registry import Challenger, promote, register
from pipeline.runs.tracking import store_lock

_names = itertools.count()
IDENTITY = {
    "data.kind": "tables",
    "data.source": "/book/raw",
    "data.label": "90+ dpd within 12 months",
    "features.set": "tiny",
}


@pytest.fixture
def cfg(logged) -> MlflowConfig:
    # a fresh registered model per test: the store is shared by the module
    return MlflowConfig(
        tracking_uri=logged[2],
        registered_model=f"loanrisk-{next(_names)}",
        promotion_tolerance=0.005,
    )


@pytest.fixture(scope="module")
def rows(logged):
    """Test rows of the tiny book and the logged model's own PDs on them."""
    info, _, _ = logged
    import mlflow

    model = mlflow.pyfunc.load_model(info.model_uri).unwrap_python_model()
    book = make_book(1500, seed=7)
    p = model.predict_prepared(model.prepare(book))["pd"].to_numpy()
    return book, book["label"].to_numpy(), p


def _challenger(logged, rows, pd=None, identity=IDENTITY) -> Challenger:
    book, y, p = rows
    return Challenger(
        run_id=logged[0].run_id,
        model_uri=logged[0].model_uri,
        identity=identity,
        rows=book,
        y=y,
        pd=p if pd is None else pd,
        baseline_auc=None,
    )


def _weaker(p: np.ndarray, weight: float = 0.7) -> np.ndarray:
    return (1 - weight) * p + weight * np.random.default_rng(3).permutation(p)


def _run(logged, rows, cfg, pd=None, **kw):
    ch = _challenger(logged, rows, pd, kw.pop("identity", IDENTITY))
    version = register(ch, cfg)
    return promote(ch, version, cfg, **kw)


def _champion(cfg) -> str:
    return str(MlflowClient().get_model_version_by_alias(cfg.registered_model, cfg.alias).version)


def _tags(cfg, version) -> dict:
    return MlflowClient().get_model_version(cfg.registered_model, version).tags


def test_register_leaves_the_alias_alone_until_promote(logged, rows, cfg):
    ch = _challenger(logged, rows)
    version = register(ch, cfg)
    assert _tags(cfg, version)["promotion"] == "pending"
    assert _tags(cfg, version)["data.source"] == "/book/raw"
    assert registry.current(MlflowClient(), cfg.registered_model, cfg.alias) is None
    d = promote(ch, version, cfg)
    assert d.promoted and d.champion_version is None and d.rows == 1500
    assert _champion(cfg) == version == "1"
    assert _tags(cfg, version)["promotion"] == "promoted"


def test_the_champion_is_rescored_on_the_challengers_rows(logged, rows, cfg):
    # The champion's stored tag (0.50) came from another window; on the challenger's own rows
    # it ranks far better than the challenger does. The stored tag would have let it through.
    first = _run(logged, rows, cfg)
    MlflowClient().set_model_version_tag(cfg.registered_model, first.version, "oot_auc", "0.50")
    weak = _weaker(rows[2], 0.5)
    d = _run(logged, rows, cfg, pd=weak)
    assert 0.50 < d.new_auc < d.champion_auc - 0.005
    assert not d.promoted and _champion(cfg) == first.version
    assert f"champion v{first.version} re-scored on the 1500 test rows" in d.reason
    assert _tags(cfg, d.version)["promotion"] == "not_promoted"
    assert _tags(cfg, d.version)["champion_version_before"] == first.version


def test_equal_model_on_the_same_rows_is_promoted(logged, rows, cfg):
    first = _run(logged, rows, cfg)
    d = _run(logged, rows, cfg)
    assert d.promoted and d.champion_auc == pytest.approx(d.new_auc)
    assert d.champion_version == first.version and _champion(cfg) == d.version


def test_a_model_of_other_data_needs_promote(logged, rows, cfg):
    first = _run(logged, rows, cfg)
    small = {**IDENTITY, "data.source": "/small-book/raw"}
    d = _run(logged, rows, cfg, identity=small)
    assert not d.promoted and _champion(cfg) == first.version
    assert "other data" in d.reason and d.champion_auc is None  # not even re-scored
    forced = _run(logged, rows, cfg, identity=small, force=True)
    assert forced.promoted and forced.forced and _champion(cfg) == forced.version


def test_a_constant_model_is_never_promoted(logged, rows, cfg):
    y = rows[1]
    d = _run(logged, rows, cfg, pd=np.full(len(y), y.mean()), force=True)
    assert not d.promoted and "constant prediction" in d.reason
    with pytest.raises(MlflowException, match="alias"):
        _champion(cfg)


def test_a_failure_before_the_move_leaves_the_alias(logged, rows, cfg):
    first = _run(logged, rows, cfg)
    ch = _challenger(logged, rows)
    version = register(ch, cfg)

    def report_fails(decision):
        assert decision.promoted  # it would have been promoted
        raise OSError("No space left on device")

    with pytest.raises(OSError):
        promote(ch, version, cfg, before_move=report_fails)
    assert _champion(cfg) == first.version
    assert _tags(cfg, version)["promotion"] == "aborted"


def test_promotions_are_decided_one_at_a_time(logged, rows, cfg):
    # Two runs finishing together: the second decides under the lock, against the champion the
    # first left, not the one it saw before waiting.
    first = _run(logged, rows, cfg)
    ch = _challenger(logged, rows, pd=_weaker(rows[2], 0.3))  # better than first? no: worse
    version = register(ch, cfg)
    out = {}
    with store_lock(cfg.tracking_uri, purpose="promotion"):
        t = threading.Thread(target=lambda: out.update(d=promote(ch, version, cfg)))
        t.start()
        time.sleep(1.0)
        assert t.is_alive()  # waiting for the lock
        assert "d" not in out
        # meanwhile another run promoted a model: the champion moves to v(best)
        best = register(_challenger(logged, rows), cfg)
        MlflowClient().set_registered_model_alias(cfg.registered_model, cfg.alias, best)
    t.join(60)
    d = out["d"]
    assert d.champion_version == best != first.version
    assert not d.promoted and _champion(cfg) == best


def test_manual_mode_proposes_and_a_person_approves_with_a_reason(logged, rows, cfg):
    manual = cfg.model_copy(update={"promotion_mode": "manual"})
    d = _run(logged, rows, manual)
    assert not d.promoted and "proposed for approval" in d.reason
    assert f"loanrisk promote --version {d.version}" in d.reason
    assert _tags(manual, d.version)["promotion"] == "proposed"
    assert registry.current(MlflowClient(), cfg.registered_model, cfg.alias) is None
    before = registry.approve(d.version, "validated by MRM, ticket 42", "a.reviewer", manual)
    assert before is None and _champion(manual) == d.version
    tags = _tags(manual, d.version)
    assert (
        tags["approved_by"] == "a.reviewer"
        and tags["approval_reason"] == "validated by MRM, ticket 42"
    )
    assert tags["promotion"] == "promoted" and tags["approved_at"].startswith("20")


def test_an_incomplete_or_unknown_version_cannot_be_approved(logged, rows, cfg):
    from pipeline.core.errors import ConfigError

    version = register(_challenger(logged, rows), cfg)  # pending: its run never finished
    with pytest.raises(ConfigError, match=f"v{version} is pending"):
        registry.approve(version, "looks fine", "someone", cfg)
    with pytest.raises(ConfigError, match="no version 99"):
        registry.approve("99", "looks fine", "someone", cfg)
    with pytest.raises(MlflowException):
        _champion(cfg)


def test_promote_command_approves_and_refuses_with_exit_2(logged, rows, cfg, tmp_path):
    from typer.testing import CliRunner

    from pipeline.cli import app

    manual = cfg.model_copy(update={"promotion_mode": "manual"})
    d = _run(logged, rows, manual)
    opts = [
        "-o", f"mlflow.tracking_uri={cfg.tracking_uri}",
        "-o", f"mlflow.registered_model={cfg.registered_model}",
        "-o", f"mlflow.artifact_location={tmp_path / 'unused'}",
    ]  # fmt: skip
    cli = CliRunner()
    blank = cli.invoke(app, ["promote", "--version", d.version, "--reason", " ", *opts])
    assert blank.exit_code == 2 and "--reason must say why" in blank.output
    missing = cli.invoke(app, ["promote", "--version", "99", "--reason", "ok", *opts])
    assert missing.exit_code == 2 and "no version 99" in missing.output
    ok = cli.invoke(
        app, ["promote", "--version", d.version, "--reason", "MRM ok", "--by", "cro", *opts]
    )
    assert ok.exit_code == 0, ok.output
    assert f"v{d.version} is champion (was no champion); approved by cro" in ok.output
    assert _champion(cfg) == d.version
