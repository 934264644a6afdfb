"""The `loanrisk effects` stage: read the validated tables, run the effect study, add the
simulator's truth when the data are the generated book, write the reports and log the MLflow run.

    cfg.data.interim_dir/*.parquet -> study -> cfg.output.reports_dir/effects/ + an MLflow run
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pandas as pd

from pipeline.config import Config
from pipeline.core import catalogue, lineage
from pipeline.core.contract import TABLES
from pipeline.core.errors import DataError
from pipeline.core.publish import read_set
from pipeline.effects.policy import PolicyReplay, replay_policies
from pipeline.effects.results import log_results, with_verdicts, write_results
from pipeline.effects.study import run_study
from pipeline.effects.truth import add_truth, generated_book, truth_for_book

log = logging.getLogger(__name__)


def run(cfg: Config) -> str:
    """Run the study on the validated tables in cfg.data.interim_dir; return a plain summary.

    Writes cfg.output.reports_dir/effects/{effects.csv, effects.json, tiers.csv, overlap.csv,
    effects.html, forest.png, overlap.png} and logs them to an MLflow run named "effects".
    """
    t0 = time.perf_counter()
    interim = Path(cfg.data.interim_dir)
    source = lineage.recorded(read_set(interim), interim)  # one whole ingest, or DataError
    lineage.require_source(interim, source, cfg.data.source(), "tables")
    tables = read_interim(interim)
    study = run_study(tables, cfg)
    truth_note = ""
    if study.config.truth == "auto":
        truth, truth_note = truth_for_book(cfg, tables, study)
        if truth is not None:
            study.table = add_truth(study.table, truth)
            if study.config.policy_replay:
                study.policy = _replay(cfg, tables, study)
    out_dir = catalogue.effects_dir(cfg.output.reports_dir)
    outputs = write_results(study, out_dir, truth_note=truth_note)
    log_results(study, outputs, cfg.mlflow)
    log.info("effects study: %.0f s -> %s", time.perf_counter() - t0, out_dir)
    return outputs.summary + f"\nfiles: {out_dir}"


def _replay(cfg: Config, tables: dict[str, pd.DataFrame], study) -> PolicyReplay | None:
    """The policy replay at the study's last snapshot (the book is the generated one: its truth
    was just reproduced), from the conditional effects as cate.json holds them (with each
    lever's verdict: scoring offers only levers shown to reduce default on average)."""
    window = study.config.outcome_window_months or cfg.features.performance_window_months
    book = generated_book(cfg, window)
    if isinstance(book, str) or not study.rows or not study.cate or not study.snapshots:
        return None
    rows = pd.concat(study.rows.values(), ignore_index=True)
    gen, seed = book
    return replay_policies(
        cfg,
        tables,
        rows,
        with_verdicts(study),
        max(study.snapshots),
        gen,
        seed,
        window,
        study.config,
        budget_share=study.customers / study.customers_in_book if study.sampled else 1.0,
    )


def read_interim(interim_dir: Path) -> dict[str, pd.DataFrame]:
    """The four validated tables (`<table>.parquet`) written by `loanrisk ingest`."""
    paths = {t: catalogue.table_file(interim_dir, t) for t in TABLES}
    missing = [t for t, path in paths.items() if not path.exists()]
    if missing:
        raise DataError(
            f"no validated table {', '.join(missing)} in {interim_dir}: run `loanrisk ingest` first"
        )
    return {t: pd.read_parquet(path) for t, path in paths.items()}
