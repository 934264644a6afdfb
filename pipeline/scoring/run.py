"""Batch scoring, what `loanrisk score` runs: a portfolio in, PD + points + tier + reason codes
per loan out, with an early-warning list and a summary.

input: a feature matrix (.parquet read in chunks, or .csv) or a folder of the four raw tables
-> model from MLflow (default models:/loanrisk@champion)
-> <out> (.parquet or .csv, written to a temporary file and renamed at the end)
   the early-warning list beside it (`early_warning_path`: loans whose tier moved into
       scoring.early_warning_tiers or down by scoring.early_warning_notches since --previous, or
       with PD >= scoring.early_warning_pd; riskiest first, with customer, balance, days past
       due and reasons: the list collections acts on; loans already in default are not on it)
   the summary beside it (`summary_path`: loans per tier, expected defaults, PD quantiles and
       distribution vs training, drift vs training, early-warning count)
`run_score` picks the engine (`pipeline.scoring.local`: pandas chunks, `pipeline.scoring.spark`:
Spark) and streams whatever chunks it yields through the same writers, so the files and the
summary have one layout whichever engine scored them.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import replace
from pathlib import Path

import mlflow
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from pipeline.config import Config
from pipeline.core import catalogue
from pipeline.core.errors import ConfigError, DataError
from pipeline.core.io import append_csv, atomic_path, write_json
from pipeline.scoring.core import ScoredChunks, ScoringModel, as_date, load_scoring_model
from pipeline.scoring.early_warning import EarlyWarning
from pipeline.scoring.keys import LoanKeys
from pipeline.scoring.local import local_scored_chunks
from pipeline.scoring.next_best_action import action_model, add_actions, rank_list
from pipeline.scoring.spark import spark_scored_chunks
from pipeline.scoring.summary import Accumulator, ScoreSummary
from pipeline.scoring.unseen import UnseenLevels

log = logging.getLogger(__name__)

# An engine: (input, output, model, as-of date, config) -> a context yielding the scored chunks
# and the number of input rows (the progress bar's total, the drift sample's rate).
Engine = Callable[
    [Path, Path, ScoringModel, dt.date | None, Config],
    AbstractContextManager[tuple[ScoredChunks, int]],
]
ENGINES: dict[str, Engine] = {"local": local_scored_chunks, "spark": spark_scored_chunks}
FORMATS = ("parquet", "csv")


def run_score(
    input_path: Path | str,
    out_path: Path | str,
    model_uri: str = "models:/loanrisk@champion",
    as_of: str | dt.date | None = None,
    fmt: str | None = None,
    cfg: Config | None = None,
    previous: Path | str | None = None,
    engine: str = "local",
    progress: Console | None = None,
    strict: bool = False,
) -> ScoreSummary:
    """Score `input_path` with `model_uri`; write `out_path`, its early-warning list
    (`early_warning_path(out_path)`) and its summary (`summary_path(out_path)`).

    input_path: a feature matrix (.parquet, .csv) or a folder with the four raw tables (then
        ingested, validated and turned into features at `as_of`, default the data end date).
        With engine="spark": a Parquet file or folder of Parquet files only.
    as_of: with a feature matrix holding snapshot_date, keeps only that snapshot's rows.
    fmt: parquet | csv, default from the suffix of `out_path` (parquet unless .csv).
    previous: an earlier output of this command for the same portfolio (.parquet or .csv, with
        loan_id and tier); loans whose tier moved into scoring.early_warning_tiers or down by
        scoring.early_warning_notches go on the early-warning list.
    progress: a console to draw a progress bar over the chunks on (None: no bar).
    strict: refuse (DataError, nothing written) a portfolio holding category values the model
        never saw in training; without it they are scored as missing and reported in the log
        and the summary (`unseen_categories`).
    Raises ModelError (model URI does not resolve, input lacks model columns), DataError (bad
    input), ConfigError (bad format, date or engine). On any error the outputs keep their old
    content.
    """
    start = time.perf_counter()
    cfg = cfg or Config()
    input_path, out_path = Path(input_path), Path(out_path)
    fmt = _output_format(out_path, fmt)
    if engine not in ENGINES:
        raise ConfigError(f"engine {engine!r}: expected one of {', '.join(ENGINES)}")
    as_of_date = as_date(as_of)
    mlflow.set_tracking_uri(cfg.mlflow.tracking_uri)
    model = replace(load_scoring_model(model_uri), never_reasons=tuple(cfg.fairness.protected))
    warn = EarlyWarning(model.model, cfg.scoring, previous)
    ew_path = early_warning_path(out_path, fmt)
    scored_chunks = ENGINES[engine]
    actions = action_model(cfg)

    with scored_chunks(input_path, out_path, model, as_of_date, cfg) as (scored, n_rows):
        acc = Accumulator(model.model, n_rows, cfg.seed)
        keys = LoanKeys()
        unseen = UnseenLevels()
        with atomic_path(out_path) as tmp, atomic_path(ew_path) as ew_tmp:
            write = _parquet_sink(tmp) if fmt == "parquet" else _csv_sink(tmp)
            try:
                with _progress_bar(progress, n_rows) as advance:
                    for out, X, unseen_rows, context in scored:
                        out = add_actions(out, X, actions)
                        acc.add(out, X)
                        keys.add(out)
                        unseen.add(unseen_rows)
                        write(out)
                        warn.add(out, context)
                        advance(len(out))
            finally:
                write(None)  # close
            if acc.n == 0:
                raise DataError(
                    f"{input_path}: no loans to score" + (f" at {as_of_date}" if as_of_date else "")
                )
            keys.check(input_path)  # before the rename: a refused portfolio leaves no output
            unseen.report(input_path, strict, model.model.categories)
            # sorted by PD, ranked for the contact budget: written once every loan is scored
            budget = cfg.effects.monthly_contact_budget
            warn.write(ew_tmp, fmt, lambda ew: rank_list(ew, budget))
    summary = acc.summary(model, out_path, time.perf_counter() - start)
    summary.engine = engine
    summary.unseen_categories = unseen.to_dict()
    warn.fill(summary, ew_path)
    write_json(summary.to_dict(), summary_path(out_path))
    # A progress line: the caller prints the summary itself (once); the API logs it at debug.
    log.info("score: %s loans -> %s (%.1f s)", f"{summary.n_loans:,}", out_path, summary.seconds)
    log.debug("%s", summary)
    return summary


def summary_path(out_path: Path | str) -> Path:
    """The summary JSON beside a scored file (`catalogue.score_summary`)."""
    return catalogue.score_summary(out_path)


def early_warning_path(out_path: Path | str, fmt: str | None = None) -> Path:
    """The early-warning list beside a scored file, in its format (`catalogue.early_warning`);
    `fmt` gives the suffix only when `out_path` has none."""
    out_path = Path(out_path)
    suffix = out_path.suffix or f".{_output_format(out_path, fmt)}"
    return catalogue.early_warning(out_path, suffix)


def _output_format(out_path: Path, fmt: str | None) -> str:
    """parquet or csv: `fmt` checked, or (None) from the suffix of `out_path`."""
    if fmt is None:
        return "csv" if out_path.suffix.lower() == ".csv" else "parquet"
    if fmt.lower() not in FORMATS:
        raise ConfigError(f"output format {fmt!r}: expected one of {', '.join(FORMATS)}")
    return fmt.lower()


@contextmanager
def _progress_bar(console: Console | None, total: int) -> Iterator[Callable[[int], None]]:
    """advance(rows) over a rich bar on `console`; no bar (and no cost) without one."""
    if console is None:
        yield lambda n: None
        return
    columns = (
        TextColumn("scoring"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loans"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("score", total=total)
        yield lambda n: bar.advance(task, n)


def _parquet_sink(path: Path):
    """write(frame) appends a row group; write(None) closes. Schema fixed by the first chunk."""
    writer: pq.ParquetWriter | None = None

    def write(df: pd.DataFrame | None) -> None:
        nonlocal writer
        if df is None:
            if writer is not None:
                writer.close()
            return
        table = pa.Table.from_pandas(df, preserve_index=False)
        if writer is None:
            writer = pq.ParquetWriter(path, table.schema)
        elif not len(table):  # keep empty chunks (often, on the early-warning list) out
            return
        else:
            table = table.cast(writer.schema)
        if len(table):
            writer.write_table(table)

    return write


def _csv_sink(path: Path):
    """write(frame) appends rows (the header with the first); write(None) is a no-op close."""
    state = {"header": True}

    def write(df: pd.DataFrame | None) -> None:
        if df is None:
            return
        append_csv(df, path, header=state["header"])  # escaped as core.io.write_csv does
        state["header"] = False

    return write
