"""Feature metadata: what each column of the feature matrix means, its family and expected sign.

Kept beside the matrix (`feature_metadata.json`), logged with every run, and used by training
(monotone constraints), explanation (grouping, expected vs found direction) and reason codes
(readable labels).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from pipeline.core.io import write_json

Family = Literal["repayment", "relationship", "customer_loan"]
Direction = Literal["lowers", "raises", "unknown"]

# Columns of the feature matrix that are keys or outcomes, never model inputs.
KEY_COLUMNS = ("loan_id", "customer_id", "snapshot_date")
LABEL_COLUMN = "label"


@dataclass(frozen=True)
class FeatureSpec:
    """One model input.

    expected: the direction the business expects on the probability of default when the feature
        grows ("lowers" = more of it, less default). Drives monotone constraints.
    label: a template for reason codes, formatted with `value`, e.g.
        "{value:.0f} late instalments in the last 6 months".
    """

    name: str
    family: Family
    description: str
    expected: Direction = "unknown"
    kind: Literal["numeric", "categorical"] = "numeric"
    label: str = ""

    def readable(self, value: object, currency: str = "") -> str:
        """Reason-code text for this feature at `value`. A label's `{money}` is the value as a
        whole amount after the `currency` code (e.g. "EUR 12,345")."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return f"{self.description}: missing"
        if self.label:
            try:
                money = f"{currency} {value:,.0f}".strip() if "{money}" in self.label else ""
                return singular_after_one(self.label.format(value=value, money=money))
            except (ValueError, TypeError):
                pass
        if isinstance(value, float):
            return f"{self.description}: {value:,.2f}"
        return f"{self.description}: {value}"

    @property
    def monotone(self) -> int:
        return {"lowers": -1, "raises": 1}.get(self.expected, 0)


# "1" as a whole count, then up to two words before the plural noun ("1 late instalments",
# "1 payment reminders", "holds 1 loans", "paid up to 1 days late")
_ONE_PLURAL = re.compile(r"(?<![\d.,])1 ((?:[a-z-]+ ){0,2}?)([a-z-]+[^s\W])s\b")


def singular_after_one(text: str) -> str:
    """ "1 hardship requests" -> "1 hardship request": labels are written for counts of many."""
    return _ONE_PLURAL.sub(r"1 \1\2", text)


def save_metadata(specs: list[FeatureSpec], path: Path) -> None:
    write_json([asdict(s) for s in specs], path)


def load_metadata(path: Path) -> list[FeatureSpec]:
    return [FeatureSpec(**d) for d in json.loads(Path(path).read_text())]


def by_name(specs: list[FeatureSpec]) -> dict[str, FeatureSpec]:
    return {s.name: s for s in specs}


def specs_for_contributions(
    contribs: np.ndarray, X: pd.DataFrame, specs: list[FeatureSpec]
) -> tuple[np.ndarray, list[FeatureSpec]]:
    """Check SHAP contributions (n, features + 1; last column the bias) against `X` and return
    them as floats with the spec of every column of `X`, in its order."""
    contribs = np.asarray(contribs, dtype=float)
    if contribs.shape != (len(X), X.shape[1] + 1):
        raise ValueError(f"contribs shape {contribs.shape} does not match X {X.shape} + bias")
    named = by_name(specs)
    missing = [c for c in X.columns if c not in named]
    if missing:
        raise ValueError(f"no FeatureSpec for column(s) {missing}")
    return contribs, [named[c] for c in X.columns]
