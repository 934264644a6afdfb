"""`loanrisk run`: every stage in order, generating the default book when there is no data.

The last stage writes the run's self-contained HTML report; its path is the last line printed.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from pipeline.config import Config
from pipeline.core.contract import TABLES
from pipeline.simulator import simulate
from pipeline.stages import evaluate, explain, features, ingest, report, train

log = logging.getLogger(__name__)


def run(cfg: Config) -> str:
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
    result = train.run(cfg)
    lines.append(str(result))
    lines.append(evaluate.run(cfg))
    lines.append(explain.run(cfg))
    lines.append(report.run(cfg))
    html = Path(result.run_dir) / report.REPORT_FILE
    lines.append(f"total {time.perf_counter() - start:.0f} s; report {html}")
    return "\n".join(lines)


def has_tables(cfg: Config) -> bool:
    raw = cfg.data.raw_dir
    return all((raw / f"{t}.parquet").exists() or (raw / f"{t}.csv").exists() for t in TABLES)
