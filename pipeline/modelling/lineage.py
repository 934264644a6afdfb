"""What data a model was built on, as registry tags: two models are compared only when these
agree (`pipeline.modelling.gate.IDENTITY_KEYS`).

The source is where the rows come from (the raw folder, the database and its tables, or the
prepared table's file), not their content: next month's extract of the same book is the same
source, and the gate compares the champion on the new test rows. A 500-customer book in another
folder is another source, and its model is never weighed against the default book's champion.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

from pipeline.config import Config
from pipeline.core.metadata import FeatureSpec
from pipeline.core.secrets import safe_url


def data_identity(cfg: Config, specs: Sequence[FeatureSpec]) -> dict[str, str]:
    """{data.kind, data.source, data.label, features.set} of a model trained under `cfg`."""
    d = cfg.data
    if d.kind == "table":
        source = str(Path(d.path).resolve())
        label = f"column {d.target}"
    else:
        if d.sql is not None:
            tables = ",".join(f"{k}={v}" for k, v in sorted(d.sql.tables.items()))
            source = f"{safe_url(d.sql.url)} [{tables}]"
        else:
            source = str(Path(d.raw_dir).resolve())
        f = cfg.features
        label = f"{f.default_dpd}+ dpd within {f.performance_window_months} months"
    return {
        "data.kind": d.kind,
        "data.source": source,
        "data.label": label,
        "features.set": feature_set(specs),
    }


def feature_set(specs: Sequence[FeatureSpec]) -> str:
    """A short hash of the features' names and kinds, in order (the model's input contract)."""
    text = "\n".join(f"{s.name}:{s.kind}" for s in specs)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
