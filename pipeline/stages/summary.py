"""The short table `loanrisk train` prints at the end: rows per split, AUCs, calibration, gate."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from rich.table import Table

from pipeline.core.catalogue import RunFiles
from pipeline.core.metadata import LABEL_COLUMN
from pipeline.modelling.split import SPLITS


def train_table(result) -> Table:
    """A rich table of a `pipeline.stages.train.TrainResult`; rows per split from its
    predictions."""
    table = Table(title=f"training run {result.run_id}", show_header=True, header_style="bold")
    table.add_column("")
    table.add_column("value", justify="right")
    preds = RunFiles(Path(result.run_dir)).predictions
    if preds.exists():
        p = pd.read_parquet(preds, columns=["split", LABEL_COLUMN])
        for k in SPLITS:
            y = p.loc[p["split"] == k, LABEL_COLUMN]
            table.add_row(f"{k} rows", f"{len(y):,} ({y.mean():.1%} default)" if len(y) else "0")
    table.add_row("valid AUC (best tuning trial, raw PD)", f"{result.valid_auc:.4f}")
    table.add_row("test AUC (final model, calibrated PD)", f"{result.test_auc:.4f}")
    if result.constraints_pair_rows is not None:
        on = f"refits on {result.constraints_pair_rows:,} rows"
        table.add_row(
            f"test AUC with / without constraints ({on})",
            f"{result.test_auc_constrained_refit:.4f} / {result.test_auc_unconstrained:.4f}",
        )
    elif result.test_auc_unconstrained is not None:
        table.add_row("test AUC unconstrained", f"{result.test_auc_unconstrained:.4f}")
    table.add_row("calibration", result.calibration)
    gate = {True: "[green]promoted[/]", False: "[yellow]not promoted[/]", None: "pending"}[
        result.promoted
    ]
    table.add_row("champion", f"{gate} (version {result.model_version})")
    table.add_row("seconds", f"{result.seconds:.0f}")
    return table
