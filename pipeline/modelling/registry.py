"""Model registry: register every trained model, and move the champion alias (the promotion)
as the last step of a run, under the store's promotion lock.

`register` records a version with its data identity (`lineage`) and out-of-time AUC; its
`promotion` tag reads `pending` until `promote` decides. `promote` takes the lock, reads the
champion, re-scores it on the challenger's own test rows, asks the gate
(`pipeline.modelling.gate`), tags the version with the decision and moves the alias last. Two
runs finishing together therefore decide one after the other, the second against the first's
outcome. With `promotion_mode: manual` a version the gate passes is only `proposed`, and
`approve` (`loanrisk promote`) moves the alias for a person, recording who and why. Aliases, not
the deprecated stages.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from pipeline.config import MlflowConfig
from pipeline.core.errors import ConfigError
from pipeline.modelling.gate import IDENTITY_KEYS, Evidence, GateInput, Verdict, decide
from pipeline.modelling.trust import load_trusted_model
from pipeline.riskmath.uncertainty import auc_difference
from pipeline.runs.tracking import store_lock

AUC_TAG = "oot_auc"
PROMOTION_TAG, PENDING, PROPOSED = "promotion", "pending", "proposed"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Challenger:
    """A trained model and what the gate needs to judge it: its test rows (features as the model
    takes them), their labels, its calibrated PDs on them, and the logistic baseline's AUC."""

    run_id: str
    model_uri: str
    identity: Mapping[str, str]
    rows: pd.DataFrame
    y: np.ndarray
    pd: np.ndarray
    baseline_auc: float | None = None

    @property
    def evidence(self) -> Evidence:
        return Evidence.of(self.y, self.pd)


@dataclass(frozen=True)
class PromotionDecision:
    version: str
    promoted: bool
    new_auc: float
    champion_auc: float | None  # the champion re-scored on the challenger's test rows
    champion_version: str | None
    tolerance: float
    reason: str
    rows: int = 0  # test rows both models were measured on
    forced: bool = False
    checks: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def register(challenger: Challenger, cfg: MlflowConfig) -> str:
    """Register the challenger's model under `cfg.registered_model`; its version. The alias is
    not touched: `promote` does that once the run is complete."""
    tags = {
        AUC_TAG: repr(challenger.evidence.auc),
        "run_id": challenger.run_id,
        PROMOTION_TAG: PENDING,
        **challenger.identity,
    }
    mv = mlflow.register_model(challenger.model_uri, cfg.registered_model, tags=tags)
    return str(mv.version)


def promote(
    challenger: Challenger,
    version: str,
    cfg: MlflowConfig,
    force: bool = False,
    before_move: Callable[[PromotionDecision], None] | None = None,
) -> PromotionDecision:
    """Decide under the store's promotion lock whether `version` replaces the champion, record
    the decision on the version, call `before_move(decision)` (the runner writes the report
    there) and move the alias last.

    If `before_move` raises, the alias stays and the version is tagged `aborted`.
    """
    client = MlflowClient(tracking_uri=cfg.tracking_uri)
    name, alias = cfg.registered_model, cfg.alias
    with store_lock(cfg.tracking_uri, purpose="promotion"):
        champion = current(client, name, alias)
        verdict, champ_ev = judge(challenger, version, champion, cfg, force)
        ev = challenger.evidence
        decision = PromotionDecision(
            version=version,
            promoted=verdict.promoted,
            new_auc=ev.auc,
            champion_auc=champ_ev.auc if champ_ev is not None else None,
            champion_version=str(champion.version) if champion is not None else None,
            tolerance=cfg.promotion_tolerance,
            reason=verdict.reason,
            rows=ev.n,
            forced=verdict.forced,
            checks=[asdict(c) for c in verdict.checks],
        )
        try:
            if before_move is not None:
                before_move(decision)
        except BaseException:
            abandon(version, cfg)
            raise
        if decision.promoted and cfg.promotion_mode == "manual":
            decision = replace(
                decision,
                promoted=False,
                reason=f"proposed for approval (promotion_mode manual): {decision.reason}. "
                f'Approve with `loanrisk promote --version {version} --reason "..."`',
            )
            outcome = PROPOSED
        else:
            outcome = "promoted" if decision.promoted else "not_promoted"
        _tag(client, name, version, outcome, decision.reason, decision.champion_version)
        if decision.promoted:
            client.set_registered_model_alias(name, alias, version)
    return decision


def approve(version: str, reason: str, approver: str, cfg: MlflowConfig) -> str | None:
    """A person's decision: make `version` the champion, recording who approved it, when and
    why, under the promotion lock. Refuses a version whose run did not complete (pending or
    aborted). Returns the version that was champion before (None if there was none)."""
    client = MlflowClient(tracking_uri=cfg.tracking_uri)
    name, alias = cfg.registered_model, cfg.alias
    with store_lock(cfg.tracking_uri, purpose="promotion"):
        try:
            mv = client.get_model_version(name, version)
        except MlflowException:
            raise ConfigError(f"no version {version} of registered model {name!r}") from None
        state = mv.tags.get(PROMOTION_TAG, "")
        if state in (PENDING, "aborted"):
            raise ConfigError(
                f"{name} v{version} is {state}: its run did not complete, so it has no report "
                "or evaluation to approve; train again"
            )
        before = current(client, name, alias)
        previous = str(before.version) if before is not None else None
        _tag(client, name, version, "promoted", f"approved by {approver}: {reason}", previous)
        for key, value in {
            "approved_by": approver,
            "approval_reason": reason[:5000],
            "approved_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }.items():
            client.set_model_version_tag(name, version, key, value)
        client.set_registered_model_alias(name, alias, version)
    return previous


def abandon(version: str, cfg: MlflowConfig) -> None:
    """Tag `version` `aborted`: its run failed before its promotion; the alias never moved."""
    client = MlflowClient(tracking_uri=cfg.tracking_uri)
    _tag(client, cfg.registered_model, version, "aborted", "the run failed before promotion", None)


def judge(
    challenger: Challenger,
    version: str,
    champion: Any,
    cfg: MlflowConfig,
    force: bool = False,
) -> tuple[Verdict, Evidence | None]:
    """The gate's verdict on `challenger` against `champion` (a model version or None), and the
    champion's evidence: it is re-scored on the challenger's test rows when it was built on the
    same data (None otherwise, or when it cannot be scored)."""
    champion_identity = (
        {k: champion.tags.get(k) for k in IDENTITY_KEYS if k in champion.tags}
        if champion is not None
        else {}
    )
    champ_ev, error = None, None
    same = champion is not None and all(
        challenger.identity.get(k) == champion_identity.get(k) for k in IDENTITY_KEYS
    )
    difference = None
    if same:
        try:
            champ_pd = rescore(champion, cfg, challenger.rows)
            champ_ev = Evidence.of(challenger.y, champ_pd)
            difference = paired_auc_difference(challenger, champ_pd, cfg.promotion_resamples)
        except Exception as exc:  # any failure to load or score: the champion is not comparable
            error = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}"
            log.warning("champion v%s could not be re-scored: %s", champion.version, error)
    verdict = decide(
        GateInput(
            challenger=challenger.evidence,
            challenger_version=version,
            identity=challenger.identity,
            baseline_auc=challenger.baseline_auc,
            champion=champ_ev,
            champion_version=str(champion.version) if champion is not None else None,
            champion_identity=champion_identity,
            champion_error=error,
            tolerance=cfg.promotion_tolerance,
            calibration_z=cfg.promotion_calibration_z,
            auc_difference=difference,
            force=force,
        )
    )
    return verdict, champ_ev


def paired_auc_difference(
    challenger: Challenger, champion_pd: np.ndarray, resamples: int
) -> tuple[float, float, float] | None:
    """Challenger AUC - champion AUC on the challenger's test rows, with a 95% interval from
    resampling customers (rows when there are no customer ids); None without resamples or with
    one class."""
    y = np.asarray(challenger.y)
    if not resamples or len(np.unique(y)) < 2:
        return None
    rows = challenger.rows
    clusters = rows["customer_id"].to_numpy() if "customer_id" in rows else np.arange(len(y))
    return auc_difference(y, challenger.pd, champion_pd, clusters, resamples, 0.95, seed=0)


def rescore(champion: Any, cfg: MlflowConfig, rows: pd.DataFrame) -> np.ndarray:
    """The champion's calibrated PDs on `rows` (features as the model takes them)."""
    uri = f"models:/{cfg.registered_model}/{champion.version}"
    model = load_trusted_model(uri).unwrap_python_model()
    return model.predict_prepared(model.prepare(rows))["pd"].to_numpy(dtype=float)


def current(client: MlflowClient, name: str, alias: str) -> Any:
    """The version holding `alias`, or None (no such model or alias yet)."""
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        # unknown model: RESOURCE_DOES_NOT_EXIST; known model without the alias:
        # INVALID_PARAMETER_VALUE. Anything else (store unreachable, ...) is a real error.
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise


def _tag(
    client: MlflowClient,
    name: str,
    version: str,
    outcome: str,
    reason: str,
    champion_before: str | None,
) -> None:
    for key, value in {
        PROMOTION_TAG: outcome,
        "promotion_reason": reason[:5000],
        "champion_version_before": champion_before or "",
    }.items():
        client.set_model_version_tag(name, version, key, value)
