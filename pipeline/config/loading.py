"""Read a YAML config, apply `-o key=value` overrides and validate it against the schema.

Errors name the offending key (and never show a password), so a typo stops the run at start-up.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from pipeline.config.schema import Config
from pipeline.core.errors import ConfigError
from pipeline.core.secrets import mask_secrets

DEFAULT_CONFIG = Path("configs/default.yaml")


def load_config(path: Path | str | None = None, overrides: list[str] | None = None) -> Config:
    """Read YAML, apply `key.sub=value` overrides, validate. Errors name the offending key."""
    path = Path(path) if path is not None else DEFAULT_CONFIG
    raw: dict[str, Any] = {}
    if path.exists():
        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"config {path}: not valid YAML: {exc}") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"config {path}: expected a mapping of sections at the top level")
    elif path != DEFAULT_CONFIG:
        raise ConfigError(f"config file {path} does not exist")
    for item in overrides or []:
        _apply_override(raw, item)
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, path)) from None


def _apply_override(raw: dict[str, Any], item: str) -> None:
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {item!r}: expected key=value, e.g. train.n_trials=5")
    node = raw
    parts = key.strip().split(".")
    for part in parts[:-1]:
        if node.get(part) is None:  # absent, or an optional section left null (data.sql)
            node[part] = {}
        node = node[part]
        if not isinstance(node, dict):
            raise ConfigError(f"override {item!r}: {part} is not a section")
    node[parts[-1]] = yaml.safe_load(value) if value.strip() else None


def _describe(exc: ValidationError, path: Path) -> str:
    lines = [f"config {path} is invalid:"]
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            lines.append(f"  {key}: unknown key (check the spelling against configs/default.yaml)")
        else:
            # The input may be a database URL (or a section holding one): mask its password.
            lines.append(f"  {key}: {err['msg']} (got {mask_secrets(repr(err.get('input')))})")
    return "\n".join(lines)
