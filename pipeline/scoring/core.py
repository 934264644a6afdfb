"""Scoring core shared by both engines: the model from its URI, one frame of features scored
into the output layout, and the checks and as-of handling every input goes through.

Imports neither engine: `pipeline.scoring.local` (pandas chunks) and `pipeline.scoring.spark`
build on this module, `pipeline.scoring.run` dispatches between them.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pyarrow as pa
from mlflow.exceptions import MlflowException

from pipeline.config.schema import PROTECTED_ATTRIBUTES
from pipeline.core.errors import ConfigError, ModelError
from pipeline.modelling.model import LoanRiskModel
from pipeline.modelling.trust import load_trusted_model
from pipeline.riskmath.reasons import POINTS_SUFFIX, reason_columns, reasons_for_scoring

ID_COLUMN = "loan_id"
DATE_COLUMN = "snapshot_date"
PREDICTION_COLUMNS = ("pd", "points", "tier")
# Reason columns written even when fewer (or none, reasons_top_k=0) are asked: readers of the
# scores keep one schema.
MIN_REASON_COLUMNS = 3
# A loan this many days past due at the as-of date has already defaulted (the label's rule,
# features.default_dpd): its PD is not a forecast. The `status` column says so.
DEFAULT_DPD = 90
DPD_COLUMN = "dpd_now"
DEFAULTED, PERFORMING, UNKNOWN = "defaulted", "performing", "unknown"
# What collections needs beside a flagged loan, from the scored input (NaN where absent); only
# the early-warning list carries them, the scores stay free of customer fields.
CONTEXT_COLUMNS = ("customer_id", "outstanding_balance", DPD_COLUMN)
_MODELS_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>\d+))?/?$")

# What an engine yields: (output frame, prepared features, unseen category levels, loan context)
# per chunk, in input order; see `score_chunk`, `unseen_levels` and `loan_context`.
ScoredChunks = Iterator[tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]]
UNSEEN_COLUMNS = ("column", "value", ID_COLUMN)


@dataclass(frozen=True)
class ScoringModel:
    """A loaded loanrisk model and where it came from (written into every output row)."""

    model: LoanRiskModel
    uri: str  # as given (e.g. models:/loanrisk@champion)
    name: str
    version: str
    loaded_uri: str = ""  # the exact model loaded (an alias resolved to models:/name/N)
    # features never named as reasons (fairness.protected; run_score sets the configured list)
    never_reasons: tuple[str, ...] = PROTECTED_ATTRIBUTES

    @property
    def pinned_uri(self) -> str:
        """The URI of the very model loaded: engines that load it again (Spark) use this."""
        return self.loaded_uri or self.uri


def load_scoring_model(model_uri: str) -> ScoringModel:
    """Load a loanrisk pyfunc model; ModelError with a hint when the URI does not resolve, and
    before running any of its code when the folder is not a loanrisk model.

    An alias (models:/name@alias) is resolved to its version once, and that version is loaded:
    a promotion while scoring cannot make the output name a version other than the one whose
    PDs it holds.
    """
    try:
        name, version = _registered(model_uri)
    except MlflowException as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(
            f"model {model_uri!r} could not be loaded: {first}\n"
            "Hint: `loanrisk train` trains and registers one (or pass --model with a models:/ "
            "or runs:/ URI)."
        ) from None
    load_uri = f"models:/{name}/{version}" if version else model_uri
    # checked before any of the folder's code runs (pipeline.modelling.trust)
    pyfunc = load_trusted_model(load_uri)
    impl = pyfunc.unwrap_python_model()
    if not isinstance(impl, LoanRiskModel):
        raise ModelError(f"model {model_uri!r} is not a loanrisk PD model ({type(impl).__name__})")
    if not version:  # not a registered model: the URI itself and the logged model id
        meta = pyfunc.metadata
        name = model_uri
        version = str(getattr(meta, "model_id", None) or getattr(meta, "run_id", None) or "")
    return ScoringModel(impl, model_uri, name, version, loaded_uri=load_uri)


def score_frame(model: ScoringModel, features: pd.DataFrame, top_k: int = 3) -> pd.DataFrame:
    """Score one in-memory feature frame (extra columns ignored).

    Returns one row per input row in the layout of `output_frame`.
    """
    return score_chunk(model, features, top_k)[0]


def score_chunk(
    model: ScoringModel,
    df: pd.DataFrame,
    top_k: int,
    reasons_for: str = "all",
    flagged_tiers: tuple[str, ...] = (),
    default_dpd: int = DEFAULT_DPD,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(output frame, prepared features, unseen levels, loan context) of one chunk; reasons for
    all rows or only the rows in `flagged_tiers` (explain.reasons_for), the others get empty
    reasons and no SHAP."""
    if ID_COLUMN not in df.columns:
        raise ModelError(f"scoring input has no {ID_COLUMN} column (needed to key the output)")
    X = model.model.prepare(df)
    pred = model.model.predict_prepared(X)
    reasons = None
    if top_k > 0:
        reasons = reasons_for_scoring(
            model.model,
            X,
            pred["tier"].to_numpy(),
            top_k,
            reasons_for,
            flagged_tiers,
            with_points=True,
            exclude=model.never_reasons,
        )
    out = output_frame(model, df, pred, reasons, top_k, default_dpd)
    return out, X, unseen_levels(model.model, df, X), loan_context(df)


def loan_context(df: pd.DataFrame) -> pd.DataFrame:
    """CONTEXT_COLUMNS of `df` (same rows, NaN columns where `df` lacks one)."""
    n = len(df)
    return pd.DataFrame(
        {c: df[c].to_numpy() if c in df.columns else np.full(n, np.nan) for c in CONTEXT_COLUMNS}
    )


def unseen_levels(model: LoanRiskModel, df: pd.DataFrame, X: pd.DataFrame) -> pd.DataFrame:
    """Categorical values of `df` that training never saw, one row each: column, value (as
    text), loan_id. `prepare` scores them as missing, as LightGBM treats an unseen level; the
    run reports them (an upper-cased product or a region code would otherwise only show as
    drift). X: `model.prepare(df)`, same rows."""
    parts = []
    for spec in model.specs:
        if spec.kind != "categorical":
            continue
        raw = df[spec.name]
        mask = (raw.notna() & X[spec.name].isna()).to_numpy(dtype=bool)
        if mask.any():
            values = raw[mask].astype("str").to_numpy()
            parts.append(
                pd.DataFrame(
                    {
                        "column": spec.name,
                        "value": values,
                        ID_COLUMN: df[ID_COLUMN][mask].to_numpy(),
                    }
                )
            )
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in UNSEEN_COLUMNS})
    return pd.concat(parts, ignore_index=True)


def output_frame(
    model: ScoringModel,
    df: pd.DataFrame,
    pred: pd.DataFrame,
    reasons: pd.DataFrame | None,
    top_k: int = MIN_REASON_COLUMNS,
    default_dpd: int = DEFAULT_DPD,
) -> pd.DataFrame:
    """The output layout, shared by both engines and built only here: loan_id, as_of_date,
    status, pd, points, tier, reason_1, reason_1_pd_points, ... (max(top_k, MIN_REASON_COLUMNS)
    of each; empty text and NaN points where a loan has fewer reasons or none were computed),
    model_name, model_version. Row i of each input is row i of the output.

    status: "defaulted" when `df`'s dpd_now is at least `default_dpd` (already in default at
    the as-of date: its PD is no forecast), "performing" below, "unknown" without dpd_now.
    """
    n = len(df)
    out = pd.DataFrame(
        {
            ID_COLUMN: df[ID_COLUMN].to_numpy(),
            "as_of_date": (
                pd.to_datetime(df[DATE_COLUMN]).to_numpy()
                if DATE_COLUMN in df.columns
                else np.full(n, np.datetime64("NaT"), dtype="datetime64[us]")
            ),
            "status": pd.Series(loan_status(df, default_dpd), dtype="str").to_numpy(),
            "pd": pred["pd"].to_numpy(dtype=float),
            "points": pred["points"].to_numpy(dtype=float),
            "tier": pd.Series(pred["tier"].to_numpy(), dtype="str").to_numpy(),
        }
    )
    have = set(reasons.columns) if reasons is not None else set()
    for c in reason_columns(max(top_k, MIN_REASON_COLUMNS), with_points=True):
        if c.endswith(POINTS_SUFFIX):
            values = reasons[c].to_numpy(dtype=float) if c in have else np.full(n, np.nan)
            out[c] = np.round(values, 2)  # PD points to 0.01: more digits are noise to a reader
        else:
            values = reasons[c].to_numpy() if c in have else np.full(n, "", dtype=object)
            out[c] = pd.Series(values, dtype="str").to_numpy()
    out["model_name"] = pd.Series([model.name] * len(out), dtype="str")
    out["model_version"] = pd.Series([model.version] * len(out), dtype="str")
    return out


def loan_status(df: pd.DataFrame, default_dpd: int = DEFAULT_DPD) -> np.ndarray:
    """DEFAULTED / PERFORMING per row from dpd_now at the as-of date; UNKNOWN where it is
    missing or the input has no dpd_now (e.g. a prepared modelling table)."""
    if DPD_COLUMN not in df.columns:
        return np.full(len(df), UNKNOWN, dtype=object)
    dpd = pd.to_numeric(df[DPD_COLUMN], errors="coerce").to_numpy(dtype=float)
    status = np.where(dpd >= default_dpd, DEFAULTED, PERFORMING).astype(object)
    status[np.isnan(dpd)] = UNKNOWN
    return status


def check_columns(columns: Any, model: LoanRiskModel, path: Path) -> None:
    """ModelError naming every column the model needs (and loan_id) that `columns` lacks."""
    have = set(columns)
    missing = [c for c in (ID_COLUMN, *model.feature_names) if c not in have]
    if missing:
        raise ModelError(
            f"{path} lacks {len(missing)} column(s) the model needs: {', '.join(missing)}"
        )


def check_types(schema: pa.Schema, model: LoanRiskModel, path: Path) -> None:
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


def apply_as_of(df: pd.DataFrame, as_of: dt.date | None) -> pd.DataFrame:
    """Keep the rows of snapshot `as_of`; a matrix without snapshot_date is taken as of it."""
    if as_of is None:
        return df
    if DATE_COLUMN not in df.columns:
        return df.assign(**{DATE_COLUMN: pd.Timestamp(as_of)})
    return df[pd.to_datetime(df[DATE_COLUMN]).dt.date == as_of]


def as_date(value: str | dt.date | None) -> dt.date | None:
    """The as-of date given as text, date or datetime; ConfigError when it is not a date."""
    if value is None or isinstance(value, dt.date):
        return value.date() if isinstance(value, dt.datetime) else value
    try:
        return pd.Timestamp(value).date()
    except (ValueError, TypeError):
        raise ConfigError(f"as-of date {value!r} is not a date (use YYYY-MM-DD)") from None


def _registered(uri: str) -> tuple[str, str | None]:
    """(name, version) of models:/name/N, and of models:/name@alias by asking the registry once;
    (uri, None) for any other URI."""
    m = _MODELS_URI.match(uri)
    if not m or not (m["alias"] or m["version"]):
        return uri, None
    if m["version"]:
        return m["name"], m["version"]
    mv = mlflow.MlflowClient().get_model_version_by_alias(m["name"], m["alias"])
    return m["name"], str(mv.version)
