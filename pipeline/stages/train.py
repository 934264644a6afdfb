"""Train: tune LightGBM on the out-of-time split, calibrate, log and register the model in MLflow;
promote it last.

`fit` creates the training run (tagged `loanrisk.kind=training`, so `latest_run` finds it),
registers the model (its `promotion` tag `pending`) and writes into the run's folder
`predictions.parquet` (ids, split, label, raw and calibrated PD) and `train_result.json` (the
result and, once decided, the promotion decision), which evaluate, explain and report read
through the run context. `promote` is the last step of a run: `loanrisk train` calls it once
every file of the run is written, `loanrisk run` after the report. A run that fails before it
leaves the champion alias where it was.
"""

from __future__ import annotations

import json
import logging
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import infer_signature
from mlflow.types.schema import ColSpec, Schema
from sklearn.metrics import roc_auc_score

from pipeline.config import Config
from pipeline.core import catalogue, privacy
from pipeline.core.catalogue import RunFiles
from pipeline.core.io import write_json, write_parquet
from pipeline.core.metadata import LABEL_COLUMN
from pipeline.core.secrets import mask_secrets, mask_value
from pipeline.modelling import dataset, registry, tune
from pipeline.modelling.baseline import BASELINE_PD, baseline_pd
from pipeline.modelling.calibration import fit_calibrator
from pipeline.modelling.lineage import data_identity
from pipeline.modelling.model import build_reference, log_model
from pipeline.modelling.registry import Challenger, PromotionDecision
from pipeline.modelling.split import split_label
from pipeline.modelling.tuning_sample import training_sample
from pipeline.plotting import tuning as tuning_plots
from pipeline.runs import tracking
from pipeline.runs.context import KIND_TAG, TRAINING
from pipeline.runs.metric_names import flat_metrics, grouped, grouped_metrics

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    run_id: str
    model_uri: str
    model_version: str | None
    promoted: bool | None  # None: not decided yet (the run is not complete)
    valid_auc: float
    test_auc: float
    test_auc_unconstrained: float | None
    calibration: str
    seconds: float
    run_dir: str
    promotion_reason: str = ""
    split_kind: str = "out_of_time"
    # on a book tuned on a sample: the constrained side of the refit pair, and its rows
    test_auc_constrained_refit: float | None = None
    constraints_pair_rows: int | None = None

    def __str__(self) -> str:
        gate = {
            None: "registered (promotion decided when the run is complete)",
            True: "promoted to champion",
            False: "NOT promoted",
        }[self.promoted]
        # The validation AUC is the tuner's, on raw PDs: the report's is on calibrated PDs.
        text = (
            f"run {self.run_id}: {split_label(self.split_kind)} test AUC {self.test_auc:.4f} "
            f"(calibrated PD; best tuning trial's validation AUC {self.valid_auc:.4f}, raw PD), "
            f"model version {self.model_version} {gate}; calibration {self.calibration}; "
            f"{self.seconds:.0f} s"
        )
        return text + (f"\npromotion: {self.promotion_reason}" if self.promotion_reason else "")


@dataclass(frozen=True)
class Trained:
    """A fitted and registered model whose promotion is still to be decided."""

    result: TrainResult
    challenger: Challenger
    files: RunFiles


def run(cfg: Config, show_progress: bool = True, force: bool = False) -> TrainResult:
    """`loanrisk train`: fit and register, then promote once the run's files are written.
    `force` (`--promote`) promotes across data the gate would not compare."""
    return promote(cfg, fit(cfg, show_progress), force)


def promote(
    cfg: Config,
    trained: Trained,
    force: bool = False,
    before_move: Callable[[], None] | None = None,
) -> TrainResult:
    """The last step of a run: the gate decides under the store's promotion lock; the decision
    goes to train_result.json and the MLflow run, then `before_move()` runs (the runner writes
    the report there) and the alias moves. If anything here fails, the alias stays where it
    was and train_result.json says the promotion was aborted."""
    result = trained.result

    def record(decision: PromotionDecision) -> None:
        decided = replace(result, promoted=decision.promoted, promotion_reason=decision.reason)
        _write_result(decided, decision, trained.files)
        client = mlflow.MlflowClient(tracking_uri=cfg.mlflow.tracking_uri)
        client.log_dict(result.run_id, decision.to_dict(), catalogue.PROMOTION_JSON)
        client.log_metric(result.run_id, grouped("promoted"), float(decision.promoted))
        client.set_tag(
            result.run_id, tracking.NOTE_TAG, run_note(client, result.run_id, decided, cfg)
        )
        if before_move is not None:
            before_move()

    try:
        decision = registry.promote(
            trained.challenger, str(result.model_version), cfg.mlflow, force, before_move=record
        )
    except BaseException:
        _record_abort(cfg, trained)
        raise
    final = replace(result, promoted=decision.promoted, promotion_reason=decision.reason)
    log.debug("promotion: %s", decision.reason)  # the caller prints the result, reason included
    return final


def abandon(cfg: Config, trained: Trained) -> None:
    """A later stage of the run failed before its promotion: tag the version `aborted`, and say
    so in train_result.json and the MLflow run. The alias never moved."""
    _abandon_version(str(trained.result.model_version), cfg)
    _record_abort(cfg, trained)


def _abandon_version(version: str, cfg: Config) -> None:
    try:
        registry.abandon(version, cfg.mlflow)
    except Exception as exc:  # the store may be what failed: keep the stage's error
        log.warning("could not tag version %s aborted: %s", version, exc)


def _record_abort(cfg: Config, trained: Trained) -> None:
    """The run failed before or during its promotion step (the alias did not move): say so in
    train_result.json and the MLflow run, which may already hold the decision."""
    result = trained.result
    aborted = {"promoted": False, "aborted": True, "reason": "the run failed before promotion"}
    try:
        write_json({**asdict(result), "decision": aborted}, trained.files.train_result)
        client = mlflow.MlflowClient(tracking_uri=cfg.mlflow.tracking_uri)
        client.log_dict(result.run_id, aborted, catalogue.PROMOTION_JSON)
        client.log_metric(result.run_id, grouped("promoted"), 0.0)
    except Exception as exc:  # e.g. the full disk that failed the run: keep the first error
        log.warning("could not record the aborted promotion of run %s: %s", result.run_id, exc)


def _constraints_cost(
    tuned: tune.TuneResult,
    final: tune.TuneResult,
    parts: dict[str, tuple[pd.DataFrame, np.ndarray]],
    sample: tuple[pd.DataFrame, np.ndarray] | None,
) -> dict[str, float]:
    """The test AUC of a refit without the monotone constraints (test_auc_unconstrained),
    to set beside the model's. On a book tuned on a sample (`train.tune_rows`), both sides are
    refits on that sample with the tuned trial's parameters and rounds, the constrained one
    logged as test_auc_constrained_refit with the rows both saw (constraints_pair_rows): the
    comparison keeps all else equal at a fraction of the cost of a refit on every row."""
    X_test, y_test = parts["test"]

    def auc(params: dict, train: tuple[pd.DataFrame, np.ndarray], rounds: int) -> float:
        return float(roc_auc_score(y_test, tune.fit(params, train, rounds).predict(X_test)))

    def free(params: dict) -> dict:
        return {k: v for k, v in params.items() if not k.startswith("monotone")}

    if sample is None:
        return {
            "test_auc_unconstrained": auc(free(final.params), parts["train"], final.best_iteration)
        }
    rounds = tuned.best_iteration
    return {
        "test_auc_unconstrained": auc(free(tuned.params), sample, rounds),
        "test_auc_constrained_refit": auc(tuned.params, sample, rounds),
        "constraints_pair_rows": float(len(sample[1])),
    }


def fit(cfg: Config, show_progress: bool = True) -> Trained:
    """Tune, fit, calibrate, log and register the model; write the run's files. No promotion."""
    start = time.perf_counter()
    privacy.id_key(cfg.privacy)  # a missing key fails now, not after tuning
    data = dataset.load(cfg)
    parts = data.parts()
    specs = data.specs
    monotone = [s.monotone for s in specs] if cfg.train.monotone_constraints else None
    experiment_id = tracking.setup(cfg.mlflow)
    tracking.end_stale_runs(experiment_id)
    with mlflow.start_run(run_name=f"train-{time.strftime('%Y%m%d-%H%M%S')}") as active:
        run_id = active.info.run_id
        mlflow.set_tag(KIND_TAG, TRAINING)
        tracking.tag_process()
        _log_context(cfg, data)
        _log_inputs(cfg, data)
        sample = training_sample(data, cfg.train.tune_rows, cfg.seed)
        tune_train = parts["train"]
        if sample is not None:
            tune_train = (tune_train[0].iloc[sample], tune_train[1][sample])
            log.info(
                "tuning on %d of %d training rows (whole customers, train.tune_rows)",
                len(sample),
                len(parts["train"][1]),
            )
        try:
            best = tune.tune(
                tune_train, parts["valid"], cfg.train, cfg.seed, monotone, show_progress
            )
        except BaseException:
            # A signal can land between a trial run's creation and its `with` block, which
            # then never ends it: end every trial still open with the parent.
            tracking.end_running_children(run_id, status="FAILED")
            raise
        curve: dict = {}
        tuned = best
        if sample is None:
            booster = tune.fit(
                best.params, parts["train"], best.best_iteration, valid=parts["valid"], curve=curve
            )
        else:
            booster, final_params = tune.fit_full(
                best.params, parts["train"], parts["valid"], cfg.train, len(sample), curve=curve
            )
            best = replace(best, params=final_params, best_iteration=booster.best_iteration)
            mlflow.log_metrics(
                grouped_metrics(
                    {"tuning_rows": len(sample), "final_rounds": booster.best_iteration}
                )
            )
        tune.log_curves(curve, prefix="curve")
        p_raw = {k: booster.predict(X) for k, (X, _) in parts.items()}
        y = {k: yy for k, (_, yy) in parts.items()}
        calibrator, briers = fit_calibrator(y["valid"], p_raw["valid"], cfg.train.calibration)
        p_cal = {k: calibrator.apply(v) for k, v in p_raw.items()}
        test_auc = float(roc_auc_score(y["test"], p_cal["test"]))
        constraints_cost = {}
        if monotone and any(monotone):
            constraints_cost = _constraints_cost(
                tuned, best, parts, tune_train if sample is not None else None
            )
        unconstrained = constraints_cost.get("test_auc_unconstrained")
        mlflow.log_params(
            {f"best_{k}": v for k, v in best.params.items() if k not in ("monotone_constraints",)}
        )
        mlflow.log_metrics(
            grouped_metrics(
                {
                    "best_valid_auc": best.valid_auc,
                    "best_iteration": best.best_iteration,
                    "tuning_seconds": best.seconds,
                    "n_trials": len(best.study.trials),
                    "test_auc": test_auc,
                    **constraints_cost,
                    **{f"calibration_brier_{k}": v for k, v in briers.items()},
                }
            )
        )
        for name, fig in tuning_plots.study_figures(best.study).items():
            mlflow.log_figure(fig, f"{catalogue.ARTEFACT_TUNING}/{name}")
        reference = build_reference(parts["train"][0], p_cal["train"], cfg.scoring)
        example = _input_example(data.frame.iloc[data.split.index["train"]], specs)
        info = log_model(
            booster, calibrator, specs, data.categories, cfg.scoring, reference, example
        )
        test_idx = data.split.index["test"]
        p_baseline = baseline_pd(data)
        challenger = Challenger(
            run_id=run_id,
            model_uri=info.model_uri,
            identity=data_identity(cfg, specs),
            rows=data.frame.iloc[test_idx].reset_index(drop=True),
            y=y["test"],
            pd=p_cal["test"],
            baseline_auc=float(roc_auc_score(y["test"], p_baseline)),
        )
        mlflow.log_metric(grouped("gate_baseline_auc"), challenger.baseline_auc)
        files = RunFiles.of(cfg.output.reports_dir, run_id)
        _write_predictions(data, p_raw, p_cal, p_baseline, files.predictions, cfg)
        with tracking.quiet_mlflow_prints():  # "Successfully registered ...": said below
            version = registry.register(challenger, cfg.mlflow)
        result = TrainResult(
            run_id=run_id,
            model_uri=info.model_uri,
            model_version=version,
            promoted=None,
            valid_auc=best.valid_auc,
            test_auc=test_auc,
            test_auc_unconstrained=unconstrained,
            test_auc_constrained_refit=constraints_cost.get("test_auc_constrained_refit"),
            constraints_pair_rows=(
                int(constraints_cost["constraints_pair_rows"])
                if "constraints_pair_rows" in constraints_cost
                else None
            ),
            calibration=calibrator.method,
            seconds=time.perf_counter() - start,
            run_dir=str(files.root),
            split_kind=data.split.kind,
        )
        try:
            _write_result(result, None, files)
        except BaseException:
            _abandon_version(version, cfg)  # a run without its files is never champion
            raise
        client = mlflow.MlflowClient()
        note = run_note(client, run_id, result, cfg)
        client.set_tag(run_id, tracking.NOTE_TAG, note)
        # The model card replaces this once the report is written (stages.report).
        client.update_model_version(
            cfg.mlflow.registered_model, version, description=f"PD model of run {run_id}. {note}"
        )
    # One short line: the caller prints the result itself (once).
    log.info("train: run %s, model version %s registered (%.0f s)", run_id, version, result.seconds)
    return Trained(result, challenger, files)


def run_note(client: mlflow.MlflowClient, run_id: str, result: TrainResult, cfg: Config) -> str:
    """The run's answer in one paragraph, for the MLflow run page (`mlflow.note.content`):
    test AUC with its 95% interval (once evaluate has logged it), calibration, champion or not."""
    m = flat_metrics(client.get_run(run_id).data.metrics)
    split = split_label(result.split_kind)
    text = f"{split} test AUC {result.test_auc:.3f}"
    if "test_auc_lower" in m and "test_auc_upper" in m:
        text += f" (95% CI {m['test_auc_lower']:.3f} to {m['test_auc_upper']:.3f})"
    text += f" on calibrated PDs ({result.calibration} calibration"
    if "test_calibration_o_e" in m:
        text += f", observed/expected defaults {m['test_calibration_o_e']:.3f}"
    text += ")"
    if "baseline_auc" in m:
        text += f"; logistic baseline AUC {m['baseline_auc']:.3f}"
    text += "."
    if result.promoted is None:
        text += f" Registered as {cfg.mlflow.registered_model} v{result.model_version}; "
        text += "promotion is decided when the run is complete."
    elif result.promoted:
        text += f" {cfg.mlflow.registered_model} v{result.model_version} is champion"
        text += f": {result.promotion_reason}" if result.promotion_reason else "."
    else:
        text += f" {cfg.mlflow.registered_model} v{result.model_version} is NOT champion"
        text += f": {result.promotion_reason}" if result.promotion_reason else "."
    return text


def _write_result(result: TrainResult, decision: PromotionDecision | None, files: RunFiles) -> None:
    pending = {"promoted": None, "reason": "decided when the run is complete"}
    body = decision.to_dict() if decision is not None else pending
    write_json({**asdict(result), "decision": body}, files.train_result)


def _log_context(cfg: Config, data: dataset.Dataset) -> None:
    """Config, data summary and provenance: enough to reproduce the run."""
    config = mask_value(json.loads(cfg.model_dump_json()))
    flat = pd.json_normalize(config, sep=".").iloc[0].to_dict()
    mlflow.log_params({k: mask_secrets(str(v))[:500] for k, v in flat.items()})
    mlflow.log_dict(config, catalogue.CONFIG_JSON)
    mlflow.log_dict([asdict(s) for s in data.specs], catalogue.FEATURE_METADATA)
    y = data.y
    summary = {}
    for k, idx in data.split.index.items():
        summary[f"{k}_rows"] = len(idx)
        summary[f"{k}_default_rate"] = float(y[idx].mean())
    mlflow.log_metrics(grouped_metrics(summary))
    tags = {"split_kind": data.split.kind, "n_features": str(len(data.specs))}
    for k, v in data.split.dates.items():
        if v:
            tags[f"split_{k}_dates"] = f"{v[0]}..{v[-1]}"
    commit = tracking.git_commit()
    if commit:
        tags["git_commit"] = commit
        tags[tracking.GIT_COMMIT_TAG] = commit  # the UI's "Source" box shows this one
    dirty = tracking.git_dirty()
    if dirty is not None:
        tags["git_dirty"] = str(dirty).lower()
    versions = tracking.package_versions()
    tags.update({f"version.{k}": v for k, v in versions.items()})
    prints = tracking.data_fingerprints(cfg)
    for why in prints["stale"]:
        log.warning("data fingerprint: %s; re-run the earlier stages", why)
    tags.update(tracking.fingerprint_tags(prints))
    tags["data_fingerprint"] = prints["files"]["features" if cfg.data.kind == "tables" else "table"]
    mlflow.set_tags(tags)
    mlflow.log_dict(
        {"git_commit": commit, "git_dirty": dirty, "packages": versions, "data": prints},
        catalogue.PROVENANCE_JSON,
    )


SPLIT_CONTEXT = {"train": "training", "valid": "validation", "test": "test"}


def _log_inputs(cfg: Config, data: dataset.Dataset) -> None:
    """The run's datasets (one per split: name, digest, source, rows), which the MLflow UI lists
    under "Datasets". Metadata only: schema, row count and a hash, never the rows."""
    if cfg.data.kind == "table":
        source_path = Path(cfg.data.path)
    else:
        source_path = Path(cfg.data.features_dir) / catalogue.FEATURES
    source = source_path.resolve().as_uri()
    schema = _schema(data.frame)
    for split, idx in data.split.index.items():
        frame = data.frame.iloc[idx]
        with warnings.catch_warnings():
            # MLflow warns that a local file:// source "can be interpreted in multiple ways"
            # (two registered local source types, the same class): noise on the user's console.
            warnings.simplefilter("ignore")
            ds = mlflow.data.from_pandas(
                frame, source=source, name=f"{source_path.stem}-{split}", targets=LABEL_COLUMN
            )
        # MLflow would infer it per split, testing every value for missing in Python: 19 s of
        # a 20k-customer book's training, minutes on a large one. The same schema, vectorised.
        ds.schema = schema
        mlflow.log_input(ds, context=SPLIT_CONTEXT.get(split, split))


def _schema(frame: pd.DataFrame) -> Schema:
    """MLflow's schema of `frame`: each column's type as MLflow infers it from a few rows, and
    "required" when the column has no missing value in any row."""
    with warnings.catch_warnings():
        # MLflow warns that integer columns cannot hold missing values: this schema is a
        # record of the data, never enforced.
        warnings.simplefilter("ignore")
        types = infer_signature(frame.head(100)).inputs
    complete = frame.notna().all()
    return Schema([ColSpec(c.type, c.name, required=bool(complete[c.name])) for c in types.inputs])


EXAMPLE_QUANTILES = (0.25, 0.5, 0.75)


def _input_example(rows: pd.DataFrame, specs) -> pd.DataFrame:
    """Synthetic model input, one row per quantile in EXAMPLE_QUANTILES: numeric features at
    that quantile of `rows` rounded to 3 significant digits, categoricals at their most frequent
    value. Aggregates only: the artefact shows no real loan's (or person's) values.
    """
    ex = {}
    for s in specs:
        col = rows[s.name]
        if s.kind == "categorical":
            top = col.astype("string").mode(dropna=True)
            ex[s.name] = [top.iloc[0] if len(top) else None] * len(EXAMPLE_QUANTILES)
        else:
            q = pd.to_numeric(col, errors="coerce").astype(float).quantile(list(EXAMPLE_QUANTILES))
            ex[s.name] = [_round_sig(float(v)) for v in q]
    return pd.DataFrame(ex)


def _round_sig(x: float, digits: int = 3) -> float:
    if not np.isfinite(x) or x == 0:
        return x
    return float(round(x, digits - 1 - int(np.floor(np.log10(abs(x))))))


def _write_predictions(data, p_raw, p_cal, p_baseline, path: Path, cfg: Config) -> None:
    """Every split's rows with their PDs, and on the test rows the logistic baseline's PD
    (BASELINE_PD: the gate's, which evaluate compares again rather than fitting it twice)."""
    frames = []
    keys = [c for c in (data.id_col, data.time_col) if c]
    for k, idx in data.split.index.items():
        f = data.frame.iloc[idx][keys + [LABEL_COLUMN]].copy()
        f["split"] = k
        f["pd_raw"] = p_raw[k]
        f["pd"] = p_cal[k]
        f[BASELINE_PD] = p_baseline if k == "test" else np.nan
        frames.append(f)
    preds = pd.concat(frames, ignore_index=True)
    preds["split"] = preds["split"].astype("category")
    write_parquet(privacy.pseudonymise_ids(preds, cfg.privacy), path)
