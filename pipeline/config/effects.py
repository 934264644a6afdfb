"""The `effects` section: the relationship levers and the effect study's settings."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pipeline.core.contract import CRM_TYPES


class Lever(BaseModel):
    """One relationship lever: a binary treatment built from CRM events before the snapshot.

    kind: "contact" - treated if >= min_events events of `event_type` in the window;
        "resolution" - rows with >= min_events such events in the window; treated if all of them
        were resolved (complaint handling).
    simulator_lever: the lever's name in `pipeline.simulator.simulate.LEVERS` for the
        counterfactual truth (default: `name`); levers the simulator does not know get no true
        effect.
    feature: the model feature that measures the lever, whose SHAP association the report
        shows beside the effect (None: no such column).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    event_type: str
    window_months: int = Field(3, ge=1, le=24)
    min_events: int = Field(1, ge=1)
    kind: Literal["contact", "resolution"] = "contact"
    simulator_lever: str | None = None
    feature: str | None = None

    @field_validator("event_type")
    @classmethod
    def _known_type(cls, v: str) -> str:
        if v not in CRM_TYPES:
            raise ValueError(f"event_type must be one of {list(CRM_TYPES)}")
        return v

    @property
    def sim_name(self) -> str:
        return self.simulator_lever or self.name


DEFAULT_LEVERS = (
    # Risk-targeted contacts: the lender reacts to last month's arrears, so a 1-month window
    # (see the module docstring: longer windows are confounded by arrears inside the window).
    Lever(
        name="proactive_checkin",
        event_type="proactive_checkin",
        window_months=1,
        feature="checkins_3m",
    ),
    Lever(
        name="payment_reminder",
        event_type="payment_reminder",
        window_months=1,
        feature="reminders_3m",
    ),
    Lever(
        name="financial_education",
        event_type="financial_education",
        window_months=3,
        feature="fin_edu_sessions_total",
    ),
    Lever(
        name="complaint_resolution",
        event_type="complaint",
        window_months=3,
        kind="resolution",
        feature="complaint_resolution_rate_12m",
    ),
    Lever(
        name="marketing", event_type="marketing", window_months=3, feature="marketing_contacts_12m"
    ),
)


class EffectsConfig(BaseModel):
    """The relationship effect study (`loanrisk effects`, and `loanrisk run` when enabled).

    outcome_window_months: the label's performance window; None = the features section's.
    snapshot_freq: pooled snapshots; None = features.snapshot_freq (only labelled ones are used).
    propensity_bounds: rows whose out-of-fold propensity falls outside are trimmed.
    max_trimmed_share: overlap is flagged "poor" when more rows than this are trimmed.
    min_arm_size: a lever (or a tier) with fewer treated or control rows is not estimated.
    truth: "auto" adds the simulator's true effect when the raw data are the generated book
        (costs two counterfactual runs per lever and simulated snapshot); "off" never.
    truth_snapshots: how many of the study's snapshots the truth simulates (None = all).
    max_customers: study a random sample of this many whole customers (all their loans and
        snapshots; drawn from `seed`); None or at least the book's: every customer.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    # `loanrisk run` runs the study after explain (the report opens with it); off: on demand.
    enabled: bool = True
    levers: tuple[Lever, ...] = DEFAULT_LEVERS
    outcome_window_months: int | None = Field(None, ge=1, le=36)
    snapshot_freq: Literal["monthly", "quarterly"] | None = None
    propensity_bounds: tuple[float, float] = (0.02, 0.98)
    max_trimmed_share: float = Field(0.05, ge=0, le=1)
    min_arm_size: int = Field(50, ge=5)
    n_folds: int = Field(3, ge=2, le=10)
    seed: int = 42
    alpha: float = Field(0.05, gt=0, lt=0.5)
    # The random common cause refits the learner (as long as the estimate itself) and, with
    # tree nuisance models, has never moved an estimate by a tenth of its tolerance: opt in.
    refutations: tuple[Literal["placebo", "random_common_cause"], ...] = ("placebo",)
    # A refit with a noise column may move the estimate by at most this many standard errors.
    rcc_tolerance_se: float = Field(0.5, gt=0)
    # LightGBM nuisance models (propensity and outcome): small and regularised, one thread.
    # 50 rounds at 0.15 fit as well as 150 at 0.05 on the default book at a third of the time.
    n_estimators: int = Field(50, ge=10)
    learning_rate: float = Field(0.15, gt=0, le=1)
    num_leaves: int = Field(15, ge=2)
    min_child_samples: int = Field(200, ge=1)
    reg_lambda: float = Field(5.0, ge=0)
    # LightGBM threads of the nuisance models. Two give the very same study (scores, intervals
    # and CATE equal to the bit): 38 s against 56 s for `loanrisk effects` on the default book,
    # idle, but 3x slower than one with the 2 cores shared. configs/default.yaml sets 2 (the
    # study runs alone in `loanrisk run`); this default of 1 suits studies built beside others.
    n_jobs: int = Field(1, ge=1)
    # Effect modifiers of the heterogeneous effects (pre-window features): paying on time once
    # reminded (forgetting, not money), partial payments and debt burden (short of money), the
    # lender's contact rate (fatigue), satisfaction. Modifiers missing from the data are skipped.
    modifiers: tuple[str, ...] = (
        "reminders_paid_on_time_share_12m",
        "partial_payments_12m",
        "debt_to_income",
        "lender_contacts_per_month_3m",
        "satisfaction_last",
    )
    truth: Literal["auto", "off"] = "auto"
    # Simulated book: replay 12 months after the last snapshot for the flagged loans under the
    # next-best actions, the lender's targeting, random contacts and none (`effects.policy`):
    # five counterfactual simulations, about 10 s on the default book.
    policy_replay: bool = True
    # Next-best action at scoring (`pipeline.scoring.next_best_action`): loss given default,
    # and the contacts a month the early-warning list's ranking marks as in budget.
    next_best_action: bool = True
    lgd: float = Field(0.45, gt=0, le=1)
    monthly_contact_budget: int = Field(500, ge=0)
    # Snapshots simulated for the truth (evenly spaced; null = all): each costs two
    # counterfactual runs per lever, and the sample's error is measured and reported.
    truth_snapshots: int | None = Field(6, ge=2)
    # A big book does not need every customer for tight intervals: the study's rows, nuisance
    # models, conditional effects, truth and replay then cost in proportion to the sample.
    max_customers: int | None = Field(None, ge=100)

    @field_validator("propensity_bounds")
    @classmethod
    def _bounds(cls, v: tuple[float, float]) -> tuple[float, float]:
        lo, hi = v
        if not 0 <= lo < 0.5 < hi <= 1:
            raise ValueError("propensity_bounds must satisfy 0 <= low < 0.5 < high <= 1")
        return v

    @model_validator(mode="after")
    def _unique_names(self) -> EffectsConfig:
        names = [lv.name for lv in self.levers]
        if len(set(names)) != len(names):
            raise ValueError(f"lever names must be unique, got {names}")
        if not names:
            raise ValueError("at least one lever is needed")
        return self
