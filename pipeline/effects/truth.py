"""The simulator's truth for the levers: what the study should have found on a simulated book.

`true_effects` runs the simulator's counterfactual mode (the same seed with the lever forced on,
then off, for everybody in the window before each snapshot) and averages the difference of the
true PDs over the study's own rows. `truth_for_book` does so when the raw data are the generated
book (its `truth/truth.json` reproduces the tables), and `add_truth` puts the truth beside the
estimates.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import time
from collections.abc import Mapping, Sequence

import pandas as pd

from pipeline.config import DEFAULT_LEVERS, Config, GenerateConfig, Lever
from pipeline.core import catalogue
from pipeline.core.errors import ConfigError
from pipeline.effects.schema import EffectStudy
from pipeline.simulator.known_truth import known_truth
from pipeline.simulator.simulate import LEVERS, simulate

log = logging.getLogger(__name__)


def true_effects(
    gen_cfg: GenerateConfig,
    seed: int,
    levers: Sequence[Lever | str],
    snapshots: Sequence[dt.date],
    rows: pd.DataFrame | Mapping[str, pd.DataFrame] | None = None,
    window_months: int = 12,
) -> pd.DataFrame:
    """The true average effect of each lever from the simulator's counterfactual mode.

    For each snapshot s (a first day of a month) and lever, the book is simulated twice with the
    same seed, the lever forced on (at least one event a month for every customer with a loan;
    every complaint resolved) and off (none; none resolved) in the lever's window
    [s - window_months, s); the effect at s is the mean over the loans active at s of
    pd_given_path(on) - pd_given_path(off), the 12-month (`window_months`) default probability
    given the future randomness both runs share.
    rows: restrict the averages to these (loan_id, snapshot_date) rows - one frame for every
        lever, or a mapping lever name -> frame (e.g. `EffectStudy.rows`, or only its kept
        rows: the effect of the very population that was estimated); None = all active loans.
    Returns lever, true_effect_pp (rows pooled over the snapshots, each row weight 1),
    n_rows, n_snapshots, seconds. Costs 2 x len(levers) x len(snapshots) simulations.
    """
    by_name = {lv.name: lv for lv in DEFAULT_LEVERS}
    out = []
    for item in levers:
        lever = by_name[item] if isinstance(item, str) else item
        t0 = time.perf_counter()
        if lever.sim_name not in LEVERS:
            out.append(
                {
                    "lever": lever.name,
                    "true_effect_pp": math.nan,
                    "n_rows": 0,
                    "n_snapshots": 0,
                    "seconds": 0.0,
                }
            )
            continue
        keep = rows.get(lever.name) if isinstance(rows, Mapping) else rows
        deltas = []
        for s in sorted({pd.Timestamp(x).date() for x in snapshots}):
            if s.day != 1:
                raise ConfigError(f"true_effects needs first-of-month snapshots, got {s}")
            m = _month_index(gen_cfg.start, s)
            window = (m - lever.window_months, m)
            pd_on = _true_pd_at(gen_cfg, seed, lever.sim_name, True, window, s, window_months)
            pd_off = _true_pd_at(gen_cfg, seed, lever.sim_name, False, window, s, window_months)
            both = pd_on.merge(pd_off, on="loan_id", suffixes=("_on", "_off"))
            both["delta"] = both["true_pd_on"] - both["true_pd_off"]
            both["snapshot_date"] = pd.Timestamp(s).as_unit("us")
            deltas.append(both[["loan_id", "snapshot_date", "delta"]])
        delta = pd.concat(deltas, ignore_index=True)
        if keep is not None:
            k = keep[["loan_id", "snapshot_date"]].assign(
                snapshot_date=lambda f: pd.to_datetime(f["snapshot_date"]).dt.as_unit("us")
            )
            delta = delta.merge(k, on=["loan_id", "snapshot_date"], how="inner")
        out.append(
            {
                "lever": lever.name,
                "true_effect_pp": 100 * float(delta["delta"].mean()) if len(delta) else math.nan,
                "n_rows": len(delta),
                "n_snapshots": int(delta["snapshot_date"].nunique()),
                "seconds": time.perf_counter() - t0,
            }
        )
    return pd.DataFrame(out)


def truth_for_book(
    cfg: Config, tables: Mapping[str, pd.DataFrame], study: EffectStudy
) -> tuple[pd.DataFrame | None, str]:
    """True effects when cfg.data.raw_dir holds the generated book (its truth/truth.json) and
    re-simulating it reproduces the tables; else (None, why not). The levers and the outcome
    window are those the study ran with (`study.config`)."""
    known = known_truth(cfg)
    if known is None:
        return None, "no simulator truth (the data are not the generated book)"
    truth = known.spec
    ecfg = study.config
    window = ecfg.outcome_window_months or cfg.features.performance_window_months
    try:
        gen = cfg.generate.model_copy(
            update={
                "size": str(truth["n_customers"]),
                "months": int(truth["months"]),
                "start": dt.date.fromisoformat(truth["start"]),
            }
        )
        seed = int(truth["seed"])
    except (KeyError, ValueError, TypeError) as exc:
        return None, f"{catalogue.TRUTH_JSON} unreadable ({exc}): no true effects"
    if int(truth.get("window_months", window)) != window:
        return None, "the generated truth uses another performance window: no true effects"

    natural = simulate(gen, seed=seed, window_months=window)
    sizes = {n: len(df) for n, df in natural.tables().items()}
    if sizes != {n: len(tables[n]) for n in sizes}:
        return None, "re-simulating the book did not reproduce the tables: no true effects"
    levers = [lv for lv in ecfg.levers if lv.name in study.rows]
    kept = {k: r.loc[r["kept"]] for k, r in study.rows.items()}
    log.info(
        "the raw data are the generated book: %d simulations for the true effects",
        2 * len(levers) * len(study.snapshots),
    )
    t0 = time.perf_counter()
    res = true_effects(gen, seed, levers, study.snapshots, rows=kept, window_months=window)
    return res, (
        f"true effects from the simulator's counterfactual mode over the same snapshots and "
        f"rows ({2 * len(levers) * len(study.snapshots)} simulations, "
        f"{time.perf_counter() - t0:.0f} s)"
    )


def add_truth(table: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """`table` with true_effect_pp, covered (CI holds the truth) and naive_bias_pp columns."""
    out = table.merge(truth[["lever", "true_effect_pp"]], on="lever", how="left")
    out["covered"] = (out["ci_low_pp"] <= out["true_effect_pp"]) & (
        out["true_effect_pp"] <= out["ci_high_pp"]
    )
    out["naive_bias_pp"] = out["naive_pp"] - out["true_effect_pp"]
    return out


def _true_pd_at(
    gen_cfg: GenerateConfig,
    seed: int,
    lever: str,
    on: bool,
    window: tuple[int, int],
    s: dt.date,
    window_months: int,
) -> pd.DataFrame:
    """The true PD at snapshot s of every loan active at s, the lever forced on or off."""
    book = simulate(
        gen_cfg, seed=seed, window_months=window_months, levers={lever: on}, lever_months=window
    )
    # The PD given the drawn future: both arms share that randomness, so their difference is
    # the lever's effect on the label itself, not on an approximation of its probability.
    tp = book.true_pd.rename(columns={"pd_given_path": "true_pd", "true_pd": "pd_given_state"})
    return tp.loc[tp["snapshot_date"] == pd.Timestamp(s), ["loan_id", "true_pd"]]


def _month_index(start: dt.date, s: dt.date) -> int:
    """Month of `s` counted from the simulation's month 0 (the month of `start`)."""
    return (s.year - start.year) * 12 + s.month - start.month
