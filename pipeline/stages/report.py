"""Report stage: one self-contained HTML page per training run, `reports/<run_id>/report.html`,
also logged to the run.

Gathers what the train, evaluate and explain stages left in the run's folder (metrics.json, the
CSV tables, every PNG), the run's params, metrics and tuning plots in MLflow, train_result.json
(the promotion decision) and, when it exists, the effect study's section; `pipeline.reporting`
renders the page. Aggregates and ids only: tables are rendered from aggregate CSVs, and columns
named like personal data are dropped defensively.
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path

import pyarrow.parquet as pq

from pipeline.config import Config
from pipeline.core import catalogue
from pipeline.core.catalogue import RunFiles
from pipeline.core.io import write_text
from pipeline.core.metadata import LABEL_COLUMN, load_metadata
from pipeline.core.publish import read_set
from pipeline.reporting.inputs import TUNING_PLOTS, ReportInputs
from pipeline.reporting.model_card import Definition, render_card
from pipeline.reporting.page import render
from pipeline.runs.context import RunContext
from pipeline.runs.metric_names import flat_metrics

log = logging.getLogger(__name__)


def run(cfg: Config, run: RunContext) -> str:
    """Write the report and the model card of training run `run` and log them to that run; the
    card is also the description of the run's model version in the registry."""
    inputs = gather(cfg, run)
    path = write(inputs)
    run.log_artifact(path, catalogue.ARTEFACT_REPORT)
    card = render_card(inputs, definition(cfg))
    card_path = write_text(card, run.files.model_card)
    card_path.chmod(0o644)
    run.log_artifact(card_path, catalogue.ARTEFACT_REPORT)
    version = inputs.latest.get("model_version")
    if version:
        run.client.update_model_version(cfg.mlflow.registered_model, str(version), description=card)
    size_kb = path.stat().st_size / 1024
    log.info("report %s (%.0f KB)", path, size_kb)
    return f"report: {path} ({size_kb:.0f} KB)"


def gather(cfg: Config, run: RunContext) -> ReportInputs:
    latest = run.train_result()
    run_id = run.run_id
    run_dir = run.run_dir
    # Explain's and the effect study's files are read only as the whole sets they published:
    # a stage killed while publishing is re-run, not shown half (DataError).
    read_set(run_dir, catalogue.EXPLAIN_MANIFEST, rerun=f"loanrisk explain --run-id {run_id}")
    metrics_path = run.files.metrics
    metrics = json.loads(metrics_path.read_text()) if metrics_path.exists() else {}
    if not metrics:
        log.warning("no %s: run `loanrisk evaluate` for the metrics tables", metrics_path)
    src = cfg.data.path if cfg.data.kind == "table" else cfg.data.raw_dir
    inputs = ReportInputs(
        run_id=run_id,
        run_dir=run_dir,
        latest=latest,
        metrics=metrics,
        data_kind=cfg.data.kind,
        data_source=str(src),
        model_name=cfg.mlflow.registered_model,
        gap_months=gap_months(cfg),
        labelled_rows=labelled_rows(cfg),
    )
    effects = catalogue.effects_dir(cfg.output.reports_dir)
    if (effects / catalogue.EFFECTS_HTML).exists():
        read_set(effects)
        inputs.effects_dir = effects
    client = run.client
    r = client.get_run(run_id)
    inputs.run_metrics = flat_metrics(r.data.metrics)  # logged grouped (runs.metric_names)
    inputs.run_params = dict(r.data.params)
    inputs.run_tags = dict(r.data.tags)
    children = client.search_runs(
        [run.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{run_id}'",
        max_results=5000,
    )
    inputs.trials = [
        {
            "name": c.data.tags.get("mlflow.runName", c.info.run_id),
            "status": c.info.status,
            "valid_auc": c.data.metrics.get("valid_auc"),
        }
        for c in children
    ]
    with tempfile.TemporaryDirectory() as tmp:
        try:
            local = Path(client.download_artifacts(run_id, catalogue.ARTEFACT_TUNING, tmp))
        except Exception as exc:  # the tuning plots are optional: a run may have none
            log.debug("no tuning plots for run %s: %s", run_id, exc)
        else:
            for name in TUNING_PLOTS:
                if (local / name).exists():
                    inputs.tuning_pngs[name] = (local / name).read_bytes()
    return inputs


def gap_months(cfg: Config) -> int:
    """The purge gap the split used (as `modelling.dataset` sets it): the snapshot book's
    default is the performance window, a prepared table's none."""
    if cfg.split.gap_months is not None:
        return cfg.split.gap_months
    return cfg.features.performance_window_months if cfg.data.kind == "tables" else 0


def labelled_rows(cfg: Config) -> int | None:
    """Labelled rows of the feature matrix (the purge gap's included), read from the Parquet
    footer and the label column only; None in table mode or before `loanrisk features`."""
    path = cfg.data.features_dir / catalogue.FEATURES
    if cfg.data.kind != "tables" or not path.exists():
        return None
    label = pq.read_table(path, columns=[LABEL_COLUMN]).column(0)
    return len(label) - label.null_count


def definition(cfg: Config) -> Definition:
    """The label, window and constraints the run's model was built with."""
    constraints: list[tuple[str, str, str]] = []
    meta = cfg.data.features_dir / catalogue.FEATURE_METADATA
    if cfg.train.monotone_constraints and cfg.data.kind == "tables" and meta.exists():
        constraints = [
            (s.name, s.expected, s.description)
            for s in load_metadata(meta)
            if s.expected != "unknown"
        ]
    return Definition(
        default_dpd=cfg.features.default_dpd,
        window_months=cfg.features.performance_window_months,
        min_history_months=cfg.features.min_history_months,
        gap_months=cfg.split.gap_months,
        registered_model=cfg.mlflow.registered_model,
        constraints=constraints,
    )


def write(inputs: ReportInputs) -> Path:
    path = write_text(render(inputs), RunFiles(inputs.run_dir).report)
    path.chmod(0o644)  # meant to be shared; the atomic temporary file is created 0600
    return path
