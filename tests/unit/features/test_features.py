"""The features stage: DuckDB engine vs the pandas reference, point-in-time correctness,
labels, edge cases, the snapshot calendar, dtypes and the stage's files."""

from __future__ import annotations

import datetime as dt
import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from minibook import BookBuilder, random_book, write_book
from reference_features import reference_features

from pipeline.config import Config, DataConfig, FeaturesConfig
from pipeline.core import catalogue
from pipeline.core.contract import SENSITIVE
from pipeline.core.errors import DataError
from pipeline.core.metadata import load_metadata
from pipeline.features import (
    build_features,
    build_features_from_frames,
    data_end_date,
    default_snapshots,
    feature_names,
    feature_specs,
    snapshot_dates,
)
from pipeline.stages.features import run

D = dt.date
CFG = Config(features=FeaturesConfig(snapshot_freq="monthly", duckdb_memory_limit="1GB"))
MONTHLY = snapshot_dates(D(2021, 2, 1), D(2025, 1, 1), "monthly")
REL_REQUIRED = [
    "tenure_months",
    "contacts_per_month_3m",
    "contacts_per_month_6m",
    "contacts_per_month_12m",
    "contacts_phone_per_month_3m",
    "contacts_phone_per_month_12m",
    "reminders_3m",
    "reminders_paid_on_time_share_12m",
    "checkins_3m",
    "checkins_12m",
    "lender_contacts_per_month_3m",
    "complaints_12m",
    "complaints_resolved_6m",
    "complaints_unresolved_6m",
    "complaint_resolution_rate_12m",
    "complaint_resolution_days_median_12m",
    "satisfaction_last",
    "satisfaction_mean_12m",
    "satisfaction_trend_12m",
    "nps_last",
    "nps_mean_12m",
    "fin_edu_sessions_total",
    "hardship_requests_12m",
    "marketing_contacts_12m",
    "products_held",
    "channel_diversity_12m",
    "activity_change_3m_vs_9m",
    "days_since_last_contact",
    "answered_share_12m",
]


@pytest.fixture(scope="module")
def book() -> dict[str, pd.DataFrame]:
    return random_book(seed=0).tables()


@pytest.fixture(scope="module")
def built(book) -> pd.DataFrame:
    return build_features_from_frames(book, CFG, MONTHLY)[0]


def assert_same(engine: pd.DataFrame, reference: pd.DataFrame) -> None:
    """Equal rows, columns and values; floats to 1e-9, categoricals compared as text."""
    assert list(engine.columns) == list(reference.columns)
    keys = ["snapshot_date", "loan_id"]
    e = engine.reset_index(drop=True)
    r = reference.sort_values(keys, ignore_index=True)
    pd.testing.assert_frame_equal(e[keys], r[keys], check_dtype=False)
    for col in e.columns:
        if col in keys:
            continue
        a, b = e[col], r[col]
        if isinstance(a.dtype, pd.CategoricalDtype):
            assert (a.astype(str).to_numpy() == b.astype(str).to_numpy()).all(), col
        elif col == "label":
            assert (a.astype("Float64").fillna(-1) == b.astype("Float64").fillna(-1)).all()
        else:
            x, y = a.to_numpy(dtype=float), b.to_numpy(dtype=float)
            ok = (np.isnan(x) & np.isnan(y)) | np.isclose(x, y, rtol=1e-9, atol=1e-9)
            bad = np.flatnonzero(~ok)
            assert not len(bad), (
                f"{col}: rows {e.loc[bad[:3], keys].to_dict('records')} "
                f"engine {x[bad[:3]]} reference {y[bad[:3]]}"
            )


# -- engine vs reference -------------------------------------------------------------------


def test_engine_matches_reference_monthly(book, built):
    ref = reference_features(book, MONTHLY)
    assert_same(built, ref)
    # the book exercises what the definitions distinguish
    assert (ref["label"] == 1).any() and (ref["label"] == 0).any() and ref["label"].isna().any()
    for col in (
        "partial_payments_12m",
        "dpd_now",
        "complaints_unresolved_6m",
        "complaints_resolved_6m",
        "reminders_3m",
        "hardship_requests_12m",
    ):
        assert (ref[col] > 0).any(), col
    for col in (
        "months_since_last_delinquency",
        "reminders_paid_on_time_share_12m",
        "satisfaction_trend_12m",
        "complaint_resolution_days_median_12m",
        "answered_share_12m",
        "debt_to_income",
        "activity_change_3m_vs_9m",
    ):
        assert ref[col].notna().any() and ref[col].isna().any(), col
    assert (ref["products_held"] > 1).any()


def test_engine_matches_reference_without_optional_columns():
    tables = random_book(seed=3, n_customers=30, n_loans=45).tables(optional_columns=False)
    snaps = snapshot_dates(D(2021, 6, 1), D(2025, 1, 1), "quarterly")
    engine, _ = build_features_from_frames(tables, CFG, snaps)
    assert_same(engine, reference_features(tables, snaps))
    assert engine["answered_share_12m"].isna().all()
    assert len(engine) > 100


def test_parquet_build_is_deterministic_and_equals_frames(book, built, tmp_path):
    interim = write_book(book, tmp_path / "interim")
    first, _ = build_features(interim, CFG, MONTHLY)
    second, _ = build_features(interim, CFG, MONTHLY)
    pd.testing.assert_frame_equal(first, second, check_exact=True)
    pd.testing.assert_frame_equal(first, built, check_exact=True)
    one_thread = Config(
        features=FeaturesConfig(
            snapshot_freq="monthly", duckdb_threads=1, duckdb_memory_limit="1GB"
        )
    )
    pd.testing.assert_frame_equal(
        build_features(interim, one_thread, MONTHLY)[0], first, check_exact=True
    )


# -- point in time -----------------------------------------------------------------------

_BASE: dict[dt.date, pd.DataFrame] = {}


def _future_mutation(
    book: dict[str, pd.DataFrame], s: pd.Timestamp, rng: np.random.Generator
) -> dict[str, pd.DataFrame]:
    """Add, delete and alter repayment and CRM events dated on or after s; add a loan
    originated on or after s."""
    rep = book["repayments"].copy()
    after_pay = rep["paid_date"].notna() & (rep["paid_date"] >= s)
    idx = rep.index[after_pay]
    new_paid = s + pd.to_timedelta(rng.integers(0, 200, len(idx)), unit="D")
    rep.loc[idx, "paid_date"] = np.where(rng.random(len(idx)) < 0.3, pd.NaT, new_paid)
    rep.loc[idx, "amount_paid"] = rng.uniform(0, 500, len(idx)).round(2)
    unpaid_then = rep["paid_date"].isna() | (rep["paid_date"] >= s)
    future = rep.index[(rep["due_date"] >= s) & unpaid_then]
    rep = rep.drop(future[rng.random(len(future)) < 0.5])
    unpaid_due = rep.index[rep["paid_date"].isna() & (rep["due_date"] < s)]
    pay_now = unpaid_due[rng.random(len(unpaid_due)) < 0.5]
    rep.loc[pay_now, "paid_date"] = s + pd.to_timedelta(rng.integers(0, 40, len(pay_now)), "D")
    rep.loc[pay_now, "amount_paid"] = rep.loc[pay_now, "amount_due"]

    crm = book["crm_interactions"].copy()
    # complaints made before s but resolved on or after s: the resolution is a future event
    resolved_at = crm["timestamp"] + pd.to_timedelta(crm["resolution_days"].fillna(0), unit="D")
    pending = crm.index[
        (crm["timestamp"] < s) & crm["resolved"].fillna(False).astype(bool) & (resolved_at >= s)
    ]
    crm.loc[pending, "resolution_days"] += rng.integers(0, 30, len(pending))
    crm.loc[pending[rng.random(len(pending)) < 0.5], "resolved"] = False
    later = crm.index[crm["timestamp"] >= s]
    crm = crm.drop(later[rng.random(len(later)) < 0.3])
    later = crm.index[crm["timestamp"] >= s]
    crm.loc[later, "type"] = rng.choice(
        ["complaint", "financial_education", "marketing"], len(later)
    )
    crm.loc[later, "satisfaction"] = rng.integers(1, 6, len(later))
    n_new = 20
    new = crm.sample(n_new, random_state=int(rng.integers(0, 2**31)), replace=True).copy()
    new["interaction_id"] = crm["interaction_id"].max() + 1 + np.arange(n_new)
    new["timestamp"] = s + pd.to_timedelta(rng.integers(0, 400 * 86400, n_new), unit="s")
    new.iloc[0, new.columns.get_loc("timestamp")] = s  # exactly midnight on the snapshot
    new["type"] = rng.choice(
        ["payment_reminder", "proactive_checkin", "complaint", "financial_education"], n_new
    )
    crm = pd.concat([crm, new], ignore_index=True)

    loans = book["loans"].copy()
    extra = loans.iloc[[0]].copy()
    extra["loan_id"] = loans["loan_id"].max() + 1
    extra["origination_date"] = s + pd.Timedelta(days=int(rng.integers(0, 60)))
    loans = pd.concat([loans, extra], ignore_index=True)
    return {**book, "repayments": rep, "crm_interactions": crm, "loans": loans}


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(i=st.integers(min_value=3, max_value=len(MONTHLY) - 1), seed=st.integers(0, 2**31))
def test_future_events_do_not_change_features(book, built, i, seed):
    s = MONTHLY[i]
    base = built[built["snapshot_date"] == pd.Timestamp(s)].reset_index(drop=True)
    changed = _future_mutation(book, pd.Timestamp(s), np.random.default_rng(seed))
    after, _ = build_features_from_frames(changed, CFG, [s])
    assert len(base) > 0
    pd.testing.assert_frame_equal(
        base.drop(columns="label"), after.drop(columns="label"), check_exact=True
    )


def test_one_as_of_date_equals_its_rows_of_the_full_build(book, built):
    for s in (D(2023, 6, 1), D(2024, 6, 1)):
        one, _ = build_features_from_frames(book, CFG, [s])
        full = built[built["snapshot_date"] == pd.Timestamp(s)].reset_index(drop=True)
        pd.testing.assert_frame_equal(one, full, check_exact=True)
    late, _ = build_features_from_frames(book, CFG, [D(2024, 6, 1)])
    assert late["label"].isna().all()  # 2024-06-01 + 12 months is after the data end


def _with_scheduled_instalments(book: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The book as a lender's extract lists it: every loan's instalments not yet due at the
    extraction date appear too, unpaid, with amount_paid left empty."""
    rep, loans = book["repayments"], book["loans"].set_index("loan_id")
    listed = rep.groupby("loan_id")["installment_no"].max()
    rows = []
    for loan_id, last in listed.items():
        loan = loans.loc[loan_id]
        due_amount = rep.loc[rep["loan_id"] == loan_id, "amount_due"].iloc[-1]
        for k in range(int(last) + 1, int(loan["term_months"]) + 1):
            due = loan["origination_date"] + pd.DateOffset(months=k)
            rows.append((loan_id, k, due, due_amount, pd.NaT, np.nan))
    scheduled = pd.DataFrame(rows, columns=list(rep.columns)).astype(rep.dtypes.to_dict())
    assert len(scheduled) > 20 and (scheduled["due_date"] >= pd.Timestamp(2025, 1, 1)).all()
    return {**book, "repayments": pd.concat([rep, scheduled], ignore_index=True)}


def test_scheduled_instalments_change_neither_the_data_end_nor_any_feature_or_label(book, built):
    """Instalments due after the extract, unpaid and with amount_paid empty, are valid, do not
    date the book (its end stays the day after the last payment or contact), and are not yet due
    at any snapshot: the default build (snapshots, features, labels) is the same."""
    scheduled = _with_scheduled_instalments(book)
    assert data_end_date(scheduled) == data_end_date(book) == D(2025, 1, 1)
    plain, _ = build_features_from_frames(book, CFG)
    with_schedule, _ = build_features_from_frames(scheduled, CFG)
    assert plain["snapshot_date"].max() == pd.Timestamp(2025, 1, 1)
    pd.testing.assert_frame_equal(plain, with_schedule, check_exact=True)


def test_scoring_extract_may_list_instalments_due_after_its_as_of_date(book):
    """`score --as-of` refuses events after the as-of date; an instalment merely due after it
    is a schedule, not an event. A payment after it still is."""
    from pipeline.features.snapshots import check_no_events_after

    scheduled = _with_scheduled_instalments(book)
    check_no_events_after(scheduled, D(2024, 12, 31))
    rep = scheduled["repayments"].copy()
    rep.loc[rep.index[-1], "paid_date"] = pd.Timestamp(2025, 3, 1)
    with pytest.raises(DataError, match="repayments.paid_date: 1 of"):
        check_no_events_after({**scheduled, "repayments": rep}, D(2024, 12, 31))


# -- hand-built edge cases ----------------------------------------------------------------


@pytest.fixture(scope="module")
def edge() -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    b = BookBuilder(end=D(2026, 1, 1))
    for c in range(1, 8):
        b.customer(c)
    # 1: on time; CRM events one second before and exactly at midnight of 2023-06-01
    b.loan(10, 1, D(2023, 1, 10), term=12)
    b.event(1, "2023-05-31 23:59:59", "service_request", satisfaction=None)
    b.event(
        1, "2023-06-01 00:00:00", "complaint", resolved=True, resolution_days=2.0, satisfaction=4
    )
    # 2: no CRM events at all; a loan with no instalment due yet at 2023-06-01
    b.loan(20, 2, D(2023, 5, 20), term=12, principal=3000.0)
    # 3: instalment due on the leap day, paid 5 days late; a financial-education session then
    b.loan(30, 3, D(2023, 11, 29), term=24, payments=[0, 0, 5])
    b.event(3, "2024-02-29 10:00:00", "financial_education", channel="branch")
    # 4: stops paying from instalment 30 (due 2023-07-15): default date 2023-10-13
    b.loan(40, 4, D(2021, 1, 15), term=48, payments=[0] * 29 + [None] * 19)
    # 5: instalment 3 paid exactly 90 days late (cured in time) / 6: 91 days late (default)
    b.loan(50, 5, D(2022, 1, 10), term=36, payments=[0, 0, 90])
    b.loan(60, 6, D(2022, 1, 10), term=36, payments=[0, 0, 91])
    # 7: a 6-month loan paid in full early: closed after its last payment
    b.loan(70, 7, D(2022, 1, 10), term=6, payments=[0, 0, 0, -60, -91, -121])
    tables = b.tables()
    snaps = snapshot_dates(D(2021, 2, 1), D(2026, 1, 1), "monthly")
    frame, _ = build_features_from_frames(tables, CFG, snaps)
    return tables, frame


def _row(frame: pd.DataFrame, loan: int, s: dt.date) -> pd.Series:
    rows = frame[(frame["loan_id"] == loan) & (frame["snapshot_date"] == pd.Timestamp(s))]
    assert len(rows) == 1, f"loan {loan} at {s}: {len(rows)} rows"
    return rows.iloc[0]


def test_edge_book_matches_reference(edge):
    tables, frame = edge
    # quarter starts and the dates the edge tests below look at
    dates = {s.date() for s in frame["snapshot_date"] if s.month in (1, 4, 7, 10)}
    dates |= {D(2022, 7, 1), D(2023, 6, 1), D(2024, 3, 1), D(2025, 2, 1), D(2025, 3, 1)}
    rows = frame[frame["snapshot_date"].dt.date.isin(dates)]
    assert_same(rows, reference_features(tables, sorted(dates)))


def test_event_at_midnight_of_the_snapshot_is_not_seen(edge):
    _, f = edge
    r = _row(f, 10, D(2023, 6, 1))
    assert r["contacts_per_month_3m"] == pytest.approx(1 / 3)  # only 05-31 23:59:59
    assert r["days_since_last_contact"] == 1
    assert r["complaints_3m"] == 0 and math.isnan(r["satisfaction_last"])
    r = _row(f, 10, D(2023, 7, 1))
    assert r["contacts_per_month_3m"] == pytest.approx(2 / 3)
    assert r["complaints_3m"] == 1 and r["complaints_resolved_6m"] == 1
    assert r["satisfaction_last"] == 4 and r["satisfaction_mean_12m"] == 4


def test_customer_without_events_and_loan_without_due_instalment(edge):
    _, f = edge
    r = _row(f, 20, D(2023, 6, 1))
    for col in (
        "contacts_per_month_12m",
        "reminders_3m",
        "fin_edu_sessions_total",
        "channel_diversity_12m",
        "complaints_12m",
        "dpd_now",
        "dpd_max_3m",  # nothing due yet: no days past due (not missing)
        "dpd_mean_12m",
        "dpd_max_ever",
        "late_instalments_3m",
        "instalments_due_so_far",
        "partial_payments_12m",
    ):
        assert r[col] == 0, col
    for col in (
        "satisfaction_last",
        "satisfaction_mean_12m",
        "nps_last",
        "days_since_last_contact",
        "activity_change_3m_vs_9m",
        "answered_share_12m",
        "paid_to_due_ratio_12m",
        "months_since_last_delinquency",
        "complaint_resolution_rate_12m",
        "reminders_paid_on_time_share_12m",
    ):
        assert math.isnan(r[col]), col
    assert r["remaining_term_months"] == 12 and r["outstanding_balance"] == 3000.0
    assert r["balance_share_of_principal"] == 1.0 and r["products_held"] == 1


def test_leap_day(edge):
    _, f = edge
    r = _row(f, 30, D(2024, 3, 1))
    assert r["dpd_now"] == 1 and r["instalments_due_so_far"] == 3  # due 02-29, unpaid at 03-01
    assert r["days_since_last_contact"] == 1 and r["fin_edu_sessions_total"] == 1
    r = _row(f, 30, D(2024, 4, 1))
    assert r["dpd_now"] == 0 and r["dpd_max_3m"] == 5  # paid 03-05
    assert r["months_since_last_delinquency"] == pytest.approx(27 / 30.4375)
    assert _row(f, 30, D(2025, 2, 1))["contacts_per_month_12m"] == pytest.approx(1 / 12)
    r = _row(f, 30, D(2025, 3, 1))  # the window [2024-03-01, 2025-03-01) leaves the leap day out
    assert r["contacts_per_month_12m"] == 0 and r["fin_edu_sessions_total"] == 1


def test_label_of_a_loan_defaulting_on_a_known_date(edge):
    tables, f = edge
    default = D(2023, 7, 15) + dt.timedelta(days=90)
    assert default == D(2023, 10, 13)
    rows = f[f["loan_id"] == 40].set_index("snapshot_date")["label"]
    dates = [d.date() for d in rows.index]
    assert dates == snapshot_dates(D(2021, 2, 1), default, "monthly")  # gone once defaulted
    for s, label in zip(dates, rows, strict=True):
        covers = s <= default < (pd.Timestamp(s) + pd.DateOffset(months=12)).date()
        assert label == int(covers), s
    assert rows.sum() == 12  # 2022-11-01 .. 2023-10-01
    end = data_end_date(tables)
    for loan in (50, 70):
        lab = f[f["loan_id"] == loan].set_index("snapshot_date")["label"]
        for s, label in lab.items():
            complete = (s + pd.DateOffset(months=12)).date() <= end
            assert (label == 0) if complete else pd.isna(label), (loan, s)
    assert f.loc[f["loan_id"] == 50, "label"].isna().any()


def test_payment_on_the_90th_day_cures_and_on_the_91st_defaults(edge):
    _, f = edge
    due3 = D(2022, 4, 10)
    cured = f[f["loan_id"] == 50]
    assert cured["snapshot_date"].max() > pd.Timestamp(2024, 1, 1)  # still a row later on
    assert (cured["label"].dropna() == 0).all()
    defaulted = f[f["loan_id"] == 60]
    last = due3 + dt.timedelta(days=90)
    assert defaulted["snapshot_date"].max() == pd.Timestamp(last.replace(day=1))
    assert _row(f, 60, D(2022, 7, 1))["label"] == 1
    assert _row(f, 50, D(2022, 7, 1))["dpd_now"] == (D(2022, 7, 1) - due3).days


def test_closed_loan_leaves_the_rows(edge):
    _, f = edge
    s = f.loc[f["loan_id"] == 70, "snapshot_date"]
    # all six paid by 2022-04-10 (the last three early): rows 2022-02..2022-04 only
    assert list(s.dt.date) == [D(2022, 2, 1), D(2022, 3, 1), D(2022, 4, 1)]
    assert _row(f, 70, D(2022, 4, 1))["outstanding_balance"] > 0


# -- snapshots, data end, defaults ----------------------------------------------------------


def test_snapshot_dates():
    assert snapshot_dates(D(2021, 1, 15), D(2021, 10, 1), "quarterly") == [
        D(2021, 4, 1),
        D(2021, 7, 1),
        D(2021, 10, 1),
    ]
    assert snapshot_dates(D(2021, 1, 1), D(2021, 3, 31), "monthly") == [
        D(2021, 1, 1),
        D(2021, 2, 1),
        D(2021, 3, 1),
    ]
    assert snapshot_dates(D(2021, 11, 2), D(2022, 1, 1), "quarterly") == [D(2022, 1, 1)]
    assert snapshot_dates(D(2021, 5, 2), D(2021, 5, 30), "monthly") == []
    with pytest.raises(ValueError, match="freq"):
        snapshot_dates(D(2021, 1, 1), D(2022, 1, 1), "weekly")


def test_data_end_date(book, tmp_path):
    rep, crm = book["repayments"], book["crm_interactions"]
    # the last observed event: a payment or a contact (due dates are schedules, not events)
    last = max(rep["paid_date"].max(), crm["timestamp"].max().normalize())
    expected = (last + pd.Timedelta(days=1)).date()
    assert data_end_date(book) == expected
    assert data_end_date(write_book(book, tmp_path / "i")) == expected


def test_default_snapshots(book):
    first = book["loans"]["origination_date"].min().date()
    end = data_end_date(book)
    dates = default_snapshots(first, end, FeaturesConfig())
    start = (pd.Timestamp(first) + pd.DateOffset(months=12)).date()
    assert dates[0] >= start and dates[0] < (pd.Timestamp(start) + pd.DateOffset(months=3)).date()
    assert all(d.day == 1 and d.month in (1, 4, 7, 10) for d in dates)
    assert dates[-1] <= end < (pd.Timestamp(dates[-1]) + pd.DateOffset(months=3)).date()
    fixed = FeaturesConfig(first_snapshot=D(2022, 2, 1), last_snapshot=D(2022, 8, 1))
    assert default_snapshots(first, end, fixed) == [D(2022, 4, 1), D(2022, 7, 1)]
    with pytest.raises(DataError, match="no quarterly snapshot"):
        default_snapshots(first, end, FeaturesConfig(first_snapshot=D(2030, 1, 1)))


# -- output shape, dtypes, specs, the stage -------------------------------------------------


def test_matrix_layout_and_dtypes(book, built):
    assert list(built.columns[:4]) == ["loan_id", "customer_id", "snapshot_date", "label"]
    assert list(built.columns[4:]) == feature_names()
    assert not built.duplicated(["loan_id", "snapshot_date"]).any()
    order = built.sort_values(["snapshot_date", "loan_id"]).index
    assert (order == built.index).all()
    assert str(built["label"].dtype) == "Int8"
    assert not set(SENSITIVE) & set(built.columns) and "notes" not in built.columns
    sources = {
        "product": book["loans"]["product"],
        "loan_channel": book["loans"]["channel"],
        "employment_type": book["customers"]["employment_type"],
        "region": book["customers"]["region"],
    }
    for spec in feature_specs():
        col = built[spec.name]
        if spec.kind == "categorical":
            assert isinstance(col.dtype, pd.CategoricalDtype) and not col.cat.ordered
            assert list(col.cat.categories) == sorted(sources[spec.name].dropna().unique())
        else:
            assert col.dtype == np.float64, spec.name


def test_feature_specs():
    specs = feature_specs()
    names = [s.name for s in specs]
    assert len(names) == len(set(names))
    assert set(REL_REQUIRED) <= set(names)
    assert {
        f"contacts_{ch}_per_month_{w}m"
        for ch in ("phone", "app", "branch", "email", "chat", "sms")
        for w in (3, 12)
    } <= set(names)
    by = {s.name: s for s in specs}
    for n in REL_REQUIRED:
        assert by[n].family == "relationship"
    lowers = [
        "tenure_months",
        "satisfaction_last",
        "nps_mean_12m",
        "complaints_resolved_6m",
        "reminders_3m",
        "checkins_3m",
        "fin_edu_sessions_total",
        "activity_change_3m_vs_9m",
        "answered_share_12m",
        "products_held",
        "channel_diversity_12m",
    ]
    raises = ["complaints_unresolved_6m", "hardship_requests_12m", "days_since_last_contact"]
    unknown = [
        "contacts_per_month_3m",
        "contacts_sms_per_month_12m",
        "marketing_contacts_12m",
        "lender_contacts_per_month_3m",
    ]
    assert all(by[n].expected == "lowers" for n in lowers)
    assert all(by[n].expected == "raises" for n in raises)
    assert all(by[n].expected == "unknown" for n in unknown)
    assert {s.name for s in specs if s.kind == "categorical"} == {
        "product",
        "employment_type",
        "region",
        "loan_channel",
    }
    for s in specs:
        value = "auto" if s.kind == "categorical" else 3.0
        text = s.readable(value)
        assert text and "{" not in text and s.label, s.name
    assert by["late_instalments_6m"].readable(2.0) == "2 late instalments in the last 6 months"


def test_run_writes_matrix_and_metadata(book, tmp_path):
    interim = write_book(book, tmp_path / "interim")
    cfg = Config(
        data=DataConfig(interim_dir=interim, features_dir=tmp_path / "features"),
        features=FeaturesConfig(duckdb_memory_limit="1GB", duckdb_threads=1),
    )
    path = run(cfg)
    assert path == tmp_path / "features" / catalogue.FEATURES
    frame = pd.read_parquet(path)
    expected, _ = build_features(interim, cfg)
    pd.testing.assert_frame_equal(frame, expected, check_exact=True)
    assert frame["snapshot_date"].dt.month.isin([1, 4, 7, 10]).all()
    specs = load_metadata(tmp_path / "features" / catalogue.FEATURE_METADATA)
    assert specs == feature_specs()
    meta = tmp_path / "features" / catalogue.FEATURE_METADATA
    assert len(json.loads(meta.read_text())) == len(specs)
    assert not list((tmp_path / "features").glob("*.tmp"))


def test_missing_table_or_column_is_a_data_error(book, tmp_path):
    interim = write_book(book, tmp_path / "interim")
    (interim / "crm_interactions.parquet").unlink()
    with pytest.raises(DataError, match="crm_interactions"):
        build_features(interim, CFG, [D(2023, 1, 1)])
    broken = {**book, "loans": book["loans"].drop(columns="principal")}
    with pytest.raises(DataError, match="principal"):
        build_features_from_frames(broken, CFG, [D(2023, 1, 1)])


def test_one_thread_builds_the_same_matrix_as_two(book, built):
    # two threads: the families side by side
    assert CFG.features.duckdb_threads == 2
    one = CFG.model_copy(update={"features": CFG.features.model_copy(update={"duckdb_threads": 1})})
    pd.testing.assert_frame_equal(build_features_from_frames(book, one, MONTHLY)[0], built)


def test_a_customer_listed_twice_is_a_data_error_not_repeated_rows(book):
    customers = book["customers"]
    twice = {**book, "customers": pd.concat([customers, customers.iloc[:1]], ignore_index=True)}
    with pytest.raises(DataError, match="customers holds a key more than once"):
        build_features_from_frames(twice, CFG, [D(2023, 1, 1)])


def test_snapshot_before_any_loan_gives_an_empty_typed_matrix(book, built):
    empty, _ = build_features_from_frames(book, CFG, [D(2020, 1, 1)])
    assert empty.empty and list(empty.columns) == list(built.columns)
    assert (empty.dtypes == built.dtypes).all()
    assert list(empty["product"].cat.categories) == list(built["product"].cat.categories)


def test_a_tight_memory_limit_gives_the_same_matrix_and_too_tight_a_clear_error(tmp_path):
    from pipeline.config import GenerateConfig
    from pipeline.core.errors import ConfigError
    from pipeline.simulator.simulate import simulate

    interim = write_book(simulate(GenerateConfig(size="3000"), seed=1).tables(), tmp_path / "i")

    def build(limit: str) -> pd.DataFrame:
        features = FeaturesConfig(duckdb_memory_limit=limit, duckdb_threads=1)
        return build_features(interim, Config(features=features))[0]

    roomy = build("1GB")
    # 80MB is near the least this build can run in (60MB fails since loans originate over the
    # whole horizon, a larger book): what it cannot hold, it spills.
    pd.testing.assert_frame_equal(build("80MB"), roomy, check_exact=True)
    with pytest.raises(ConfigError, match="features.duckdb_memory_limit=10MB"):
        build("10MB")
