"""Batch scoring: a portfolio in, PD + points + tier + reason codes per loan out, with a summary.

input: a feature matrix (.parquet read in chunks, or .csv) or a folder of the four raw tables
-> model from MLflow (default models:/loanrisk@champion)
-> <out> (.parquet or .csv, written to a temporary file and renamed at the end)
   <out>.summary.json (loans per tier, expected defaults, PD quantiles, drift vs training)
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from mlflow.exceptions import MlflowException

from pipeline import metrics, scaling
from pipeline.config import Config
from pipeline.errors import ConfigError, DataError, ModelError
from pipeline.io import atomic_path, write_json
from pipeline.model import PD_KEY, SCORE_KEY, LoanRiskModel

log = logging.getLogger(__name__)

ID_COLUMN = "loan_id"
DATE_COLUMN = "snapshot_date"
FORMATS = ("parquet", "csv")
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
) -> ScoreSummary:
    """Score `input_path` with `model_uri`, write `out_path` and `<out_path>.summary.json`.

    input_path: a feature matrix (.parquet, .csv) or a folder with the four raw tables (then
        ingested, validated and turned into features at `as_of`, default the data end date).
    as_of: with a feature matrix holding snapshot_date, keeps only that snapshot's rows.
    fmt: parquet | csv, default from the suffix of `out_path` (parquet unless .csv).
    Raises ModelError (model URI does not resolve, input lacks model columns), DataError (bad
    input), ConfigError (bad format or date). On any error the output keeps its old content.
    """
    start = time.perf_counter()
    cfg = cfg or Config()
    input_path, out_path = Path(input_path), Path(out_path)
    fmt = _output_format(out_path, fmt)
    as_of_date = _as_date(as_of)
    mlflow.set_tracking_uri(cfg.mlflow.tracking_uri)
    model = load_scoring_model(model_uri)
    chunks, n_rows = _read_input(input_path, model.model, as_of_date, cfg)

    acc = _Accumulator(model.model, n_rows, cfg.seed)
    with atomic_path(out_path) as tmp:
        write = _parquet_sink(tmp) if fmt == "parquet" else _csv_sink(tmp)
        try:
            for chunk in chunks:
                if chunk.empty:  # e.g. a Parquet batch holding no row of the as-of date
                    continue
                out, X = _score_chunk(model, chunk, cfg.scoring.reasons_top_k)
                acc.add(out, X)
                write(out)
        finally:
            write(None)  # close
        if acc.n == 0:
            raise DataError(
                f"{input_path}: no loans to score" + (f" at {as_of_date}" if as_of_date else "")
            )
    summary = acc.summary(model, out_path, time.perf_counter() - start)
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


# --------------------------------------------------------------------------------------------
# Scoring one chunk
# --------------------------------------------------------------------------------------------


def _score_chunk(
    model: ScoringModel, df: pd.DataFrame, top_k: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(output frame, prepared features) of one chunk."""
    from pipeline.reasons import reason_codes

    if ID_COLUMN not in df.columns:
        raise ModelError(f"scoring input has no {ID_COLUMN} column (needed to key the output)")
    X = model.model.prepare(df)
    pred = model.model.predict_prepared(X)
    out = pd.DataFrame(
        {
            ID_COLUMN: df[ID_COLUMN].to_numpy(),
            "as_of_date": (
                pd.to_datetime(df[DATE_COLUMN]).to_numpy()
                if DATE_COLUMN in df.columns
                else np.full(len(df), np.datetime64("NaT"), dtype="datetime64[us]")
            ),
            "pd": pred["pd"].to_numpy(),
            "points": pred["points"].to_numpy(),
            "tier": pred["tier"].to_numpy(),
        }
    )
    if top_k > 0:
        reasons = reason_codes(model.model.contributions(X), X, model.model.specs, top_k)
        for c in reasons.columns:
            out[c] = reasons[c].to_numpy()
    out["model_name"] = pd.Series([model.name] * len(out), dtype="str")
    out["model_version"] = pd.Series([model.version] * len(out), dtype="str")
    return out, X


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
            pf = pq.ParquetFile(path)
        except (OSError, pa.ArrowException) as exc:
            raise DataError(f"cannot read {path} as Parquet: {exc}") from None
        _check_columns(pf.schema_arrow.names, model, path)
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
    from pipeline.ingest import load_tables, validate_tables

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
        else:
            table = table.cast(writer.schema)
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
            psi_features=psi_features,
            drift_warnings=[k for k, s in status.items() if s == "warning"],
            drift_alerts=[k for k, s in status.items() if s == "alert"],
            drift_sample_rows=sum(len(s) for s in self.sample),
            seconds=seconds,
        )

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
