"""Relationship effect study: does pulling a lever reduce default, by how much, and how sure are
we? This module runs the study over the configured levers; `pipeline.effects.stage` is the
`loanrisk effects` stage around it.

    tables -> feature matrix -> per lever: study frame, treatment, doubly robust fit -> EffectStudy

The parts: `design` (snapshots, the study frame, treatments, controls), `inference` (the doubly
robust fit and its cluster-robust interval), `estimation` (one lever's estimate, refutations,
tiers, overlap), `truth` (the simulator's true effects), `results` (writing and MLflow logging)
and `report` (the summary and the HTML section).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from pipeline.config import Config, EffectsConfig, FeaturesConfig
from pipeline.core.errors import DataError
from pipeline.effects.design import (
    control_columns,
    labelled_snapshots,
    sample_customers,
    shift_months,
    study_frame,
    treatment_counts,
)
from pipeline.effects.estimation import estimate_lever
from pipeline.effects.inference import baseline_pd
from pipeline.effects.schema import OVERLAP_COLUMNS, TABLE_COLUMNS, TIER_COLUMNS, EffectStudy
from pipeline.features import build_features_from_frames

log = logging.getLogger(__name__)


def effects_config(cfg: Config) -> EffectsConfig:
    """The `effects` section of the config."""
    return cfg.effects


def run_study(
    tables: Mapping[str, pd.DataFrame],
    cfg: Config,
    snapshots: Sequence[dt.date] | None = None,
    matrix: pd.DataFrame | None = None,
) -> EffectStudy:
    """Estimate every configured lever's effect on the default label (see `design`, `inference`
    and `estimation` for the method).

    tables: the four validated contract tables (the CRM events define the treatments).
    snapshots: the pooled snapshot dates (first days of months whose outcome window is complete);
        None = every labelled snapshot of the configured range.
    matrix: a feature matrix of `pipeline.features.build_features` holding rows at each snapshot
        and at each snapshot minus each lever's window (the pre-window controls); None = build it.
    With `effects.max_customers` below the book's customers, everything runs on a seeded sample
    of whole customers (`design.sample_customers`); the snapshots are the whole book's.
    """
    ecfg = effects_config(cfg)
    t0 = time.perf_counter()
    fcfg = _features_config(cfg, ecfg)
    fcfg_full = cfg.model_copy(update={"features": fcfg})
    if snapshots is None:
        snapshots = labelled_snapshots(tables, fcfg)
    snaps = sorted({pd.Timestamp(s).date() for s in snapshots})
    if not snaps:
        raise DataError("no labelled snapshot to study: the book is shorter than the window")
    tables, n_book = sample_customers(tables, ecfg.max_customers, ecfg.seed)
    n_studied = len(tables["customers"])
    if n_studied < n_book:
        # The labels need the data's end date: a sample whose last event falls earlier (a tiny
        # sample) leaves its last snapshots unlabelled, so keep the snapshots labelled in both.
        ok = set(labelled_snapshots(tables, fcfg))
        snaps = [s for s in snaps if s in ok]
        if matrix is not None:
            matrix = matrix.loc[matrix["customer_id"].isin(tables["customers"]["customer_id"])]
        log.info(
            "effects: a sample of %s of the %s customers (effects.max_customers)",
            f"{n_studied:,}",
            f"{n_book:,}",
        )
    windows = sorted({lv.window_months for lv in ecfg.levers})
    pre_dates = {w: {s: shift_months(s, -w) for s in snaps} for w in windows}
    if matrix is None:
        wanted = set(snaps) | {p for d in pre_dates.values() for p in d.values()}
        matrix, _ = build_features_from_frames(tables, fcfg_full, snapshots=sorted(wanted))
    feature_cols = control_columns(matrix)
    crm = tables["crm_interactions"]

    frames: dict[int, pd.DataFrame] = {}
    baseline: dict[int, np.ndarray] = {}
    results, tier_rows, overlap_rows, row_sets, cates = [], [], [], {}, []
    for lever in ecfg.levers:
        w = lever.window_months
        if w not in frames:
            frames[w] = study_frame(matrix, snaps, pre_dates[w], feature_cols)
            baseline[w] = baseline_pd(frames[w], feature_cols, ecfg)
        frame = frames[w].assign(baseline_pd=baseline[w])
        counts = treatment_counts(crm, snaps, lever.event_type, w)
        res = estimate_lever(lever, frame, counts, feature_cols, ecfg, cfg)
        results.append(res.summary)
        tier_rows.extend(res.tiers)
        overlap_rows.extend(res.overlap)
        if res.rows is not None:
            row_sets[lever.name] = res.rows
        if res.cate is not None:
            cates.append(res.cate.to_dict())
        log.info(
            "effect of %s: %+.2f pp [%+.2f, %+.2f] (naive %+.2f), %s treated of %s, %.1f s",
            lever.name,
            res.summary["ate_pp"],
            res.summary["ci_low_pp"],
            res.summary["ci_high_pp"],
            res.summary["naive_pp"],
            f"{res.summary['n_treated']:,}",
            f"{res.summary['n_rows']:,}",
            res.summary["seconds"],
        )
    table = pd.DataFrame(results, columns=TABLE_COLUMNS)
    tiers = pd.DataFrame(tier_rows, columns=TIER_COLUMNS)
    overlap = pd.DataFrame(overlap_rows, columns=OVERLAP_COLUMNS)
    return EffectStudy(
        table,
        tiers,
        overlap,
        row_sets,
        snaps,
        time.perf_counter() - t0,
        config=ecfg,
        cate=cates,
        customers=n_studied,
        customers_in_book=n_book,
    )


def _features_config(cfg: Config, ecfg: EffectsConfig) -> FeaturesConfig:
    """The features section with the study's outcome window and snapshot frequency, if set."""
    update: dict[str, Any] = {}
    if ecfg.outcome_window_months is not None:
        update["performance_window_months"] = ecfg.outcome_window_months
    if ecfg.snapshot_freq is not None:
        update["snapshot_freq"] = ecfg.snapshot_freq
    return cfg.features.model_copy(update=update)
