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

import numpy as np
import pandas as pd

from pipeline.config import DEFAULT_LEVERS, Config, GenerateConfig, Lever
from pipeline.core import catalogue
from pipeline.core.errors import ConfigError
from pipeline.effects.schema import EffectStudy
from pipeline.simulator.counterfactual import (
    customers_of_loans,
    lever_pd,
    lever_pds,
    population,
)
from pipeline.simulator.known_truth import known_truth
from pipeline.simulator.simulate import LEVERS, simulate
from pipeline.simulator.tables import loan_ids as book_loan_ids
from pipeline.simulator.world import Calendar

log = logging.getLogger(__name__)


def true_effects(
    gen_cfg: GenerateConfig,
    seed: int,
    levers: Sequence[Lever | str],
    snapshots: Sequence[dt.date],
    rows: pd.DataFrame | Mapping[str, pd.DataFrame] | None = None,
    window_months: int = 12,
    sample: int | None = None,
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
        Only the rows' customers are simulated (`simulator.sample`: the same PDs as the whole
        book's, at the cost of the customers simulated: a sampled study pays for its sample).
    sample: simulate only this many snapshots (evenly spaced; None or >= all: every one). The
        pooled effect is then the row-weighted mean over the sampled snapshots, a ratio
        estimator whose standard error over snapshots (`true_effect_se_pp`, finite-population
        corrected) is the truth's Monte-Carlo error; 0 when every snapshot is simulated.
    Returns lever, true_effect_pp, true_effect_se_pp, n_rows (of the sampled snapshots),
    n_snapshots (simulated), seconds (the lever's share of the time). Costs 2 x len(levers) x
    snapshots simulated runs of the months from the earliest lever window to each snapshot's
    window end, and one run of the months before it per snapshot (`counterfactual.lever_pds`).
    """
    by_name = {lv.name: lv for lv in DEFAULT_LEVERS}
    snaps = sorted({pd.Timestamp(x).date() for x in snapshots})
    picked = sample_snapshots(snaps, sample)
    resolved = [by_name[item] if isinstance(item, str) else item for item in levers]
    known = [lv for lv in resolved if lv.sim_name in LEVERS]
    keeps = {lv.name: rows.get(lv.name) if isinstance(rows, Mapping) else rows for lv in known}
    # One set of customers for every lever: a snapshot's arms then share the months before
    # their windows (`lever_pds`); each lever still averages over its own rows.
    who = None
    if known and all(k is not None for k in keeps.values()):
        ids = pd.concat([k["loan_id"] for k in keeps.values()], ignore_index=True)
        who = customers_of_loans(gen_cfg, seed, ids)
    t0 = time.perf_counter()
    deltas: dict[str, list[pd.DataFrame]] = {lv.name: [] for lv in known}
    for s in picked if known else []:
        if s.day != 1:
            raise ConfigError(f"true_effects needs first-of-month snapshots, got {s}")
        m = _month_index(gen_cfg.start, s)
        arms = [
            ({lv.sim_name: on}, (m - lv.window_months, m)) for lv in known for on in (True, False)
        ]
        pds = lever_pds(gen_cfg, seed, window_months, arms, s, customers=who)
        for i, lv in enumerate(known):
            both = pds[2 * i].merge(pds[2 * i + 1], on="loan_id", suffixes=("_on", "_off"))
            both["delta"] = both["pd_given_path_on"] - both["pd_given_path_off"]
            both["snapshot_date"] = pd.Timestamp(s).as_unit("us")
            deltas[lv.name].append(both[["loan_id", "snapshot_date", "delta"]])
    share = (time.perf_counter() - t0) / max(len(known), 1)
    out = []
    for lever in resolved:
        if lever.name not in deltas:
            out.append(
                {
                    "lever": lever.name,
                    "true_effect_pp": math.nan,
                    "true_effect_se_pp": math.nan,
                    "n_rows": 0,
                    "n_snapshots": 0,
                    "seconds": 0.0,
                }
            )
            continue
        delta = pd.concat(deltas[lever.name], ignore_index=True)
        keep = keeps[lever.name]
        if keep is not None:
            k = keep[["loan_id", "snapshot_date"]].assign(
                snapshot_date=lambda f: pd.to_datetime(f["snapshot_date"]).dt.as_unit("us")
            )
            delta = delta.merge(k, on=["loan_id", "snapshot_date"], how="inner")
        mean, se = _pooled(delta, len(snaps))
        out.append(
            {
                "lever": lever.name,
                "true_effect_pp": 100 * mean,
                "true_effect_se_pp": 100 * se,
                "n_rows": len(delta),
                "n_snapshots": int(delta["snapshot_date"].nunique()),
                "seconds": share,
            }
        )
    return pd.DataFrame(out)


def sample_snapshots(snapshots: Sequence[dt.date], k: int | None) -> list[dt.date]:
    """`k` of the sorted `snapshots`, evenly spaced from the first to the last (all if k is None
    or not smaller)."""
    snaps = sorted(snapshots)
    if k is None or k >= len(snaps):
        return snaps
    if k < 1:
        raise ConfigError(f"a truth sample needs at least one snapshot, got {k}")
    idx = np.unique(np.round(np.linspace(0, len(snaps) - 1, k)).astype(int))
    return [snaps[i] for i in idx]


def _pooled(delta: pd.DataFrame, n_all: int) -> tuple[float, float]:
    """The row-weighted mean of `delta` and its standard error over the sampled snapshots.

    Ratio estimator of a sample of k snapshots out of n_all, treated as a simple random
    sample: se^2 = (1 - k / n_all) / k * var_s(n_s (d_s - mean)) / mean_s(n_s)^2, with d_s and
    n_s the mean and row count of snapshot s. Even spacing is at least as precise as a random
    sample when the effect drifts over time, so the figure errs on the safe side.
    """
    if delta.empty:
        return math.nan, math.nan
    per = delta.groupby("snapshot_date")["delta"].agg(["mean", "size"])
    mean = float(delta["delta"].mean())
    k = len(per)
    if k >= n_all or k < 2:
        return mean, 0.0 if k >= n_all else math.nan
    resid = per["size"] * (per["mean"] - mean)
    var = (1 - k / n_all) / k * float(resid.var(ddof=1)) / float(per["size"].mean()) ** 2
    return mean, math.sqrt(var)


def truth_for_book(
    cfg: Config, tables: Mapping[str, pd.DataFrame], study: EffectStudy
) -> tuple[pd.DataFrame | None, str]:
    """True effects when cfg.data.raw_dir holds the generated book (its truth/truth.json) and
    re-simulating it reproduces the tables; else (None, why not). The levers and the outcome
    window are those the study ran with (`study.config`)."""
    ecfg = study.config
    window = ecfg.outcome_window_months or cfg.features.performance_window_months
    book = generated_book(cfg, window)
    if isinstance(book, str):
        return None, book
    gen, seed = book
    kept = {k: r.loc[r["kept"]] for k, r in study.rows.items()}
    picked = sample_snapshots(study.snapshots, ecfg.truth_snapshots)
    if study.sampled and kept:
        # Re-simulating the whole book would cost more than the sample's truth: check that the
        # sample's customers get the true PDs the generated book wrote instead.
        rows = pd.concat(kept.values(), ignore_index=True)
        if not reproduces_true_pd(gen, seed, window, rows["loan_id"], max(picked), cfg):
            return None, "re-simulating the sample did not reproduce the book's true PDs"
    else:
        natural = simulate(gen, seed=seed, window_months=window)
        sizes = {n: len(df) for n, df in natural.tables().items()}
        if sizes != {n: len(tables[n]) for n in sizes}:
            return None, "re-simulating the book did not reproduce the tables: no true effects"
    levers = [lv for lv in ecfg.levers if lv.name in study.rows]
    n_sims = 2 * len(levers) * len(picked)
    log.info("the raw data are the generated book: %d simulations for the true effects", n_sims)
    t0 = time.perf_counter()
    res = true_effects(
        gen, seed, levers, study.snapshots, rows=kept, window_months=window, sample=len(picked)
    )
    if len(picked) < len(study.snapshots):
        worst = float(res["true_effect_se_pp"].max()) if len(res) else math.nan
        how = (
            f"{len(picked)} of the {len(study.snapshots)} snapshots (evenly spaced; the "
            f"truth's Monte-Carlo error over snapshots is at most {worst:.3f} pp, column "
            "true_effect_se_pp)"
        )
    else:
        how = f"all {len(picked)} snapshots"
    return res, (
        f"true effects from the simulator's counterfactual mode over the study's rows of {how} "
        f"({n_sims} counterfactual runs, {time.perf_counter() - t0:.0f} s)"
    )


def reproduces_true_pd(
    gen: GenerateConfig,
    seed: int,
    window: int,
    loan_ids: pd.Series,
    snapshot: dt.date,
    cfg: Config,
) -> bool:
    """Whether the simulator, run for the customers of `loan_ids` alone, gives at `snapshot`
    the pd_given_path the generated book wrote (truth/true_pd.parquet) for every loan it has
    there."""
    known = known_truth(cfg)
    if known is None:
        return False
    m = _month_index(gen.start, snapshot)
    who = customers_of_loans(gen, seed, loan_ids)
    sim = lever_pd(gen, seed, window, {}, (m - 1, m), snapshot, customers=who)
    written = pd.read_parquet(
        known.folder / catalogue.TRUE_PD,
        columns=["loan_id", "snapshot_date", "pd_given_path"],
        filters=[("snapshot_date", "==", pd.Timestamp(snapshot))],
    )
    _, loans = population(seed, gen.n_customers(), Calendar.of(gen).months)
    theirs = book_loan_ids(loans)[np.isin(loans.cust, who if who is not None else loans.cust)]
    written = written.loc[written["loan_id"].isin(theirs)]
    both = sim.merge(written, on="loan_id", how="outer", suffixes=("", "_written"))
    return bool(
        len(both)
        and both[["pd_given_path", "pd_given_path_written"]].notna().all(axis=None)
        and np.array_equal(both["pd_given_path"], both["pd_given_path_written"])
    )


def generated_book(cfg: Config, window: int) -> tuple[GenerateConfig, int] | str:
    """The generate settings and seed that reproduce cfg.data.raw_dir's generated book (from its
    truth/truth.json), or why there are none."""
    known = known_truth(cfg)
    if known is None:
        return "no simulator truth (the data are not the generated book)"
    truth = known.spec
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
        return f"{catalogue.TRUTH_JSON} unreadable ({exc}): no true effects"
    if int(truth.get("window_months", window)) != window:
        return "the generated truth uses another performance window: no true effects"
    return gen, seed


def add_truth(table: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """`table` with true_effect_pp (and its Monte-Carlo error true_effect_se_pp when the truth
    has one), covered (the CI holds the truth's point value) and naive_bias_pp columns."""
    cols = [c for c in ("lever", "true_effect_pp", "true_effect_se_pp") if c in truth]
    out = table.merge(truth[cols], on="lever", how="left")
    out["covered"] = (out["ci_low_pp"] <= out["true_effect_pp"]) & (
        out["true_effect_pp"] <= out["ci_high_pp"]
    )
    out["naive_bias_pp"] = out["naive_pp"] - out["true_effect_pp"]
    return out


def _month_index(start: dt.date, s: dt.date) -> int:
    """Month of `s` counted from the simulation's month 0 (the month of `start`)."""
    return (s.year - start.year) * 12 + s.month - start.month
