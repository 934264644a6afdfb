"""One typed configuration object, loaded from YAML and validated at start-up.

Every section forbids unknown keys, so a typo (`trian.n_trials`) is an error naming the key
instead of a silently ignored setting.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pipeline.effects import EffectsConfig
from pipeline.errors import ConfigError

DEFAULT_CONFIG = Path("configs/default.yaml")


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataConfig(Section):
    """Where the inputs are and where each stage writes."""

    kind: Literal["tables", "table"] = "tables"
    raw_dir: Path = Path("data/raw")
    interim_dir: Path = Path("data/interim")
    features_dir: Path = Path("data/features")
    # Prepared modelling table (kind: table): one row per loan or per loan and date.
    path: Path | None = None
    target: str | None = None
    id: str | None = None
    time: str | None = None
    # Generate the simulated book into raw_dir when it holds no tables (the default data set).
    generate_if_missing: bool = True

    @model_validator(mode="after")
    def _table_mode_complete(self) -> DataConfig:
        if self.kind == "table":
            missing = [k for k in ("path", "target", "id") if getattr(self, k) is None]
            if missing:
                raise ValueError(f"data.kind 'table' needs data.{', data.'.join(missing)}")
        return self


class GenerateConfig(Section):
    """The simulated lender's book (see pipeline/simulate)."""

    size: str = "default"
    start: dt.date = dt.date(2019, 1, 1)
    months: int = Field(72, ge=24, le=240)
    downturn_year: int | None = 2022
    downturn_strength: float = Field(0.6, ge=0, le=3)
    missing_rate: float = Field(0.03, ge=0, le=0.5)

    @field_validator("size")
    @classmethod
    def _size(cls, v: str) -> str:
        if v not in SIZES and not (v.isdigit() and int(v) >= 50):
            raise ValueError(f"size must be one of {sorted(SIZES)} or a number of customers >= 50")
        return v

    def n_customers(self) -> int:
        return SIZES[self.size] if self.size in SIZES else int(self.size)


SIZES = {"tiny": 400, "small": 1500, "default": 10000, "large": 100000, "xlarge": 500000}


class FeaturesConfig(Section):
    snapshot_freq: Literal["monthly", "quarterly"] = "quarterly"
    first_snapshot: dt.date | None = None
    last_snapshot: dt.date | None = None
    performance_window_months: int = Field(12, ge=1, le=36)
    default_dpd: int = Field(90, ge=30, le=360)
    # Snapshots need this much history before them to be useful.
    min_history_months: int = Field(12, ge=0, le=60)
    duckdb_memory_limit: str = "4GB"
    duckdb_threads: int = Field(2, ge=1, le=64)


class SplitConfig(Section):
    """Out-of-time split by snapshot date: the last snapshots are test, the ones before valid."""

    test_snapshots: int = Field(2, ge=1)
    valid_snapshots: int = Field(2, ge=1)


class TrainConfig(Section):
    n_trials: int = Field(20, ge=1)
    timeout_seconds: float = Field(600, gt=0)
    n_jobs: int = Field(2, ge=1)
    num_boost_round: int = Field(1000, ge=10)
    early_stopping_rounds: int = Field(50, ge=5)
    monotone_constraints: bool = True
    calibration: Literal["auto", "isotonic", "platt", "none"] = "auto"
    max_depth_cap: int = Field(6, ge=2, le=64)


class MlflowConfig(Section):
    tracking_uri: str = "sqlite:///mlruns.db"
    experiment: str = "loanrisk"
    artifact_location: Path = Path("mlartifacts")
    registered_model: str = "loanrisk"
    alias: str = "champion"
    promotion_tolerance: float = Field(0.005, ge=0, le=1)


class Tier(Section):
    name: str
    max_pd: float = Field(gt=0, le=1)


class ScoringConfig(Section):
    """PDO scaling: score = offset + factor * ln(odds good:bad)."""

    base_score: float = 600
    base_odds: float = Field(50, gt=0)
    pdo: float = Field(20, gt=0)
    tiers: tuple[Tier, ...] = (
        Tier(name="A", max_pd=0.01),
        Tier(name="B", max_pd=0.03),
        Tier(name="C", max_pd=0.08),
        Tier(name="D", max_pd=0.20),
        Tier(name="E", max_pd=1.0),
    )
    early_warning_pd: float = Field(0.2, gt=0, le=1)
    chunk_rows: int = Field(200_000, ge=1)
    reasons_top_k: int = Field(3, ge=0, le=20)
    # --engine spark without spark-submit: the master of the session started for the run
    spark_master: str = "local[1]"

    @field_validator("tiers")
    @classmethod
    def _tiers_ordered(cls, v: tuple[Tier, ...]) -> tuple[Tier, ...]:
        bounds = [t.max_pd for t in v]
        if not v or bounds != sorted(bounds) or len(set(bounds)) != len(bounds) or bounds[-1] != 1:
            raise ValueError("tiers need strictly increasing max_pd ending at 1.0")
        return v


class ExplainConfig(Section):
    max_rows: int | None = Field(None, ge=100)
    top_features_plot: int = Field(20, ge=1)


class OutputConfig(Section):
    reports_dir: Path = Path("reports")
    scores_dir: Path = Path("scores")


class Config(Section):
    seed: int = 42
    data: DataConfig = DataConfig()
    generate: GenerateConfig = GenerateConfig()
    features: FeaturesConfig = FeaturesConfig()
    split: SplitConfig = SplitConfig()
    train: TrainConfig = TrainConfig()
    mlflow: MlflowConfig = MlflowConfig()
    scoring: ScoringConfig = ScoringConfig()
    explain: ExplainConfig = ExplainConfig()
    effects: EffectsConfig = EffectsConfig()
    output: OutputConfig = OutputConfig()


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
        node = node.setdefault(part, {})
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
            lines.append(f"  {key}: {err['msg']} (got {err.get('input')!r})")
    return "\n".join(lines)
