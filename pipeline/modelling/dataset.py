"""The labelled modelling data every model stage works on: frame, feature specs and split."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.config import Config
from pipeline.core import catalogue, lineage
from pipeline.core.contract import SENSITIVE
from pipeline.core.errors import ConfigError, DataError
from pipeline.core.metadata import LABEL_COLUMN, FeatureSpec, load_metadata
from pipeline.core.publish import read_set
from pipeline.modelling.matrix import categories_of, to_model_frame
from pipeline.modelling.split import Split, out_of_time, stratified_random
from pipeline.sources.messages import format_cell


@dataclass
class Dataset:
    frame: pd.DataFrame  # labelled rows only, ids + label + features
    specs: list[FeatureSpec]
    split: Split
    id_col: str
    time_col: str | None
    categories: dict[str, list[str]]

    @property
    def y(self) -> np.ndarray:
        return self.frame[LABEL_COLUMN].to_numpy(dtype=np.int8)

    def X(self) -> pd.DataFrame:
        return to_model_frame(self.frame, self.specs, self.categories)

    def parts(self) -> dict[str, tuple[pd.DataFrame, np.ndarray]]:
        X, y = self.X(), self.y
        return {k: (X.iloc[i], y[i]) for k, i in self.split.index.items()}


def load(cfg: Config) -> Dataset:
    if cfg.data.kind == "table":
        return _load_table(cfg)
    return _load_features(cfg)


def _load_features(cfg: Config) -> Dataset:
    folder = Path(cfg.data.features_dir)
    path = folder / catalogue.FEATURES
    meta = folder / catalogue.FEATURE_METADATA
    if not path.exists() or not meta.exists():
        raise DataError(f"no feature matrix at {path}: run `loanrisk features` first")
    # One whole set of the features stage, built from the configured source: never a matrix
    # beside another run's metadata, nor another book's features.
    built = read_set(folder)
    lineage.require_source(folder, lineage.recorded(built, folder), cfg.data.source(), "features")
    df = pd.read_parquet(path)
    specs = model_specs(load_metadata(meta), cfg)
    labelled = df[df[LABEL_COLUMN].notna()].reset_index(drop=True)
    labelled[LABEL_COLUMN] = labelled[LABEL_COLUMN].astype(np.int8)
    _check_label(labelled[LABEL_COLUMN], str(path))
    gap = cfg.split.gap_months
    split = out_of_time(
        labelled,
        cfg.split,
        gap_months=cfg.features.performance_window_months if gap is None else gap,
    )
    cats = categories_of(labelled.iloc[split.index["train"]], specs)
    return Dataset(labelled, specs, split, "loan_id", "snapshot_date", cats)


def _load_table(cfg: Config) -> Dataset:
    """A prepared modelling table: one row per loan (or loan and date) with a target column."""
    d = cfg.data
    path = Path(d.path)
    if not path.exists():
        raise DataError(f"data.path {path} does not exist")
    df = _read_table(path)
    for key in ("target", "id", "time"):
        col = getattr(d, key)
        if col is not None and col not in df.columns:
            raise DataError(
                f"{path}: column {col!r} (data.{key}) not found; columns are {list(df.columns)}"
            )
    target = df[d.target]
    bad = target.isna() | ~target.isin([0, 1, True, False])
    if bad.any():
        rows = np.flatnonzero(bad.to_numpy())[:5]
        shown = "; ".join(f"row {i + 1}: {format_cell(target.iloc[i])}" for i in rows)
        raise DataError(
            f"{path}: target column {d.target!r} (data.target) must be 0/1 with no missing "
            f"values; {int(bad.sum())} of {len(df)} rows are not, e.g. {shown} (rows numbered "
            "from 1 at the first data row)"
        )
    df = df.rename(columns={d.target: LABEL_COLUMN})
    df[LABEL_COLUMN] = df[LABEL_COLUMN].astype(np.int8)
    _check_label(df[LABEL_COLUMN], str(path))
    # Sensitive columns serve the fairness audit only (pipeline.riskmath.fairness), never the model.
    skip = {LABEL_COLUMN, d.id, d.time, *SENSITIVE}
    specs = []
    for col in df.columns:
        if col in skip:
            continue
        numeric = pd.api.types.is_numeric_dtype(df[col]) and not pd.api.types.is_bool_dtype(df[col])
        specs.append(
            FeatureSpec(
                name=col,
                family="customer_loan",
                description=col.replace("_", " "),
                kind="numeric" if numeric else "categorical",
            )
        )
    if d.time is not None:
        df[d.time] = pd.to_datetime(df[d.time])
        split = out_of_time(df, cfg.split, time_col=d.time, gap_months=cfg.split.gap_months or 0)
    else:
        split = stratified_random(df[LABEL_COLUMN], cfg.seed)
    specs = model_specs(specs, cfg)
    cats = categories_of(df.iloc[split.index["train"]], specs)
    return Dataset(df, specs, split, d.id, d.time, cats)


def model_specs(specs: list[FeatureSpec], cfg: Config) -> list[FeatureSpec]:
    """The features the model may use, with the configured expected directions: without the
    protected attributes (they stay in the frame for the fairness audit) unless the
    configuration allows them."""
    out = []
    for s in specs:
        if s.name in cfg.fairness.protected and not cfg.fairness.use_as_features:
            continue
        override = cfg.train.expected.get(s.name)
        if override is not None:
            direction = "unknown" if override.direction == "none" else override.direction
            s = dataclasses.replace(s, expected=direction)
        out.append(s)
    unknown = sorted(set(cfg.train.expected) - {s.name for s in specs})
    # With the four tables the features are loanrisk's own: an unknown name is a typo. A
    # prepared table has its own columns; directions written for the tables do not apply.
    if unknown and cfg.data.kind == "tables":
        raise ConfigError(f"train.expected names features the data does not have: {unknown}")
    return out


def _check_label(y: pd.Series, where: str) -> None:
    if len(y) == 0:
        raise DataError(f"{where}: no labelled rows (every snapshot's window is incomplete?)")
    if y.nunique() < 2:
        raise DataError(
            f"{where}: the label has a single class ({int(y.iloc[0])}) in all {len(y)} labelled "
            "rows; a default model needs both defaults and non-defaults"
        )


def _read_table(path: Path) -> pd.DataFrame:
    """A prepared table from Parquet or CSV; unreadable files are a DataError naming the file."""
    import pyarrow

    try:
        df = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except UnicodeDecodeError:
        raise DataError(f"{path} (data.path) is not UTF-8 text; re-export it as UTF-8") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path} (data.path) is empty (not even a header line)") from None
    except (pd.errors.ParserError, ValueError, OSError, pyarrow.ArrowException) as exc:
        raise DataError(f"{path} (data.path) could not be read as a table: {exc}") from None
    if len(df) == 0:
        raise DataError(f"{path} (data.path) has no data rows; the table needs at least one")
    return df
