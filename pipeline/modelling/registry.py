"""Model registry gate: register every trained model, move the champion alias only if it is
at least as good out of time (within a tolerance).

Each version carries its out-of-time AUC as the tag `oot_auc`, so the comparison reads the
registry alone and does not depend on run metric names. Aliases, not the deprecated stages.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from pipeline.config import MlflowConfig

AUC_TAG = "oot_auc"


@dataclass(frozen=True)
class PromotionDecision:
    version: str
    promoted: bool
    new_auc: float
    champion_auc: float | None
    champion_version: str | None
    tolerance: float
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def register_and_promote(
    run_id: str, model_uri: str, oot_auc: float, mlflow_cfg: MlflowConfig
) -> PromotionDecision:
    """Register `model_uri` under `mlflow_cfg.registered_model` (tag oot_auc) and point
    `mlflow_cfg.alias` at it when new_auc >= champion_auc - promotion_tolerance, or when there
    is no champion yet. The version is tagged with the decision; the caller logs it.

    Uses the current MLflow tracking/registry URI. A champion without an `oot_auc` tag cannot
    be compared and is kept (the reason says how to move the alias by hand).
    """
    client = MlflowClient()
    name, alias, tol = mlflow_cfg.registered_model, mlflow_cfg.alias, mlflow_cfg.promotion_tolerance
    champion = _current(client, name, alias)
    new_auc = float(oot_auc)
    mv = mlflow.register_model(model_uri, name, tags={AUC_TAG: repr(new_auc), "run_id": run_id})
    champion_auc = _auc_tag(champion) if champion is not None else None
    promoted, reason = _decide(new_auc, champion, champion_auc, tol, name, alias, mv.version)
    if promoted:
        client.set_registered_model_alias(name, alias, mv.version)
    decision = PromotionDecision(
        version=str(mv.version),
        promoted=promoted,
        new_auc=new_auc,
        champion_auc=champion_auc,
        champion_version=str(champion.version) if champion is not None else None,
        tolerance=tol,
        reason=reason,
    )
    for key, value in {
        "promotion": "promoted" if promoted else "not_promoted",
        "promotion_reason": reason,
        "champion_version_before": decision.champion_version or "",
    }.items():
        client.set_model_version_tag(name, mv.version, key, value)
    return decision


def _decide(
    new_auc: float,
    champion: Any,
    champion_auc: float | None,
    tol: float,
    name: str,
    alias: str,
    version: str,
) -> tuple[bool, str]:
    if not math.isfinite(new_auc):
        return False, f"out-of-time AUC is {new_auc}: nothing to compare, {alias} unchanged"
    if champion is None:
        return True, f"no {alias} yet: v{version} (OOT AUC {new_auc:.4f}) becomes {alias}"
    if champion_auc is None:
        return False, (
            f"{alias} v{champion.version} has no {AUC_TAG} tag to compare against; kept. Move "
            f"the alias by hand if v{version} should serve: MlflowClient()"
            f".set_registered_model_alias({name!r}, {alias!r}, {version!r})"
        )
    bar = champion_auc - tol
    if new_auc >= bar:
        return True, (
            f"OOT AUC {new_auc:.4f} >= {alias} v{champion.version} {champion_auc:.4f} - "
            f"tolerance {tol:g}: v{version} becomes {alias}"
        )
    return False, (
        f"OOT AUC {new_auc:.4f} < {alias} v{champion.version} {champion_auc:.4f} - tolerance "
        f"{tol:g}: {alias} stays v{champion.version}"
    )


def _current(client: MlflowClient, name: str, alias: str) -> Any:
    """The version holding `alias`, or None (no such model or alias yet)."""
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        # unknown model: RESOURCE_DOES_NOT_EXIST; known model without the alias:
        # INVALID_PARAMETER_VALUE. Anything else (store unreachable, ...) is a real error.
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise


def _auc_tag(mv: Any) -> float | None:
    try:
        value = float(mv.tags[AUC_TAG])
    except (KeyError, TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None
