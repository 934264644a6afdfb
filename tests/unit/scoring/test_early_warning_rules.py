"""The early-warning list's rules and the scored file's stable schema (issue 15): tier moves
count when they land in a flagged tier or drop enough notches, loans already in default are
marked and left out of the list and of the PD figures, reasons_top_k=0 keeps the reason
columns, reason wording reads as English."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from tiny_model import make_book, own_output

from pipeline.config import Config, MlflowConfig, ScoringConfig
from pipeline.core.metadata import FeatureSpec
from pipeline.scoring.run import early_warning_path, run_score

TIERS = ["A", "B", "C", "D", "E"]


@pytest.fixture(scope="module")
def uri(logged):
    return logged[0].model_uri


def _cfg(logged, **scoring) -> Config:
    return Config(
        mlflow=MlflowConfig(tracking_uri=logged[2]),
        scoring=ScoringConfig(**scoring),
        output=own_output(logged),
    )


def _scored(tmp_path, logged, uri, book, name="first.parquet", **scoring):
    src = tmp_path / f"in-{name}"
    book.to_parquet(src, index=False)
    out = tmp_path / name
    summary = run_score(src, out, model_uri=uri, cfg=_cfg(logged, **scoring))
    return pd.read_parquet(out), pd.read_parquet(early_warning_path(out)), summary


@pytest.mark.parametrize("notches", [1, 2])
def test_tier_moves_flag_a_loan_by_notches_or_by_landing_in_a_flagged_tier(
    tmp_path, logged, uri, notches
):
    book = make_book(300, seed=51)
    scores, _, _ = _scored(tmp_path, logged, uri, book)
    rank = {t: i for i, t in enumerate(TIERS)}
    now = scores.set_index("loan_id")["tier"]
    # the previous tier of every loan: one notch better, or two, alternately
    drop = np.where(np.arange(len(now)) % 2 == 0, 1, 2)
    before = [TIERS[max(rank[t] - d, 0)] for t, d in zip(now, drop, strict=True)]
    prev = pd.DataFrame({"loan_id": now.index, "tier": before})
    prev_path = tmp_path / "prev.parquet"
    prev.to_parquet(prev_path, index=False)
    out = tmp_path / "second.parquet"
    cfg = _cfg(logged, early_warning_pd=0.999, early_warning_notches=notches)
    summary = run_score(
        tmp_path / "in-first.parquet", out, model_uri=uri, cfg=cfg, previous=prev_path
    )
    ew = pd.read_parquet(early_warning_path(out)).set_index("loan_id")
    moved = {lid: (b, t) for lid, b, t in zip(now.index, before, now, strict=True) if b != t}
    expected = {
        lid for lid, (b, t) in moved.items() if t in ("D", "E") or rank[t] - rank[b] >= notches
    }
    assert set(ew.index) == expected and summary.n_tier_worsened == len(expected)
    one_notch_low = {lid for lid, (b, t) in moved.items() if rank[t] - rank[b] == 1 and t < "D"}
    assert one_notch_low  # e.g. A->B
    assert (one_notch_low <= expected) == (notches == 1)
    assert all(ew.loc[lid, "tier_change"] == f"{b}->{t}" for lid, (b, t) in moved.items()
               if lid in expected)  # fmt: skip
    assert f"down {notches}+ tiers since {prev_path}" in str(summary)


def test_defaulted_loans_are_marked_and_left_out_of_the_list_and_the_pd_figures(
    tmp_path, logged, uri
):
    book = make_book(120, seed=52)
    book.loc[:9, "dpd_now"] = [90, 120, 200, 95, 91, 365, 150, 100, 90, 180]  # 90+: defaulted
    scores, ew, summary = _scored(tmp_path, logged, uri, book, early_warning_pd=0.01)
    defaulted = scores["status"] == "defaulted"
    assert defaulted.tolist() == [True] * 10 + [False] * 110
    assert set(scores.loc[~defaulted, "status"]) == {"performing"}
    assert (scores.loc[defaulted, "pd"] >= 0.01).all()  # they would be on the list by PD
    assert not set(ew["loan_id"]) & set(scores.loc[defaulted, "loan_id"])
    assert summary.n_defaulted == 10 and summary.n_loans == 120
    assert sum(summary.tiers.values()) == 110
    assert summary.expected_defaults == pytest.approx(scores.loc[~defaulted, "pd"].sum())
    assert "10 already in default" in str(summary)


def test_top_k_zero_keeps_the_reason_columns_empty(tmp_path, logged, uri):
    book = make_book(40, seed=53)
    full, _, _ = _scored(tmp_path, logged, uri, book, name="k3.parquet")
    none, ew, _ = _scored(
        tmp_path, logged, uri, book, name="k0.parquet", reasons_top_k=0, early_warning_pd=0.01
    )
    assert none.columns.tolist() == full.columns.tolist()
    assert (none["reason_1"] == "").all() and none["reason_1_pd_points"].isna().all()
    assert "reason_3" in ew.columns
    assert (full["reason_1"] != "").any()
    with_reason = full["reason_1"] != ""
    points = full.loc[with_reason, "reason_1_pd_points"]
    assert (points >= 0).all() and (points > 0).any()  # a reason raises PD (0.01-point steps)
    assert (points >= full.loc[with_reason, "reason_2_pd_points"].fillna(0)).all()


def test_reasons_never_say_missing_and_read_with_singular_counts(tmp_path, logged, uri):
    book = make_book(80, seed=54)
    book.loc[:, "tenure_months"] = np.nan
    scores, _, _ = _scored(tmp_path, logged, uri, book)
    reasons = pd.concat([scores[f"reason_{j}"] for j in (1, 2, 3)])
    assert not reasons.str.contains("missing").any()
    spec = FeatureSpec("h", "relationship", "Hardship requests", "raises",
                       label="{value:.0f} hardship requests in the last 3 months")  # fmt: skip
    assert spec.readable(1.0) == "1 hardship request in the last 3 months"
    assert spec.readable(2.0) == "2 hardship requests in the last 3 months"
    days = FeatureSpec("d", "repayment", "Days", "raises", label="paid up to {value:.0f} days late")
    assert days.readable(1) == "paid up to 1 day late" and days.readable(11).endswith(
        "11 days late"
    )


def test_the_summary_is_logged_as_one_short_line_for_the_caller_to_print(
    tmp_path, logged, uri, caplog
):
    with caplog.at_level("INFO", logger="pipeline.scoring.run"):
        _, _, summary = _scored(tmp_path, logged, uri, make_book(30, seed=55))
    lines = [r.getMessage() for r in caplog.records if r.name == "pipeline.scoring.run"]
    assert len(lines) == 1 and lines[0].startswith("score: 30 loans -> ")
    assert "tiers:" not in lines[0] and "tiers:" in str(summary)


def test_flagged_tiers_default_to_the_models_two_worst_and_unknown_names_are_refused(
    tmp_path, logged, uri
):
    from pipeline.core.errors import ConfigError
    from pipeline.scoring.core import load_scoring_model
    from pipeline.scoring.early_warning import EarlyWarning

    model = load_scoring_model(uri).model
    assert EarlyWarning(model, ScoringConfig(), None).tiers == ("D", "E")
    with pytest.raises(ConfigError, match="early_warning_tiers: Z are not tiers"):
        EarlyWarning(model, ScoringConfig(early_warning_tiers=("E", "Z")), None)
