"""Batch scoring: a portfolio in, PD + points + tier + reason codes per loan out, with a summary.

input: a feature matrix (.parquet read in chunks, or .csv) or a folder of the four raw tables
-> model from MLflow (default models:/loanrisk@champion)
-> <out> (.parquet or .csv, written to a temporary file and renamed at the end)
   <out stem>.early_warning.<ext> (loans whose tier worsened since --previous, or PD >=
       scoring.early_warning_pd, with their reasons: the list collections acts on)
   <out>.summary.json (loans per tier, expected defaults, PD quantiles and distribution vs
       training, drift vs training, early-warning count)
Engines: local (pandas chunks, this module) or spark (pipeline/score_spark.py); both go through
the same writers, so the files and the summary have one layout.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from mlflow.exceptions import MlflowException
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from pipeline.config import Config
from pipeline.core.errors import ConfigError, DataError, ModelError
from pipeline.core.io import atomic_path, write_json
from pipeline.modelling.model import PD_KEY, SCORE_KEY, LoanRiskModel
from pipeline.riskmath import metrics, scaling

log = logging.getLogger(__name__)

ID_COLUMN = "loan_id"
DATE_COLUMN = "snapshot_date"
FORMATS = ("parquet", "csv")
ENGINES = ("local", "spark")
PREDICTION_COLUMNS = ("pd", "points", "tier")
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
# Drift is measured on a uniform sample of at most this many rows: PSI over 10 bins does not
# need more, and the sample of prepared features is what stays in memory across chunks.
DRIFT_SAMPLE_ROWS = 200_000
_MODELS_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>\d+))?/?$")


@dataclass(frozen=True)
class ScoringModel:
    """A loaded loanrisk model and where it came from (written into every output row)."""

    model: LoanRiskModel
    uri: str
    name: str
    version: str


@dataclass
class ScoreSummary:
    output: str
    model_uri: str
    model_name: str
    model_version: str
    n_loans: int
    as_of: list[str]
    tiers: dict[str, int]
    expected_defaults: float
    mean_pd: float
    pd_quantiles: dict[str, float]
    psi_score: float | None
    psi_features: dict[str, float] = field(default_factory=dict)
    drift_warnings: list[str] = field(default_factory=list)
    drift_alerts: list[str] = field(default_factory=list)
    drift_sample_rows: int = 0
    psi_pd: float | None = None
    # PD bins of the training reference ("__pd__") beside this portfolio's share in each
    pd_distribution: list[dict[str, Any]] = field(default_factory=list)
    early_warning: str | None = None
    n_early_warning: int = 0
    n_tier_worsened: int = 0
    n_pd_threshold: int = 0
    early_warning_pd: float | None = None
    previous: str | None = None
    n_matched_previous: int = 0
    engine: str = "local"
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        tiers = ", ".join(
            f"{t} {n:,} ({n / max(self.n_loans, 1):.1%})" for t, n in self.tiers.items()
        )
        psi = "n/a" if self.psi_score is None else f"{self.psi_score:.3f}"
        registered = self.model_name != self.model_uri
        model = f"{self.model_name} v{self.model_version}" if registered else self.model_uri
        lines = [
            f"Scored {self.n_loans:,} loans (as of {', '.join(self.as_of) or 'n/a'}) with "
            f"{model} -> {self.output} ({self.seconds:.1f} s)",
            f"  tiers: {tiers}",
            f"  expected defaults {self.expected_defaults:,.1f} (mean PD {self.mean_pd:.2%}, "
            f"median {self.pd_quantiles.get('p50', float('nan')):.2%})",
            f"  drift vs training: score PSI {psi}",
        ]
        if self.early_warning is not None:
            since = f" since {self.previous}" if self.previous else ""
            lines.append(
                f"  early warning: {self.n_early_warning:,} loans -> {self.early_warning} "
                f"({self.n_tier_worsened:,} tier worsened{since}, {self.n_pd_threshold:,} "
                f"PD >= {self.early_warning_pd:.0%})"
            )
        if self.drift_alerts:
            lines.append(f"  ALERT (PSI > 0.25): {', '.join(self.drift_alerts)}")
        if self.drift_warnings:
            lines.append(f"  warning (PSI > 0.1): {', '.join(self.drift_warnings)}")
        return "\n".join(lines)


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
) -> ScoreSummary:
    """Score `input_path` with `model_uri`; write `out_path`, its early-warning list
    (`early_warning_path(out_path)`) and `<out_path>.summary.json`.

    input_path: a feature matrix (.parquet, .csv) or a folder with the four raw tables (then
        ingested, validated and turned into features at `as_of`, default the data end date).
        With engine="spark": a Parquet file or folder of Parquet files only.
    as_of: with a feature matrix holding snapshot_date, keeps only that snapshot's rows.
    fmt: parquet | csv, default from the suffix of `out_path` (parquet unless .csv).
    previous: an earlier output of this command for the same portfolio (.parquet or .csv, with
        loan_id and tier); loans whose tier is worse now go on the early-warning list.
    progress: a console to draw a progress bar over the chunks on (None: no bar).
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
    as_of_date = _as_date(as_of)
    mlflow.set_tracking_uri(cfg.mlflow.tracking_uri)
    model = load_scoring_model(model_uri)
    warn = _EarlyWarning(model.model, cfg.scoring.early_warning_pd, previous)
    ew_path = early_warning_path(out_path, fmt)
    if engine == "spark":
        from pipeline.scoring.score_spark import spark_scored_chunks

        scored_chunks = spark_scored_chunks
    else:
        scored_chunks = _local_scored_chunks

    with scored_chunks(input_path, out_path, model, as_of_date, cfg) as (scored, n_rows):
        acc = _Accumulator(model.model, n_rows, cfg.seed)
        with atomic_path(out_path) as tmp, atomic_path(ew_path) as ew_tmp:
            write = _parquet_sink(tmp) if fmt == "parquet" else _csv_sink(tmp)
            write_ew = _parquet_sink(ew_tmp) if fmt == "parquet" else _csv_sink(ew_tmp)
            try:
                with _progress_bar(progress, n_rows) as advance:
                    for out, X in scored:
                        acc.add(out, X)
                        write(out)
                        write_ew(warn.select(out))
                        advance(len(out))
            finally:
                write(None)  # close
                write_ew(None)
            if acc.n == 0:
                raise DataError(
                    f"{input_path}: no loans to score" + (f" at {as_of_date}" if as_of_date else "")
                )
    summary = acc.summary(model, out_path, time.perf_counter() - start)
    summary.engine = engine
    warn.fill(summary, ew_path)
    write_json(summary.to_dict(), summary_path(out_path))
    log.info("%s", summary)
    return summary


def score_frame(model: ScoringModel, features: pd.DataFrame, top_k: int = 3) -> pd.DataFrame:
    """Score one in-memory feature frame (extra columns ignored).

    Returns one row per input row: loan_id, as_of_date (= snapshot_date, NaT if absent), pd,
    points, tier, reason_1..reason_{top_k}, model_name, model_version.
    """
    return _score_chunk(model, features, top_k)[0]


def load_scoring_model(model_uri: str) -> ScoringModel:
    """Load a loanrisk pyfunc model; ModelError with a hint when the URI does not resolve."""
    try:
        pyfunc = mlflow.pyfunc.load_model(model_uri)
    except (MlflowException, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        store = mlflow.get_tracking_uri()
        raise ModelError(
            f"model {model_uri!r} could not be loaded: {first}\n"
            f"Hint: `loanrisk train` trains and registers one; see the registered models in "
            f"`mlflow ui --backend-store-uri {store}` (or pass --model with a models:/ or "
            "runs:/ URI)."
        ) from None
    impl = pyfunc.unwrap_python_model()
    if not isinstance(impl, LoanRiskModel):
        raise ModelError(f"model {model_uri!r} is not a loanrisk PD model ({type(impl).__name__})")
    name, version = _name_and_version(model_uri, pyfunc.metadata)
    return ScoringModel(model=impl, uri=model_uri, name=name, version=version)


def summary_path(out_path: Path | str) -> Path:
    out_path = Path(out_path)
    return out_path.with_name(out_path.name + ".summary.json")


def early_warning_path(out_path: Path | str, fmt: str | None = None) -> Path:
    """`scores/2024-12.parquet` -> `scores/2024-12.early_warning.parquet`."""
    out_path = Path(out_path)
    suffix = out_path.suffix or f".{_output_format(out_path, fmt)}"
    return out_path.with_name(f"{out_path.stem}.early_warning{suffix}")


# --------------------------------------------------------------------------------------------
# Scoring one chunk
# --------------------------------------------------------------------------------------------


def _score_chunk(
    model: ScoringModel,
    df: pd.DataFrame,
    top_k: int,
    reasons_for: str = "all",
    flagged_tiers: tuple[str, ...] = (),
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(output frame, prepared features) of one chunk; reasons for all rows or only the rows
    in `flagged_tiers` (explain.reasons_for), the others get empty reasons and no SHAP."""
    from pipeline.riskmath.reasons import reasons_for_scoring

    if ID_COLUMN not in df.columns:
        raise ModelError(f"scoring input has no {ID_COLUMN} column (needed to key the output)")
    X = model.model.prepare(df)
    pred = model.model.predict_prepared(X)
    reasons = None
    if top_k > 0:
        reasons = reasons_for_scoring(
            model.model, X, pred["tier"].to_numpy(), top_k, reasons_for, flagged_tiers
        )
    return output_frame(model, df, pred, reasons), X


def output_frame(
    model: ScoringModel, df: pd.DataFrame, pred: pd.DataFrame, reasons: pd.DataFrame | None
) -> pd.DataFrame:
    """The output layout, shared by both engines: loan_id, as_of_date, pd, points, tier,
    reason_1..k, model_name, model_version (row i of each input is row i of the output)."""
    out = pd.DataFrame(
        {
            ID_COLUMN: df[ID_COLUMN].to_numpy(),
            "as_of_date": (
                pd.to_datetime(df[DATE_COLUMN]).to_numpy()
                if DATE_COLUMN in df.columns
                else np.full(len(df), np.datetime64("NaT"), dtype="datetime64[us]")
            ),
            "pd": pred["pd"].to_numpy(dtype=float),
            "points": pred["points"].to_numpy(dtype=float),
            "tier": pd.Series(pred["tier"].to_numpy(), dtype="str").to_numpy(),
        }
    )
    if reasons is not None:
        for c in reasons.columns:
            out[c] = pd.Series(reasons[c].to_numpy(), dtype="str").to_numpy()
    out["model_name"] = pd.Series([model.name] * len(out), dtype="str")
    out["model_version"] = pd.Series([model.version] * len(out), dtype="str")
    return out


@contextmanager
def _local_scored_chunks(
    input_path: Path, out_path: Path, model: ScoringModel, as_of: dt.date | None, cfg: Config
) -> Iterator[tuple[Iterator[tuple[pd.DataFrame, pd.DataFrame]], int]]:
    """((output, prepared features) per chunk, total input rows) for the local engine."""
    chunks, n_rows = _read_input(input_path, model.model, as_of, cfg)
    top_k = cfg.scoring.reasons_top_k
    # an empty chunk: e.g. a Parquet batch holding no row of the as-of date
    policy = (cfg.explain.reasons_for, tuple(cfg.explain.flagged_tiers))
    yield (_score_chunk(model, c, top_k, *policy) for c in chunks if not c.empty), n_rows


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


# --------------------------------------------------------------------------------------------
# Input
# --------------------------------------------------------------------------------------------


def _read_input(
    path: Path, model: LoanRiskModel, as_of: dt.date | None, cfg: Config
) -> tuple[Iterator[pd.DataFrame], int]:
    """(chunks of at most cfg.scoring.chunk_rows rows, total rows before any as_of filter)."""
    size = cfg.scoring.chunk_rows
    if not path.exists():
        raise DataError(f"scoring input {path} does not exist")
    if path.is_dir():
        frame = _features_from_tables(path, as_of, cfg)
        return _slices(frame, size), len(frame)
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        try:
            # pre_buffer (pyarrow's default) keeps the buffered ranges of every row group
            # read so far: memory grew with the file (1.9 GiB peak at 1M x 60, 1.1 at 200k)
            pf = pq.ParquetFile(path, pre_buffer=False)
        except (OSError, pa.ArrowException) as exc:
            raise DataError(f"cannot read {path} as Parquet: {exc}") from None
        _check_columns(pf.schema_arrow.names, model, path)
        _check_types(pf.schema_arrow, model, path)
        keep = [
            c for c in (ID_COLUMN, DATE_COLUMN, *model.feature_names) if c in pf.schema_arrow.names
        ]
        batches = pf.iter_batches(batch_size=size, columns=keep)
        chunks = (_apply_as_of(b.to_pandas(), as_of) for b in batches)
        return chunks, pf.metadata.num_rows
    if suffix == ".csv":
        try:
            frame = pd.read_csv(path)
        except (OSError, ValueError, pd.errors.ParserError) as exc:
            raise DataError(f"cannot read {path} as CSV: {exc}") from None
        _check_columns(frame.columns, model, path)
        if DATE_COLUMN in frame.columns:
            try:
                frame[DATE_COLUMN] = pd.to_datetime(frame[DATE_COLUMN])
            except (ValueError, TypeError) as exc:
                raise DataError(
                    f"{path}: {DATE_COLUMN} holds values that are not dates: {exc}"
                ) from None
        frame = _apply_as_of(frame, as_of)
        return _slices(frame, size), len(frame)
    raise DataError(
        f"scoring input {path}: expected a .parquet or .csv feature matrix or a folder with the "
        "four raw tables"
    )


def _features_from_tables(folder: Path, as_of: dt.date | None, cfg: Config) -> pd.DataFrame:
    """Validate the raw tables and build the feature rows of the loans active at `as_of`."""
    from pipeline.features.engine import build_features_from_frames
    from pipeline.features.snapshots import check_no_events_after, data_end_date
    from pipeline.sources.file_source import load_tables
    from pipeline.sources.validation import validate_tables

    tables = validate_tables(load_tables(folder))
    if as_of is not None and not cfg.scoring.allow_events_after_as_of:
        check_no_events_after(tables, as_of)
    as_of = as_of or data_end_date(tables)
    log.info("scoring the loans of %s active at %s", folder, as_of)
    frame, _ = build_features_from_frames(tables, cfg, snapshots=[as_of])
    return frame


def _check_columns(columns: Any, model: LoanRiskModel, path: Path) -> None:
    have = set(columns)
    missing = [c for c in (ID_COLUMN, *model.feature_names) if c not in have]
    if missing:
        raise ModelError(
            f"{path} lacks {len(missing)} column(s) the model needs: {', '.join(missing)}"
        )


def _check_types(schema: pa.Schema, model: LoanRiskModel, path: Path) -> None:
    """Every mistyped feature column at once: numerics must be numbers (or text, whose values
    `prepare` checks), categoricals text, integers or booleans. A date or a list in a numeric
    column would otherwise be coerced to a meaningless number."""
    bad = []
    for spec in model.specs:
        t = schema.field(spec.name).type
        if pa.types.is_dictionary(t):
            t = t.value_type
        plain = pa.types.is_integer(t) or pa.types.is_boolean(t) or pa.types.is_null(t)
        text = pa.types.is_string(t) or pa.types.is_large_string(t)
        if spec.kind == "categorical":
            ok = plain or text
            want = "text"
        else:
            ok = plain or text or pa.types.is_floating(t) or pa.types.is_decimal(t)
            want = "a number"
        if not ok:
            bad.append(f"{spec.name} ({t}, expected {want})")
    if bad:
        raise ModelError(f"{path}: {len(bad)} column(s) of the wrong type: {'; '.join(bad)}")


def _apply_as_of(df: pd.DataFrame, as_of: dt.date | None) -> pd.DataFrame:
    """Keep the rows of snapshot `as_of`; a matrix without snapshot_date is taken as of it."""
    if as_of is None:
        return df
    if DATE_COLUMN not in df.columns:
        return df.assign(**{DATE_COLUMN: pd.Timestamp(as_of)})
    return df[pd.to_datetime(df[DATE_COLUMN]).dt.date == as_of]


def _slices(frame: pd.DataFrame, size: int) -> Iterator[pd.DataFrame]:
    for start in range(0, len(frame), size):
        yield frame.iloc[start : start + size]


def _as_date(value: str | dt.date | None) -> dt.date | None:
    if value is None or isinstance(value, dt.date):
        return value.date() if isinstance(value, dt.datetime) else value
    try:
        return pd.Timestamp(value).date()
    except (ValueError, TypeError):
        raise ConfigError(f"as-of date {value!r} is not a date (use YYYY-MM-DD)") from None


# --------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------


def _output_format(out_path: Path, fmt: str | None) -> str:
    if fmt is None:
        return "csv" if out_path.suffix.lower() == ".csv" else "parquet"
    if fmt.lower() not in FORMATS:
        raise ConfigError(f"output format {fmt!r}: expected one of {', '.join(FORMATS)}")
    return fmt.lower()


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
    state = {"header": True}

    def write(df: pd.DataFrame | None) -> None:
        if df is None:
            return
        df.to_csv(path, mode="w" if state["header"] else "a", header=state["header"], index=False)
        state["header"] = False

    return write


# --------------------------------------------------------------------------------------------
# Summary
# --------------------------------------------------------------------------------------------


class _Accumulator:
    """Running totals over the chunks: exact tier counts, PD and points kept whole (one float
    per loan each), prepared features sampled uniformly for the drift check."""

    def __init__(self, model: LoanRiskModel, n_expected: int, seed: int) -> None:
        self.model = model
        self.rate = min(1.0, DRIFT_SAMPLE_ROWS / max(n_expected, 1))
        self.rng = np.random.default_rng(seed)
        self.pd: list[np.ndarray] = []
        self.points: list[np.ndarray] = []
        self.tiers: dict[str, int] = dict.fromkeys(scaling.tier_order(model.scoring), 0)
        self.sample: list[pd.DataFrame] = []
        self.dates: set[str] = set()
        self.n = 0

    def add(self, out: pd.DataFrame, X: pd.DataFrame) -> None:
        self.n += len(out)
        self.pd.append(out["pd"].to_numpy())
        self.points.append(out["points"].to_numpy())
        for t, c in out["tier"].value_counts().items():
            self.tiers[str(t)] = self.tiers.get(str(t), 0) + int(c)
        dates = out["as_of_date"].dropna().dt.date.unique()
        self.dates.update(d.isoformat() for d in dates)
        keep = X if self.rate >= 1 else X[self.rng.random(len(X)) < self.rate]
        self.sample.append(keep)

    def summary(self, model: ScoringModel, out_path: Path, seconds: float) -> ScoreSummary:
        p = np.concatenate(self.pd)
        psi_score, psi_features = self._drift(np.concatenate(self.points), p)
        psi_pd, pd_dist = self._pd_distribution(p)
        status = {k: metrics.psi_status(v) for k, v in psi_features.items()}
        if psi_score is not None:
            status = {"score": metrics.psi_status(psi_score), **status}
        return ScoreSummary(
            output=str(out_path),
            model_uri=model.uri,
            model_name=model.name,
            model_version=model.version,
            n_loans=self.n,
            as_of=sorted(self.dates),
            tiers=self.tiers,
            expected_defaults=float(p.sum()),
            mean_pd=float(p.mean()),
            pd_quantiles={
                f"p{round(q * 100):02d}": float(v)
                for q, v in zip(QUANTILES, np.quantile(p, QUANTILES), strict=True)
            },
            psi_score=psi_score,
            psi_pd=psi_pd,
            pd_distribution=pd_dist,
            psi_features=psi_features,
            drift_warnings=[k for k, s in status.items() if s == "warning"],
            drift_alerts=[k for k, s in status.items() if s == "alert"],
            drift_sample_rows=sum(len(s) for s in self.sample),
            seconds=seconds,
        )

    def _pd_distribution(self, p: np.ndarray) -> tuple[float | None, list[dict[str, Any]]]:
        """PSI of the PD and its bins vs the training reference: bin, training_share,
        portfolio_share, loans, psi."""
        ref = (self.model.reference or {}).get(PD_KEY)
        if ref is None:
            return None, []
        table = metrics.psi_table_from_reference(ref, p)
        rows = [
            {
                "bin": str(r.bin),
                "training_share": float(r.expected_share),
                "portfolio_share": float(r.actual_share),
                "loans": int(r.actual_n),
                "psi": float(r.psi),
            }
            for r in table.itertuples()
        ]
        return float(table["psi"].sum()), rows

    def _drift(self, points: np.ndarray, p: np.ndarray) -> tuple[float | None, dict[str, float]]:
        ref = self.model.reference or {}
        psi_score = None
        if SCORE_KEY in ref:
            psi_score = metrics.psi_from_reference(ref[SCORE_KEY], points)
        elif PD_KEY in ref:
            psi_score = metrics.psi_from_reference(ref[PD_KEY], p)
        sample = pd.concat(self.sample) if self.sample else pd.DataFrame()
        psi: dict[str, float] = {}
        if len(sample):
            for name in self.model.feature_names:
                if name in ref:
                    psi[name] = metrics.psi_from_reference(ref[name], sample[name])
        # largest first, so the summary reads as a ranking
        return psi_score, dict(sorted(psi.items(), key=lambda kv: (-kv[1], kv[0])))


class _EarlyWarning:
    """Selects, chunk by chunk, the loans for the early-warning list: tier worse than in the
    previous output (when one is given) or PD >= the threshold. Holds the previous tiers as
    one Series (loan_id -> tier): two columns of the portfolio, not the whole file."""

    def __init__(self, model: LoanRiskModel, threshold: float, previous: Path | str | None):
        self.order = scaling.tier_order(model.scoring)
        self.rank = {t: i for i, t in enumerate(self.order)}
        self.threshold = threshold
        self.previous = Path(previous) if previous is not None else None
        self.prev = _read_previous(self.previous, self.order) if self.previous else None
        self.n = self.n_worsened = self.n_high = self.n_matched = 0

    def select(self, out: pd.DataFrame) -> pd.DataFrame:
        """Rows of `out` on the list: loan_id, as_of_date, pd, points, tier, previous_tier,
        trigger (tier_worsened, pd_threshold or both joined by '+'), reasons, model."""
        now = out["tier"].map(self.rank).to_numpy(dtype=float)
        if self.prev is not None:
            keys, prev = out[ID_COLUMN], self.prev
            if keys.dtype != prev.index.dtype:  # e.g. int ids now, text ids in a CSV then
                keys, prev = keys.astype(str), prev.set_axis(prev.index.astype(str))
                self.prev = prev
            before = keys.map(prev).to_numpy(dtype=object)
            before_rank = pd.Series(before).map(self.rank).to_numpy(dtype=float)
            worsened = now > before_rank  # NaN (new loan) compares False
            self.n_matched += int((~np.isnan(before_rank)).sum())
        else:
            before = np.full(len(out), None, dtype=object)
            worsened = np.zeros(len(out), dtype=bool)
        high = out["pd"].to_numpy() >= self.threshold
        keep = worsened | high
        trigger = np.where(
            worsened & high,
            "tier_worsened+pd_threshold",
            np.where(worsened, "tier_worsened", "pd_threshold"),
        )
        ew = out.loc[keep].reset_index(drop=True)
        ew.insert(
            ew.columns.get_loc("tier") + 1,
            "previous_tier",
            pd.Series(before[keep], dtype="str"),
        )
        ew.insert(ew.columns.get_loc("previous_tier") + 1, "trigger", trigger[keep].astype(str))
        ew["trigger"] = ew["trigger"].astype("str")
        self.n += int(keep.sum())
        self.n_worsened += int(worsened.sum())
        self.n_high += int(high.sum())
        return ew

    def fill(self, summary: ScoreSummary, path: Path) -> None:
        summary.early_warning = str(path)
        summary.n_early_warning = self.n
        summary.n_tier_worsened = self.n_worsened
        summary.n_pd_threshold = self.n_high
        summary.early_warning_pd = self.threshold
        summary.previous = str(self.previous) if self.previous else None
        summary.n_matched_previous = self.n_matched


def _read_previous(path: Path, order: list[str]) -> pd.Series:
    """tier by loan_id from an earlier output (.parquet or .csv). DataError naming the file
    when it is missing, unreadable, lacks loan_id/tier, repeats a loan or has unknown tiers."""
    need = [ID_COLUMN, "tier"]
    if not path.exists():
        raise DataError(f"previous scores {path} do not exist")
    try:
        if path.suffix.lower() == ".csv":
            header = pd.read_csv(path, nrows=0).columns
            _require_previous_columns(header, need, path)
            df = pd.read_csv(path, usecols=need, dtype={"tier": "str"}, keep_default_na=False)
        else:
            schema = pq.read_schema(path)
            _require_previous_columns(schema.names, need, path)
            df = pd.read_parquet(path, columns=need)
    except (OSError, ValueError, pa.ArrowException, pd.errors.ParserError) as exc:
        raise DataError(f"cannot read previous scores {path}: {exc}") from None
    dup = df[ID_COLUMN].duplicated()
    if dup.any():
        examples = ", ".join(map(str, df.loc[dup, ID_COLUMN].head(5)))
        raise DataError(
            f"previous scores {path}: {int(dup.sum())} repeated {ID_COLUMN}(s) (e.g. {examples});"
            " expected one row per loan, as one scoring run writes"
        )
    unknown = sorted(set(df["tier"].astype(str)) - set(order))
    if unknown:
        raise DataError(
            f"previous scores {path}: tier(s) {', '.join(unknown)} are not tiers of this model "
            f"({', '.join(order)})"
        )
    return pd.Series(df["tier"].astype(str).to_numpy(), index=df[ID_COLUMN].to_numpy())


def _require_previous_columns(columns: Any, need: list[str], path: Path) -> None:
    missing = [c for c in need if c not in set(columns)]
    if missing:
        raise DataError(
            f"previous scores {path} lack column(s) {', '.join(missing)} (expected an output "
            "of `loanrisk score`)"
        )


def _name_and_version(uri: str, meta: Any) -> tuple[str, str]:
    """Registered name and version for models:/name@alias and models:/name/N; otherwise the
    URI itself and the logged model id (or run id)."""
    m = _MODELS_URI.match(uri)
    if m and (m["alias"] or m["version"]):
        if m["version"]:
            return m["name"], m["version"]
        mv = mlflow.MlflowClient().get_model_version_by_alias(m["name"], m["alias"])
        return m["name"], str(mv.version)
    return uri, str(getattr(meta, "model_id", None) or getattr(meta, "run_id", None) or "")
