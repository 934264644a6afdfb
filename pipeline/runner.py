"""`loanrisk run`: every stage in order, generating the default book when there is no data.

The report is the last file of a run; the promotion comes after it. The gate decides under the
store's promotion lock, the report is written with the decision, and only then does the
champion alias move: a run that fails at any stage leaves the alias where it was. Its path is
the last line printed.
"""

from __future__ import annotations

import logging
import time

from pipeline.config import Config
from pipeline.core import catalogue
from pipeline.core.contract import TABLES
from pipeline.core.errors import DataError
from pipeline.effects import stage as effects
from pipeline.runs.context import open_run
from pipeline.simulator import simulate
from pipeline.stages import evaluate, explain, features, ingest, report, train

log = logging.getLogger(__name__)


def run(cfg: Config, force: bool = False) -> str:
    """Every stage on one run; `force` (`--promote`) promotes across data the gate would not
    compare (never below its floor)."""
    start = time.perf_counter()
    lines = []
    if cfg.data.kind == "tables":
        # A database source is never replaced by the simulated book.
        if cfg.data.sql is None and cfg.data.generate_if_missing and not has_tables(cfg):
            log.info("no tables in %s: generating the simulated book there", cfg.data.raw_dir)
            simulate.generate(
                cfg.data.raw_dir,
                cfg.generate,
                seed=cfg.seed,
                window_months=cfg.features.performance_window_months,
            )
        ingest.run(cfg)
        features.run(cfg)
    trained = train.fit(cfg)
    lines.append(str(trained.result))
    # This run's own context, not "the latest run": a train started meanwhile cannot take over.
    run = open_run(cfg, trained.result.run_id)
    try:
        lines.append(evaluate.run(cfg, run))
        lines.append(explain.run(cfg, run))
        if cfg.effects.enabled and cfg.data.kind == "tables":
            # Before the report, which opens with the study's answer.
            lines.append(run_effects(cfg))
    except BaseException:
        train.abandon(cfg, trained)  # the run is incomplete: its model is never champion
        raise
    result = train.promote(
        cfg, trained, force, before_move=lambda: lines.append(report.run(cfg, run))
    )
    lines.append(f"promotion: {result.promotion_reason}")
    lines.append(f"total {time.perf_counter() - start:.0f} s; report {run.files.report}")
    return "\n".join(lines)


def run_effects(cfg: Config) -> str:
    """The effect study; a book it cannot study (too short for one labelled snapshot, a lever
    with no events) costs the run its causal answer, not its model."""
    try:
        return effects.run(cfg)
    except DataError as exc:
        log.warning("effect study skipped: %s", exc)
        return f"effect study skipped: {exc}"


def has_tables(cfg: Config) -> bool:
    raw = cfg.data.raw_dir
    return all(
        any(catalogue.table_file(raw, t, suffix).exists() for suffix in catalogue.TABLE_SUFFIXES)
        for t in TABLES
    )
