"""The configuration schema: one typed, frozen object per section (`pipeline.config.loading`
reads and validates the YAML).

Every section forbids unknown keys, so a typo (`trian.n_trials`) is an error naming the key
instead of a silently ignored setting.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_serializer,
    field_validator,
    model_validator,
)

from pipeline.config.effects import EffectsConfig
from pipeline.core import lineage
from pipeline.core.contract import TABLES
from pipeline.core.errors import ConfigError
from pipeline.core.secrets import safe_url

# A table named in data.sql.tables: [schema.]table, plain identifiers only, so a name can never
# carry SQL; anything else must be a query.
SQL_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62})?$")
SQL_QUERY = re.compile(r"^\s*(select|with)\b", re.IGNORECASE)


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SqlSourceConfig(Section):
    """The four tables read from a database instead of raw_dir (see pipeline/sources/sql_source.py).

    url: a SQLAlchemy URL, e.g. postgresql+psycopg://user@host:5432/db or sqlite:///book.db.
    It is never logged or shown with its password; better still, leave the password out and
    name the environment variable holding it in password_env.
    tables: contract table -> a table name ([schema.]table) or a SELECT/WITH query; a table left
    out is read from the table of its contract name.
    """

    url: str = Field(repr=False)
    password_env: str | None = None
    tables: dict[str, str] = Field(default_factory=dict)
    chunk_rows: int = Field(50_000, ge=100)

    @field_validator("url")
    @classmethod
    def _url_parses(cls, v: str) -> str:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            make_url(v)
        except (ArgumentError, ValueError):
            raise ValueError(
                "expected a SQLAlchemy URL such as postgresql+psycopg://user@host:5432/db "
                "or sqlite:///path/to/book.db"
            ) from None
        return v

    @field_validator("tables")
    @classmethod
    def _tables_known(cls, v: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(v) - set(TABLES))
        if unknown:
            raise ValueError(f"unknown table(s) {', '.join(unknown)}; expected {', '.join(TABLES)}")
        for name, source in v.items():
            if not (SQL_IDENTIFIER.match(source) or SQL_QUERY.match(source)):
                raise ValueError(
                    f"{name}: expected a table name ([schema.]table: letters, digits, _) or a "
                    "query starting with SELECT or WITH"
                )
        return v

    @field_serializer("url")
    def _hide_password(self, v: str) -> str:
        # Config dumps go to MLflow params and config.json: never with the password.
        return safe_url(v)

    def source_for(self, table: str) -> str:
        """The table name or query that holds contract table `table`."""
        return self.tables.get(table, table)

    def resolved_url(self):
        """The sqlalchemy URL to connect with, password from password_env when set."""
        from sqlalchemy.engine import make_url

        url = make_url(self.url)
        if self.password_env:
            password = os.environ.get(self.password_env)
            if password is None:
                raise ConfigError(
                    f"data.sql.password_env names the environment variable {self.password_env}, "
                    "which is not set"
                )
            url = url.set(password=password)
        return url

    def __repr__(self) -> str:
        return f"SqlSourceConfig(url={safe_url(self.url)!r}, tables={self.tables!r})"


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
    # Read the four tables from a database instead of raw_dir.
    sql: SqlSourceConfig | None = None
    # interim_dir and features_dir remember the source they were built from; ingest and features
    # refuse to overwrite another source's data there unless this is true.
    replace_derived: bool = False

    def source(self) -> dict:
        """The source of the four tables, as recorded in the derived data's manifests
        (`pipeline.core.lineage`): the raw folder, or the database (password masked)."""
        if self.sql is not None:
            tables = {t: self.sql.source_for(t) for t in TABLES}
            return lineage.sql_source(safe_url(self.sql.url), tables)
        return lineage.files_source(self.raw_dir)

    @model_validator(mode="after")
    def _table_mode_complete(self) -> DataConfig:
        if self.kind == "table" and self.sql is not None:
            raise ValueError("data.sql reads the four raw tables: it needs data.kind 'tables'")
        if self.kind == "table":
            missing = [k for k in ("path", "target", "id") if getattr(self, k) is None]
            if missing:
                raise ValueError(f"data.kind 'table' needs data.{', data.'.join(missing)}")
        return self


class GenerateConfig(Section):
    """The simulated lender's book (see pipeline/simulator)."""

    size: str = "default"
    start: dt.date = dt.date(2019, 1, 1)
    months: int = Field(72, ge=24, le=240)
    downturn_year: int | None = 2022
    downturn_strength: float = Field(0.6, ge=0, le=3)
    missing_rate: float = Field(0.03, ge=0, le=0.5)

    @field_validator("size", mode="before")
    @classmethod
    def _size(cls, v: object) -> str:
        # `-o generate.size=20000` and `size: 20000` in YAML arrive as ints.
        v = str(v) if isinstance(v, int) and not isinstance(v, bool) else v
        if not isinstance(v, str):
            raise ValueError(f"size must be one of {sorted(SIZES)} or a number of customers >= 50")
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
    # Data minimisation: income is a personal value; rounded, the model files and drift
    # references hold no one's exact income. 0 keeps it exact.
    income_rounding: float = Field(100.0, ge=0)
    duckdb_memory_limit: str = "4GB"
    duckdb_threads: int = Field(2, ge=1, le=64)
    # DuckDB on one machine, or Spark running the same build on partitions of customers.
    engine: Literal["duckdb", "spark"] = "duckdb"
    # Spark master of a session started by `loanrisk features` (spark-submit brings its own).
    spark_master: str = Field("local[2]", min_length=1)
    # Heap of that local session (driver = executor there); spark-submit sets its own.
    spark_driver_memory: str = Field("4g", pattern=r"^[0-9]+[kmgt]?$")
    # Events (instalments + CRM) per Spark partition: one worker holds one partition's build.
    spark_partition_rows: int = Field(2_000_000, ge=1)


class SplitConfig(Section):
    """Out-of-time split by snapshot date: the last snapshots are test, the ones before valid."""

    test_snapshots: int = Field(2, ge=1)
    valid_snapshots: int = Field(2, ge=1)
    # Training snapshots whose label window reaches into the validation period share outcomes
    # with it (the same loan defaulting counts in both): they are dropped. None = the
    # performance window for the four tables, 0 for a prepared table.
    gap_months: int | None = Field(None, ge=0, le=120)


class ExpectedDirection(Section):
    """The direction the business expects the PD to move as a feature grows, and why."""

    direction: Literal["raises", "lowers", "none"]
    why: str = Field(min_length=1)


class TrainConfig(Section):
    n_trials: int = Field(20, ge=1)
    timeout_seconds: float = Field(600, gt=0)
    n_jobs: int = Field(2, ge=1)
    num_boost_round: int = Field(1000, ge=10)
    early_stopping_rounds: int = Field(50, ge=5)
    monotone_constraints: bool = True
    calibration: Literal["auto", "isotonic", "platt", "none"] = "auto"
    max_depth_cap: int = Field(6, ge=2, le=64)
    # Tuning trials (and the refits that only compare: SHAP stability, the protected
    # attributes' cost) see a sample of whole customers holding about this many training rows
    # (pipeline/modelling/tuning_sample.py); the final model is fitted on all of them. None:
    # every trial on every row. On the large book (423k training rows) 100k and 200k chose the
    # same trial and gave test AUCs 0.8463 and 0.8466.
    tune_rows: int | None = Field(100_000, ge=1_000)
    # Per feature, replaces the default expected direction (pipeline/features/specs.py) that a
    # monotone constraint imposes; "none" lifts the constraint. Each needs its one-line reason.
    expected: dict[str, ExpectedDirection] = Field(default_factory=dict)


class MlflowConfig(Section):
    tracking_uri: str = "sqlite:///mlruns.db"
    experiment: str = "loanrisk"
    artifact_location: Path = Path("mlartifacts")
    registered_model: str = "loanrisk"
    alias: str = "champion"
    # The AUC a challenger may lose against the champion before the loss counts as material.
    promotion_tolerance: float = Field(0.005, ge=0, le=1)
    # Customer resamples for the paired interval of (challenger - champion) AUC on the same
    # rows: the challenger is refused when its loss is material and the interval lies below
    # zero (the champion is significantly better). 0: the tolerance alone decides.
    promotion_resamples: int = Field(500, ge=0, le=10_000)
    # auto: a model that passes the gate becomes champion. manual: it is only proposed (tag
    # promotion=proposed) and `loanrisk promote --version N --reason ...` moves the alias,
    # recording who approved it and why.
    promotion_mode: Literal["auto", "manual"] = "auto"
    # Calibration floor of the promotion gate: observed defaults on the test rows within this
    # many binomial standard deviations of the expected (3.29: a two-sided 99.9% interval).
    promotion_calibration_z: float = Field(3.29, gt=0)


class Tier(Section):
    name: str
    max_pd: float = Field(gt=0, le=1)


class ScoringConfig(Section):
    """PDO scaling: score = offset + factor * ln(odds good:bad)."""

    base_score: float = 600
    base_odds: float = Field(50, gt=0)
    # The portfolio's currency code, written before amounts in reason texts ("" for none).
    currency: str = Field("EUR", max_length=8)
    pdo: float = Field(20, gt=0)
    tiers: tuple[Tier, ...] = (
        Tier(name="A", max_pd=0.01),
        Tier(name="B", max_pd=0.03),
        Tier(name="C", max_pd=0.08),
        Tier(name="D", max_pd=0.20),
        Tier(name="E", max_pd=1.0),
    )
    early_warning_pd: float = Field(0.2, gt=0, le=1)
    # With --previous, a loan is flagged when it moves into one of these tiers (None: the model's
    # two worst, D and E by default) or worsens by at least this many notches: a one-notch drift
    # (A->B) is not an early warning.
    early_warning_tiers: tuple[str, ...] | None = None
    early_warning_notches: int = Field(2, ge=1)
    chunk_rows: int = Field(200_000, ge=1)
    reasons_top_k: int = Field(3, ge=0, le=20)
    # Raw tables scored at an explicit --as-of must hold no event after it (a later extract or
    # wrong dates); true allows back-testing on a later extract, later events being ignored.
    allow_events_after_as_of: bool = False
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
    """SHAP report (tables on the test split, plots on a sample) and reason-code scope."""

    # Exact tree SHAP costs about a millisecond a row: the tables read at most this many test
    # rows (a random sample beyond it; None: every row). Mean |SHAP| of 40,000 rows moves by
    # well under the differences the ranking shows.
    max_rows: int | None = Field(40_000, ge=100)
    top_features_plot: int = Field(20, ge=1)
    # Plots need a few thousand points, not the whole split.
    plot_rows: int = Field(5000, ge=100)
    # Exact SHAP for every scored loan, or only for loans in `flagged_tiers`.
    reasons_for: Literal["all", "flagged"] = "all"
    flagged_tiers: tuple[str, ...] = ("D", "E")
    # Refits of the model on customers drawn with replacement: how many of them give each
    # feature the report's direction (0 = skip; each costs about one training fit).
    stability_refits: int = Field(3, ge=0, le=50)
    stability_rows: int = Field(2000, ge=100)  # test rows the refits' SHAP is read on


class ValidationConfig(Section):
    """What the evaluation adds for a model validator (see pipeline/riskmath/calibration_tests.py
    and uncertainty.py)."""

    # Resamples of customers for the test AUC/Gini/KS intervals (0 = no intervals).
    bootstrap_resamples: int = Field(500, ge=0, le=10_000)
    confidence: float = Field(0.95, gt=0.5, lt=1)
    # Fit the WOE scorecard challenger (optbinning) in evaluate.
    scorecard: bool = True
    # Rows per split (train, test) whose exact tree SHAP feeds the characteristic stability
    # (CSI); a random sample when the split is larger (SHAP costs ~250x a prediction).
    csi_rows: int = Field(20_000, ge=100)


# Attributes never used as features nor named as reasons unless the config says otherwise.
PROTECTED_ATTRIBUTES = ("customer_age_years", "gender", "age_band")


class FairnessConfig(Section):
    """Attributes a credit decision must not rest on (age, gender: US ECOA/Regulation B, EU
    non-discrimination law). They are audited on every run where the data has them, are not
    model features unless `use_as_features`, and are never reason codes."""

    protected: tuple[str, ...] = PROTECTED_ATTRIBUTES
    use_as_features: bool = False
    # A numeric protected attribute (age) is audited by band: these are the lower bounds of the
    # bands after the first, e.g. (25, 35, 50, 62) -> <25, 25-34, 35-49, 50-61, 62+.
    bands: tuple[float, ...] = (25, 35, 50, 62)

    @field_validator("bands")
    @classmethod
    def _bands_increase(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if list(v) != sorted(set(v)):
            raise ValueError("fairness.bands must be strictly increasing")
        return v


class PrivacyConfig(Section):
    """Personal data in outputs (see pipeline/core/privacy.py)."""

    # Replace loan/customer ids in reports and artefacts by keyed hashes (HMAC-SHA256).
    pseudonymise_ids: bool = False
    # Environment variable holding the key: a secret never belongs in a config file.
    key_env: str = "LOANRISK_ID_KEY"


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
    validation: ValidationConfig = ValidationConfig()
    fairness: FairnessConfig = FairnessConfig()
    effects: EffectsConfig = EffectsConfig()
    output: OutputConfig = OutputConfig()
    privacy: PrivacyConfig = PrivacyConfig()

    @model_validator(mode="after")
    def _flagged_tiers_exist(self) -> Config:
        names = [t.name for t in self.scoring.tiers]
        unknown = [t for t in self.explain.flagged_tiers if t not in names]
        if unknown:
            raise ValueError(
                f"explain.flagged_tiers {unknown} are not scoring tiers (tiers: {names})"
            )
        return self
