"""Benchmark of the relationship effect study and its truth (not a test; run on demand).

    .venv/bin/python bench/effects.py                        # the default book (10,000 customers)
    .venv/bin/python bench/effects.py --full-truth           # also the truth on every snapshot
    .venv/bin/python bench/effects.py --customers 3000 --truth-snapshots 4
    .venv/bin/python bench/effects.py --customers 100000 --max-customers 25000   # a sampled study

Generates the book in memory (seed 42), then times the stages of `loanrisk effects`:

  generate       the simulated book (not part of the study; `make train` has it already)
  features       the study's own feature matrix (snapshots and each lever's window start)
  estimation     per lever: treatment, doubly robust fit, placebo, tiers (and the baselines)
  truth          the simulator's counterfactual runs on the sampled snapshots
  check          re-simulating the book to confirm the tables are the generated ones (a
                 sampled study checks its sample's true PDs instead: not timed here)

and prints each lever's estimate, CI, truth and its Monte-Carlo error, and whether the CI covers
the truth. With --full-truth, the truth on every snapshot beside the sample's, and the sample's
error in standard errors.

Measured 2026-12-03 (2 shared cores, another engineer's jobs running, so +-30%), default book,
17 snapshots, 5 levers: see the README's Performance section for the figures.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import pandas as pd  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.config import load_config  # noqa: E402
from pipeline.effects.design import (  # noqa: E402
    labelled_snapshots,
    sample_customers,
    shift_months,
)
from pipeline.effects.study import _features_config, run_study  # noqa: E402
from pipeline.effects.truth import add_truth, sample_snapshots, true_effects  # noqa: E402
from pipeline.features import build_features_from_frames  # noqa: E402
from pipeline.simulator.simulate import simulate  # noqa: E402

SEED = 42


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--customers", default="default", help="book size (default: 10,000)")
    p.add_argument("--truth-snapshots", type=int, default=None, help="default: the config's")
    p.add_argument("--full-truth", action="store_true", help="also simulate every snapshot")
    p.add_argument("--max-customers", default=None, help="default: the config's; 'null': all")
    args = p.parse_args()
    overrides = [f"generate.size={args.customers}"]
    if args.max_customers is not None:
        overrides.append(f"effects.max_customers={args.max_customers}")
    if args.truth_snapshots is not None:
        overrides.append(f"effects.truth_snapshots={args.truth_snapshots}")
    cfg = load_config(None, overrides)
    ecfg = cfg.effects
    times: dict[str, float] = {}

    t = time.perf_counter()
    book = simulate(cfg.generate, seed=SEED, window_months=cfg.features.performance_window_months)
    tables = book.tables()
    times["generate"] = time.perf_counter() - t

    t = time.perf_counter()
    fcfg = _features_config(cfg, ecfg)
    snaps = labelled_snapshots(tables, fcfg)
    wanted = set(snaps) | {shift_months(s, -lv.window_months) for lv in ecfg.levers for s in snaps}
    studied, _ = sample_customers(tables, ecfg.max_customers, ecfg.seed)
    matrix, _ = build_features_from_frames(
        studied, cfg.model_copy(update={"features": fcfg}), snapshots=sorted(wanted)
    )
    times["features"] = time.perf_counter() - t

    t = time.perf_counter()
    study = run_study(tables, cfg, snapshots=snaps, matrix=matrix)
    times["estimation"] = time.perf_counter() - t

    if not study.sampled:
        t = time.perf_counter()
        natural = simulate(cfg.generate, seed=SEED)
        assert {n: len(df) for n, df in natural.tables().items()} == {
            n: len(df) for n, df in tables.items()
        }
        times["check"] = time.perf_counter() - t

    kept = {k: r.loc[r["kept"]] for k, r in study.rows.items()}
    levers = [lv for lv in ecfg.levers if lv.name in kept]
    picked = sample_snapshots(study.snapshots, ecfg.truth_snapshots)
    t = time.perf_counter()
    truth = true_effects(cfg.generate, SEED, levers, study.snapshots, rows=kept, sample=len(picked))
    times["truth"] = time.perf_counter() - t
    table = add_truth(study.table, truth)

    print(
        f"book: {cfg.generate.n_customers():,} customers ({study.customers:,} studied), "
        f"{len(study.snapshots)} snapshots ({len(picked)} simulated for the truth), "
        f"{len(levers)} levers"
    )
    print(f"{'stage':<12}{'seconds':>9}")
    for k, v in times.items():
        print(f"{k:<12}{v:9.1f}")
    core = sum(times.get(k, 0.0) for k in ("features", "estimation", "truth", "check"))
    print(f"{'study+truth':<12}{core:9.1f}   (features, estimation, truth, check)")
    table["ci_width_pp"] = table["ci_high_pp"] - table["ci_low_pp"]
    cols = ["lever", "ate_pp", "ci_low_pp", "ci_high_pp", "ci_width_pp", "naive_pp"]
    cols += ["true_effect_pp"]
    cols += ["true_effect_se_pp", "covered", "placebo_pass", "seconds"]
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(table[cols].round(3).to_string(index=False))
    if args.full_truth:
        t = time.perf_counter()
        full = true_effects(cfg.generate, SEED, levers, study.snapshots, rows=kept)
        secs = time.perf_counter() - t
        both = truth.merge(full, on="lever", suffixes=("_sample", "_full"))
        both["error_se"] = (both["true_effect_pp_sample"] - both["true_effect_pp_full"]) / both[
            "true_effect_se_pp_sample"
        ]
        print(f"\ntruth on every snapshot: {secs:.1f} s")
        print(
            both[
                [
                    "lever",
                    "true_effect_pp_full",
                    "true_effect_pp_sample",
                    "true_effect_se_pp_sample",
                    "error_se",
                ]
            ]
            .round(3)
            .to_string(index=False)
        )


if __name__ == "__main__":
    main()
