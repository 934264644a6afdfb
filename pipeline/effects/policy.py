"""Proving the next-best action on the simulated book: replay a year under four contact policies.

At the study's last snapshot s, the flagged loans are those in the flagged risk tiers
(`explain.flagged_tiers`) by the study's own out-of-fold PD. The simulator replays the 12 months
after s with the same seed under each policy, its contacts forced in the month before s (the
convention of the study's truth: a lever pulled in month s - 1 shows in the PD at s):

- recommended: the next-best action (`riskmath.actions`, the rule scoring applies) of the first
  `effects.monthly_contact_budget` flagged loans ranked by loss avoided per contact;
- lender: the same number of contacts the way the lender targets today, a payment reminder to
  the riskiest flagged loans (the simulated lender reminds the customers it sees as risky);
- random: the same number of flagged loans drawn at random, given the recommended levers in
  shuffled order (so only the choice of loans differs from the recommendation);
- none: no contact beyond what the book drew.

True defaults are the sum of the loans' true 12-month PDs given the replayed path; defaults and
loss (PD x outstanding balance x LGD) avoided are counted against "none", per 1,000 contacts.
The simulator draws each customer's events from their own uniforms (common random numbers),
so a contact changes that customer's path only: the policies differ by their contacts alone.

Qini curves per lever come from a simulated randomised trial on the same flagged customers:
each is given one lever or none at random (equal arms), the outcome is a default drawn from its
true PD, and scikit-uplift's metrics rank the loans by the lever's estimated PD reduction. The
trial's assignment and outcomes are drawn afresh, never seen by the study's fit: held-out data.

Cost: five counterfactual simulations up to s + 12 months and one feature build at s (about
10 s on the default book); `effects.policy_replay` turns it off.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pipeline.config import Config, EffectsConfig, GenerateConfig
from pipeline.effects.design import customer_tables
from pipeline.features import build_features_from_frames
from pipeline.riskmath.actions import (
    EXPOSURE_COLUMN,
    ActionModel,
    lever_effect,
    rank_by_budget,
    recommend,
)
from pipeline.simulator.counterfactual import customers_of_loans, lever_pd, population

log = logging.getLogger(__name__)

POLICIES = ("recommended", "lender", "random", "none")
# The lender's habitual contact for loans it sees as risky (the simulator's CRM intensities).
LENDER_LEVER = "payment_reminder"
POLICY_COLUMNS = [
    "policy",
    "contacts",
    "flagged_loans",
    "true_defaults",
    "defaults_avoided",
    "defaults_avoided_per_1000",
    "loss_avoided",
    "loss_avoided_per_1000",
]
QINI_COLUMNS = ["lever", "n_treated", "n_control", "qini_auc", "uplift_auc"]


@dataclass
class PolicyReplay:
    """The replay's results: `table` (POLICY_COLUMNS, one row per policy), `qini` (QINI_COLUMNS,
    one row per lever) and the Qini curves (lever -> (loans targeted, incremental non-defaults))."""

    table: pd.DataFrame
    qini: pd.DataFrame
    curves: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    snapshot: dt.date | None = None
    seconds: float = 0.0
    note: str = ""
    # the recommended policy's contacts by lever
    levers: dict[str, int] = field(default_factory=dict)


def _scaled(budget: int, share: float) -> str:
    return f", {budget:,} for the sample's {share:.0%} of the customers" if share < 1 else ""


def replay_policies(
    cfg: Config,
    tables: dict[str, pd.DataFrame],
    rows: pd.DataFrame,
    cate: list[dict],
    snapshot: dt.date,
    gen: GenerateConfig,
    seed: int,
    window_months: int,
    ecfg: EffectsConfig | None = None,
    budget_share: float = 1.0,
) -> PolicyReplay:
    """Replay the policies for the flagged loans at `snapshot` (first day of a month).

    rows: the study's rows (loan_id, snapshot_date, baseline_pd, tier; any lever's).
    cate: the study's conditional effects as cate.json holds them (`results.with_verdicts`):
        without a lever's verdict, the lever counts as shown to reduce default.
    gen, seed, window_months: the generated book (its truth.json) and the outcome window.
    ecfg: the effects settings the study ran with (None: cfg.effects).
    budget_share: the study's share of the book's customers: a sample gets that share of the
        monthly contact budget, or it would contact a larger share of its flagged loans (and
        reach deeper down their ranking) than the lender could on the whole book.
    """
    t0 = time.perf_counter()
    ecfg = ecfg or cfg.effects
    m = (snapshot.year - gen.start.year) * 12 + snapshot.month - gen.start.month
    months = (m - 1, m)
    flagged = _flagged(rows, snapshot, cfg.explain.flagged_tiers)
    # Only the flagged loans' customers are contacted and counted: simulate them alone (the
    # same PDs as the whole book's, `simulator.sample`) and build only their features.
    who = customers_of_loans(gen, seed, flagged["loan_id"])
    natural = lever_pd(gen, seed, window_months, {}, months, snapshot, customers=who)
    natural = natural.set_index("loan_id")
    flagged = flagged.loc[flagged["loan_id"].isin(natural.index)]
    if flagged.empty:
        return PolicyReplay(
            pd.DataFrame(columns=POLICY_COLUMNS),
            pd.DataFrame(columns=QINI_COLUMNS),
            snapshot=snapshot,
            note=f"no flagged loan at {snapshot}: no policy to replay",
        )
    loans = tables["loans"]
    holders = loans.loc[loans["loan_id"].isin(flagged["loan_id"]), "customer_id"].unique()
    feats = _features_at(cfg, customer_tables(tables, holders), snapshot, flagged["loan_id"])
    model = ActionModel(list(cate), ecfg.alpha, ecfg.lgd)
    budget = max(1, round(ecfg.monthly_contact_budget * budget_share))
    acts = rank_by_budget(recommend(feats, model), budget)
    acts["loan_id"] = feats["loan_id"].to_numpy()
    acts["customer"] = natural.loc[feats["loan_id"], "customer"].to_numpy()
    acts["baseline_pd"] = flagged.set_index("loan_id").loc[feats["loan_id"], "baseline_pd"].values
    exposure = pd.to_numeric(feats.get(EXPOSURE_COLUMN), errors="coerce")
    acts["exposure"] = (
        exposure.fillna(0.0).to_numpy() if exposure is not None else np.zeros(len(acts))
    )
    sim_name = {lv.name: lv.sim_name for lv in ecfg.levers}
    n_cust = population(seed, gen.n_customers(), gen.months)[0].n
    rng = np.random.default_rng(ecfg.seed)

    chosen = acts.loc[acts["action_in_budget"]].sort_values("action_rank")
    n = len(chosen)
    levers = chosen["next_best_action"].astype(str).map(sim_name).to_numpy()
    plans = {
        "recommended": (chosen["customer"].to_numpy(), levers),
        "lender": (
            acts.sort_values("baseline_pd", ascending=False, kind="stable")["customer"].to_numpy()[
                :n
            ],
            np.full(n, LENDER_LEVER),
        ),
        "random": (rng.permutation(acts["customer"].to_numpy())[:n], rng.permutation(levers)),
    }
    pd_nat = natural.loc[acts["loan_id"], "pd_given_path"].to_numpy()
    out = []
    for name in POLICIES:
        if name == "none" or n == 0:
            pds = pd_nat
        else:
            masks = _masks(*plans[name], n_cust)
            arm = lever_pd(gen, seed, window_months, masks, months, snapshot, customers=who)
            pds = arm.set_index("loan_id").loc[acts["loan_id"], "pd_given_path"].to_numpy()
        avoided = pd_nat - pds
        loss = float((avoided * acts["exposure"].to_numpy()).sum() * ecfg.lgd)
        per = 1000 / n if n else math.nan
        out.append(
            {
                "policy": name,
                "contacts": 0 if name == "none" else n,
                "flagged_loans": len(acts),
                "true_defaults": float(pds.sum()),
                "defaults_avoided": float(avoided.sum()),
                "defaults_avoided_per_1000": float(avoided.sum()) * per if name != "none" else 0,
                "loss_avoided": loss,
                "loss_avoided_per_1000": loss * per if name != "none" else 0.0,
            }
        )
    qini, curves = _trial(
        gen, seed, window_months, months, snapshot, feats, acts, model, sim_name, n_cust, rng, who
    )
    secs = time.perf_counter() - t0
    log.info(
        "policy replay at %s: %d flagged loans, %d contacts, %.0f s", snapshot, len(acts), n, secs
    )
    note = (
        f"{len(acts):,} flagged loans at {snapshot} (tiers {', '.join(cfg.explain.flagged_tiers)} "
        f"by the study's out-of-fold PD), {n:,} contacts (the next-best actions in the monthly "
        f"budget of {ecfg.monthly_contact_budget:,}{_scaled(budget, budget_share)}); 12 months "
        "replayed by the simulator, "
        f"{secs:.0f} s"
    )
    mix = chosen["next_best_action"].astype(str).value_counts()
    note += "; recommended levers: " + (
        ", ".join(f"{k} {v:,}" for k, v in mix.items()) if len(mix) else "none"
    )
    return PolicyReplay(
        pd.DataFrame(out, columns=POLICY_COLUMNS),
        qini,
        curves,
        snapshot,
        secs,
        note,
        {str(k): int(v) for k, v in mix.items()},
    )


def _flagged(rows: pd.DataFrame, snapshot: dt.date, tiers: tuple[str, ...]) -> pd.DataFrame:
    at = pd.to_datetime(rows["snapshot_date"]) == pd.Timestamp(snapshot)
    r = rows.loc[at, ["loan_id", "baseline_pd", "tier"]].drop_duplicates("loan_id")
    return r.loc[r["tier"].astype(str).isin(tiers)].reset_index(drop=True)


def _features_at(
    cfg: Config, tables: dict[str, pd.DataFrame], snapshot: dt.date, loans: pd.Series
) -> pd.DataFrame:
    """The flagged loans' features at the snapshot: what scoring would recommend from."""
    matrix, _ = build_features_from_frames(tables, cfg, snapshots=[snapshot])
    at = pd.to_datetime(matrix["snapshot_date"]) == pd.Timestamp(snapshot)
    m = matrix.loc[at & matrix["loan_id"].isin(set(loans))].drop_duplicates("loan_id")
    return m.reset_index(drop=True)


def _masks(customers: np.ndarray, levers: np.ndarray, n: int) -> dict[str, np.ndarray]:
    """lever -> boolean mask over the book's customers (who is contacted with it)."""
    masks: dict[str, np.ndarray] = {}
    for c, lever in zip(customers, levers, strict=True):
        masks.setdefault(str(lever), np.zeros(n, dtype=bool))[c] = True
    return masks


def _trial(
    gen: GenerateConfig,
    seed: int,
    window_months: int,
    months: tuple[int, int],
    snapshot: dt.date,
    feats: pd.DataFrame,
    acts: pd.DataFrame,
    model: ActionModel,
    sim_name: dict[str, str],
    n_cust: int,
    rng: np.random.Generator,
    who: np.ndarray | None = None,
) -> tuple[pd.DataFrame, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """A simulated randomised trial on the flagged customers and each lever's Qini curve
    (`who`: the customers to simulate, None = the whole book)."""
    from sklift.metrics import qini_auc_score, qini_curve, uplift_auc_score

    levers = [c for c in model.levers if c["lever"] in sim_name]
    if not levers:
        return pd.DataFrame(columns=QINI_COLUMNS), {}
    customers = np.unique(acts["customer"].to_numpy())
    cust_arm = rng.integers(0, len(levers) + 1, len(customers))  # 0 = control, k = levers[k-1]
    arm = cust_arm[np.searchsorted(customers, acts["customer"].to_numpy())]
    masks = {}
    for k, c in enumerate(levers, start=1):
        masks[sim_name[c["lever"]]] = np.zeros(n_cust, dtype=bool)
        masks[sim_name[c["lever"]]][customers[cust_arm == k]] = True
    res = lever_pd(gen, seed, window_months, masks, months, snapshot, customers=who)
    res = res.set_index("loan_id")
    p = res.loc[acts["loan_id"], "pd_given_path"].to_numpy()
    good = (rng.random(len(p)) >= p).astype(int)  # 1 = did not default: uplift is good
    rows, curves = [], {}
    for k, c in enumerate(levers, start=1):
        keep = (arm == 0) | (arm == k)
        t = (arm[keep] == k).astype(int)
        if t.sum() == 0 or t.sum() == len(t) or len(np.unique(good[keep])) < 2:
            continue
        theta, _ = lever_effect(feats.loc[keep].reset_index(drop=True), c)
        score = -theta  # the estimated PD reduction: highest first
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # sklearn's stable_cumsum in sklift
            x, y = qini_curve(good[keep], score, t)
            rows.append(
                {
                    "lever": c["lever"],
                    "n_treated": int(t.sum()),
                    "n_control": int(len(t) - t.sum()),
                    "qini_auc": float(qini_auc_score(good[keep], score, t)),
                    "uplift_auc": float(uplift_auc_score(good[keep], score, t)),
                }
            )
        curves[c["lever"]] = (np.asarray(x, dtype=float), np.asarray(y, dtype=float))
    return pd.DataFrame(rows, columns=QINI_COLUMNS), curves
