"""Ingest: reading the four tables, the data contract checks and their error messages."""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.config import Config, DataConfig
from pipeline.core.contract import KEYS, OPTIONAL, REQUIRED, SENSITIVE, TABLES
from pipeline.core.errors import DataError
from pipeline.sources.file_source import load_tables, read_table
from pipeline.sources.schemas import COLUMNS
from pipeline.sources.validation import validate_tables
from pipeline.stages import ingest

Book = dict[str, pd.DataFrame]


def make_book() -> Book:
    """A small valid book: 4 customers, 5 loans, 15 instalments, 6 CRM interactions."""
    customers = pd.DataFrame(
        {
            "customer_id": np.array([1, 2, 3, 4], dtype="int64"),
            "customer_since": pd.to_datetime(
                ["2015-03-01", "2018-07-15", "2020-01-02", "2019-11-30"]
            ),
            "birth_year": pd.array([1980, 1975, None, 1999], dtype="Int64"),
            "annual_income": [52_000.0, np.nan, 31_500.5, 78_250.0],
            "employment_type": pd.array(["salaried", "self_employed", "salaried", None], "str"),
            "region": pd.array(["north", "south", "east", "west"], dtype="str"),
        }
    )
    loans = pd.DataFrame(
        {
            "loan_id": np.array([10, 11, 12, 13, 14], dtype="int64"),
            "customer_id": np.array([1, 1, 2, 3, 4], dtype="int64"),
            "product": pd.array(["personal", "card", "personal", "auto", "personal"], "str"),
            "origination_date": pd.to_datetime(
                ["2021-01-15", "2021-06-01", "2021-03-10", "2022-02-01", "2021-09-20"]
            ),
            "principal": [10_000.0, 2_500.0, 5_000.0, 18_000.0, 7_500.0],
            "term_months": np.array([3, 3, 3, 3, 3], dtype="int64"),
            "interest_rate": [0.12, 0.19, 0.09, 0.065, 0.11],
            "channel": pd.array(["branch", "online", "broker", "online", "branch"], "str"),
        }
    )
    rows = []
    for loan_id, start, principal in zip(
        loans["loan_id"], loans["origination_date"], loans["principal"], strict=True
    ):
        for k in (1, 2, 3):
            due = start + pd.DateOffset(months=k)
            late = loan_id == 12 and k == 3  # one unpaid instalment
            rows.append(
                {
                    "loan_id": int(loan_id),
                    "installment_no": k,
                    "due_date": due,
                    "amount_due": round(principal / 3 * 1.01, 2),
                    "paid_date": pd.NaT if late else due - pd.Timedelta(days=k),
                    "amount_paid": 0.0 if late else round(principal / 3 * 1.01, 2),
                }
            )
    repayments = pd.DataFrame(rows).astype(
        {"loan_id": "int64", "installment_no": "int64", "due_date": "datetime64[us]"}
    )
    repayments["paid_date"] = repayments["paid_date"].astype("datetime64[us]")
    crm = pd.DataFrame(
        {
            "interaction_id": np.array([100, 101, 102, 103, 104, 105], dtype="int64"),
            "customer_id": np.array([1, 1, 2, 3, 4, 4], dtype="int64"),
            "timestamp": pd.to_datetime(
                [
                    "2021-02-01 09:30:00",
                    "2021-05-17 14:05:10",
                    "2021-04-02 11:00:00",
                    "2022-03-03 16:45:00",
                    "2021-10-01 08:00:00",
                    "2021-12-24 10:15:00",
                ]
            ),
            "channel": pd.array(["phone", "app", "email", "branch", "chat", "sms"], "str"),
            "type": pd.array(
                [
                    "complaint",
                    "payment_reminder",
                    "service_request",
                    "financial_education",
                    "hardship_request",
                    "marketing",
                ],
                "str",
            ),
            "resolved": pd.array([True, None, False, None, True, None], dtype="boolean"),
            "resolution_days": [3.0, np.nan, np.nan, np.nan, 12.5, np.nan],
            "satisfaction": pd.array([2, None, 4, 5, None, None], dtype="Int64"),
            "nps": pd.array([3, None, 8, 10, 0, None], dtype="Int64"),
        }
    )
    for frame in (customers, loans, crm):
        for column in frame.columns:
            if frame[column].dtype.kind == "M":
                frame[column] = frame[column].astype("datetime64[us]")
    return {
        "customers": customers,
        "loans": loans,
        "repayments": repayments,
        "crm_interactions": crm,
    }


def write_book(book: Book, folder: Path, fmt: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in book.items():
        if fmt == "csv":
            frame.to_csv(folder / f"{name}.csv", index=False)
        else:
            frame.to_parquet(folder / f"{name}.parquet", index=False)
    return folder


def data_error(book: Book) -> str:
    with pytest.raises(DataError) as info:
        validate_tables(book)
    return str(info.value)


def paragraph(message: str, prefix: str) -> str:
    """The paragraph of a DataError message that starts with `prefix` (e.g. 'loans.principal')."""
    found = [p for p in message.split("\n\n") if p.startswith(prefix)]
    assert found, f"no paragraph starting with {prefix!r} in:\n{message}"
    return found[0]


# --- valid data ------------------------------------------------------------------------------


def test_valid_book_passes_with_contract_types() -> None:
    book = make_book()
    out = validate_tables(book)
    assert list(out) == list(TABLES)
    for name in TABLES:
        assert list(out[name].columns) == list(REQUIRED[name])
        pd.testing.assert_frame_equal(out[name], book[name], check_dtype=False)
    assert out["customers"]["customer_id"].dtype == "int64"
    assert out["customers"]["birth_year"].dtype == "Int64"
    assert out["loans"]["term_months"].dtype == "int64"
    assert out["repayments"]["paid_date"].dtype == "datetime64[us]"
    assert out["repayments"]["paid_date"].isna().sum() == 1
    assert out["crm_interactions"]["resolved"].dtype == "boolean"
    assert out["crm_interactions"]["channel"].dtype == "str"


def test_text_ids_are_accepted_and_kept_as_text() -> None:
    book = make_book()
    for name, column in [
        ("customers", "customer_id"),
        ("loans", "customer_id"),
        ("crm_interactions", "customer_id"),
    ]:
        book[name][column] = "C" + book[name][column].astype(str)
    out = validate_tables(book)
    assert out["loans"]["customer_id"].dtype == "str"
    assert out["loans"]["customer_id"].iloc[0] == "C1"
    assert out["loans"]["loan_id"].dtype == "int64"


def test_csv_and_parquet_give_equal_frames(tmp_path: Path) -> None:
    book = make_book()
    from_csv = load_tables(write_book(book, tmp_path / "csv", "csv"))
    from_parquet = load_tables(write_book(book, tmp_path / "parquet", "parquet"))
    for name in TABLES:
        pd.testing.assert_frame_equal(from_csv[name], from_parquet[name])
    validated_csv = validate_tables(from_csv)
    validated_parquet = validate_tables(from_parquet)
    for name in TABLES:
        pd.testing.assert_frame_equal(validated_csv[name], validated_parquet[name])
        pd.testing.assert_frame_equal(validated_csv[name], book[name], check_dtype=False)


def test_csv_timezones_become_naive_utc(tmp_path: Path) -> None:
    book = make_book()
    crm = book["crm_interactions"].astype({"timestamp": "str"})
    crm.loc[0, "timestamp"] = "2021-02-01T11:30:00+02:00"
    crm.loc[1, "timestamp"] = "2021-05-17T14:05:10Z"
    path = tmp_path / "crm_interactions.csv"
    crm.to_csv(path, index=False)
    read = read_table(path, "crm_interactions")
    assert read["timestamp"].dtype == "datetime64[us]"
    assert read["timestamp"].iloc[0] == pd.Timestamp("2021-02-01 09:30:00")
    assert read["timestamp"].iloc[1] == pd.Timestamp("2021-05-17 14:05:10")


def test_parquet_timezone_aware_timestamps_become_naive_utc(tmp_path: Path) -> None:
    crm = make_book()["crm_interactions"]
    crm["timestamp"] = crm["timestamp"].dt.tz_localize("Europe/Berlin")
    crm.to_parquet(tmp_path / "crm.parquet")
    read = read_table(tmp_path / "crm.parquet", "crm_interactions")
    assert read["timestamp"].dt.tz is None
    assert read["timestamp"].iloc[0] == pd.Timestamp("2021-02-01 08:30:00")


def test_csv_booleans_and_blank_cells(tmp_path: Path) -> None:
    book = make_book()
    crm = book["crm_interactions"].astype({"resolved": "object"})
    crm["resolved"] = ["yes", "", "No", None, "TRUE", " "]
    write_book({**book, "crm_interactions": crm}, tmp_path, "csv")
    out = validate_tables(load_tables(tmp_path))
    resolved = out["crm_interactions"]["resolved"]
    assert resolved.dtype == "boolean"
    assert resolved.tolist() == [True, pd.NA, False, pd.NA, True, pd.NA]


def test_parquet_preferred_when_both_formats_exist(tmp_path: Path) -> None:
    book = make_book()
    write_book(book, tmp_path, "parquet")
    customers = book["customers"].copy()
    customers["region"] = "from-csv"
    customers.to_csv(tmp_path / "customers.csv", index=False)
    assert (load_tables(tmp_path)["customers"]["region"] != "from-csv").all()


def test_run_writes_validated_parquet(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    book = make_book()
    raw = write_book(book, tmp_path / "raw", "csv")
    cfg = Config(data=DataConfig(raw_dir=raw, interim_dir=tmp_path / "interim"))
    with caplog.at_level(logging.INFO, logger="pipeline.stages.ingest"):
        paths = ingest.run(cfg)
    assert set(paths) == set(TABLES)
    for name, path in paths.items():
        assert path == tmp_path / "interim" / f"{name}.parquet"
        written = pd.read_parquet(path)
        pd.testing.assert_frame_equal(written, book[name], check_dtype=False)
    assert "ingest repayments: 15 rows x 6 columns" in caplog.text
    assert not list((tmp_path / "interim").glob("*.tmp"))


def test_run_writes_nothing_when_data_is_bad(tmp_path: Path) -> None:
    book = make_book()
    book["loans"].loc[0, "principal"] = -1.0
    raw = write_book(book, tmp_path / "raw", "parquet")
    cfg = Config(data=DataConfig(raw_dir=raw, interim_dir=tmp_path / "interim"))
    with pytest.raises(DataError, match=r"loans\.principal"):
        ingest.run(cfg)
    assert not (tmp_path / "interim").exists()


def test_extra_column_dropped_with_warning(caplog: pytest.LogCaptureFixture) -> None:
    book = make_book()
    book["loans"]["internal_note"] = "x"
    with caplog.at_level(logging.WARNING, logger="pipeline.sources.validation"):
        out = validate_tables(book)
    assert "internal_note" not in out["loans"].columns
    assert re.search(
        r"loans: dropping 1 column not in the data contract: internal_note", caplog.text
    )


def test_optional_and_sensitive_columns_kept() -> None:
    book = make_book()
    crm = book["crm_interactions"]
    crm["direction"] = ["inbound", "outbound", "inbound", "inbound", "outbound", "outbound"]
    crm["answered"] = ["true", "false", None, "1", "0", "yes"]
    book["customers"]["gender"] = ["f", "m", None, "f"]
    book["customers"]["age_band"] = ["35-44", "45-54", "25-34", "18-24"]
    out = validate_tables(book)
    assert list(out["crm_interactions"].columns) == [
        *REQUIRED["crm_interactions"],
        *OPTIONAL["crm_interactions"],
    ]
    assert out["crm_interactions"]["answered"].tolist() == [True, False, pd.NA, True, False, True]
    assert [c for c in out["customers"].columns if c in SENSITIVE] == ["gender", "age_band"]


def test_crm_values_differing_only_in_case_or_spacing_are_normalised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A type spelt "Complaint" can only mean complaint: read as it (with a warning), so its
    features count it instead of silently counting none."""
    book = make_book()
    crm = book["crm_interactions"]
    crm.loc[[1, 2], "type"] = ["Complaint", " Payment Reminder "]
    crm.loc[3, "channel"] = "PHONE"
    with caplog.at_level(logging.WARNING, logger="pipeline.sources.validation"):
        out = validate_tables(book)["crm_interactions"]
    assert out.loc[[1, 2], "type"].tolist() == ["complaint", "payment_reminder"]
    assert out.loc[3, "channel"] == "phone"
    assert "crm_interactions.type: 2 values read as the contract's spelling" in caplog.text
    assert "'Complaint' -> 'complaint' (1)" in caplog.text


def test_crm_type_outside_the_list_is_refused_naming_the_allowed_values() -> None:
    book = make_book()
    book["crm_interactions"].loc[[1, 2], "type"] = "collections_call"
    found = paragraph(data_error(book), "crm_interactions.type:")
    assert "2 of 6 rows fail" in found and "row 2: 'collections_call'" in found
    assert "complaint, payment_reminder" in found and "other" in found


def test_crm_type_other_is_a_contact_of_the_lenders_own_kind() -> None:
    book = make_book()
    book["crm_interactions"].loc[[1], "type"] = "other"
    assert validate_tables(book)["crm_interactions"].loc[1, "type"] == "other"


def test_scheduled_instalment_may_leave_amount_paid_empty_a_paid_one_may_not() -> None:
    """A lender's extract lists instalments not yet due, unpaid, amount_paid empty: valid, read
    as 0. A paid instalment without an amount is an error naming its rows."""
    book = make_book()
    rep = book["repayments"]
    unpaid = rep.index[rep["paid_date"].isna()]
    assert len(unpaid) == 1
    rep["amount_paid"] = rep["amount_paid"].astype(object)
    rep.loc[unpaid, "amount_paid"] = None
    out = validate_tables(book)["repayments"]
    assert out["amount_paid"].dtype == "float64"
    assert out.loc[unpaid, "amount_paid"].tolist() == [0.0]
    rep.loc[[0, 1], "amount_paid"] = ""
    found = paragraph(data_error(book), "repayments.amount_paid:")
    assert "2 of 15 rows fail" in found and "row 1: missing" in found
    assert "with a paid_date" in found


def test_percent_interest_rate_warns(caplog: pytest.LogCaptureFixture) -> None:
    book = make_book()
    book["loans"]["interest_rate"] *= 100
    with caplog.at_level(logging.WARNING, logger="pipeline.sources.validation"):
        validate_tables(book)
    assert "looks like a percentage" in caplog.text


def test_read_table_sql_url_errors_do_not_echo_the_password() -> None:
    # Port 1 on localhost: refused at once. More database cases: tests/test_sql_source.py.
    with pytest.raises(DataError, match="Could not connect") as info:
        read_table("postgresql+psycopg://user:secret@127.0.0.1:1/book", "loans")
    assert "secret" not in str(info.value)
    assert "user:***@127.0.0.1:1/book" in str(info.value)


def test_contract_and_schema_columns_agree() -> None:
    for name in TABLES:
        declared = set(COLUMNS[name]) - set(SENSITIVE)
        assert declared == set(REQUIRED[name]) | set(OPTIONAL[name])


# --- bad data: one case each; the message names table, column and count -----------------------


def _set(table: str, column: str, rows: list[int], value: object) -> Callable[[Book], None]:
    def mutate(book: Book) -> None:
        frame = book[table]
        frame[column] = frame[column].astype(object)
        frame.loc[rows, column] = value

    return mutate


def _duplicate_row(table: str, row: int) -> Callable[[Book], None]:
    def mutate(book: Book) -> None:
        frame = book[table]
        book[table] = pd.concat([frame, frame.iloc[[row]]], ignore_index=True)

    return mutate


def _duplicate_repayment_key(book: Book) -> None:
    frame = book["repayments"]
    frame.loc[4, "installment_no"] = frame.loc[3, "installment_no"]  # loan 11: 1, 1, 3


def _paid_years_early(book: Book) -> None:
    frame = book["repayments"]
    frame.loc[[0, 7], "paid_date"] = frame.loc[[0, 7], "due_date"] - pd.Timedelta(days=800)


def _due_before_origination(book: Book) -> None:
    frame = book["repayments"]
    frame.loc[0, "due_date"] = pd.Timestamp("2020-12-01")


BAD_CASES = {
    "wrong type": (
        _set("loans", "principal", [1, 3], "lots"),
        "loans.principal",
        "2 of 5 rows fail",
        ["row 2: 'lots'", "row 4: 'lots'"],
    ),
    "unparseable date": (
        _set("repayments", "due_date", [2], "2021-13-45"),
        "repayments.due_date",
        "1 of 15 rows fails",
        ["row 3: '2021-13-45'"],
    ),
    "duplicate key": (
        _duplicate_row("customers", 1),
        "customers.customer_id",
        "2 of 5 rows fail",
        ["row 2: 2", "row 5: 2"],
    ),
    "composite key duplicate": (
        _duplicate_repayment_key,
        "repayments.loan_id, installment_no",
        "2 of 15 rows fail",
        ["row 4: loan_id=11, installment_no=1", "row 5: loan_id=11, installment_no=1"],
    ),
    "orphan loan customer": (
        _set("loans", "customer_id", [4], 99),
        "loans.customer_id",
        "1 of 5 rows fails",
        ["row 5: 99", "exists in customers.customer_id"],
    ),
    "orphan repayment loan": (
        _set("repayments", "loan_id", [0, 1, 2], 77),
        "repayments.loan_id",
        "3 of 15 rows fail",
        ["row 1: 77", "exists in loans.loan_id"],
    ),
    "orphan crm customer": (
        _set("crm_interactions", "customer_id", [5], 42),
        "crm_interactions.customer_id",
        "1 of 6 rows fails",
        ["row 6: 42"],
    ),
    "negative amount": (
        _set("repayments", "amount_paid", [5], -12.5),
        "repayments.amount_paid",
        "1 of 15 rows fails",
        ["row 6: -12.5", ">= 0"],
    ),
    "missing value in a required column": (
        _set("loans", "principal", [0], None),
        "loans.principal",
        "1 of 5 rows fails",
        ["row 1: missing"],
    ),
    "zero term": (
        _set("loans", "term_months", [2], 0),
        "loans.term_months",
        "1 of 5 rows fails",
        ["row 3: 0"],
    ),
    "fractional term": (
        _set("loans", "term_months", [2], 2.5),
        "loans.term_months",
        "1 of 5 rows fails",
        ["row 3: 2.5", "a whole number"],
    ),
    "implausible principal": (
        _set("loans", "principal", [1, 3], 1e300),
        "loans.principal",
        "2 of 5 rows fail",
        ["row 2: 1e+300", "row 4: 1e+300", "<= 1,000,000,000,000"],
    ),
    "infinite amount due": (
        _set("repayments", "amount_due", [2], float("inf")),
        "repayments.amount_due",
        "1 of 15 rows fails",
        ["row 3: inf", "a finite number"],
    ),
    "interest rate in basis points": (
        _set("loans", "interest_rate", [0], 1200.0),
        "loans.interest_rate",
        "1 of 5 rows fails",
        ["row 1: 1200.0", "<= 100"],
    ),
    "term of centuries": (
        _set("loans", "term_months", [4], 10**15),
        "loans.term_months",
        "1 of 5 rows fails",
        ["row 5: 1000000000000000", "<= 1,200"],
    ),
    "satisfaction out of range": (
        _set("crm_interactions", "satisfaction", [0, 3], 7),
        "crm_interactions.satisfaction",
        "2 of 6 rows fail",
        ["row 1: 7", "row 4: 7", "1 to 5"],
    ),
    "nps out of range": (
        _set("crm_interactions", "nps", [2], 11),
        "crm_interactions.nps",
        "1 of 6 rows fails",
        ["row 3: 11"],
    ),
    "bad channel": (
        _set("crm_interactions", "channel", [4], "fax"),
        "crm_interactions.channel",
        "1 of 6 rows fails",
        ["row 5: 'fax'", "phone, app, branch"],
    ),
    "paid years before due": (
        _paid_years_early,
        "repayments.paid_date",
        "2 of 15 rows fail",
        ["paid before due by over a year", "row 1: paid_date=2018-12-08, due_date=2021-02-15"],
    ),
    "due before origination": (
        _due_before_origination,
        "repayments.due_date",
        "1 of 15 rows fails",
        ["row 1: due_date=2020-12-01, loan_id=10", "origination_date"],
    ),
    "origination before 1900": (
        _set("loans", "origination_date", [3], pd.Timestamp("1899-12-31")),
        "loans.origination_date",
        "1 of 5 rows fails",
        ["row 4: 1899-12-31", "1900-01-01"],
    ),
    "boolean not readable": (
        _set("crm_interactions", "resolved", [0], "perhaps"),
        "crm_interactions.resolved",
        "1 of 6 rows fails",
        ["row 1: 'perhaps'"],
    ),
}


@pytest.mark.parametrize("case", list(BAD_CASES), ids=list(BAD_CASES))
def test_bad_value_is_reported(case: str) -> None:
    mutate, prefix, count, examples = BAD_CASES[case]
    book = make_book()
    mutate(book)
    message = data_error(book)
    found = paragraph(message, prefix + ":")
    assert count in found
    for example in examples:
        assert example in found


def test_rows_are_numbered_by_position_whatever_the_index() -> None:
    book = make_book()
    book["loans"].index = [50, 40, 30, 20, 10]
    _set("loans", "principal", [30], -1.0)(book)  # label 30 = third row
    assert "row 3: -1.0" in paragraph(data_error(book), "loans.principal:")


def test_date_outside_pythons_range_is_reported_not_crashed() -> None:
    # Found by hypothesis: "-1" parses as ISO year -1, which Timestamp.date() cannot render.
    book = make_book()
    book["customers"]["customer_since"] = book["customers"]["customer_since"].astype(object)
    book["customers"].loc[0, "customer_since"] = "-1"
    found = paragraph(data_error(book), "customers.customer_since:")
    assert "row 1: -001-01-01" in found


def test_missing_column_is_listed() -> None:
    book = make_book()
    book["customers"] = book["customers"].drop(columns=["region", "birth_year"])
    found = paragraph(data_error(book), "customers:")
    assert "missing required columns birth_year, region" in found


def test_empty_table_is_an_error() -> None:
    book = make_book()
    book["crm_interactions"] = book["crm_interactions"].iloc[:0]
    assert "crm_interactions: the table has no rows" in data_error(book)


def test_id_types_must_match_across_tables() -> None:
    book = make_book()
    book["loans"]["customer_id"] = "C" + book["loans"]["customer_id"].astype(str)
    found = paragraph(data_error(book), "loans.customer_id:")
    assert "holds text ids but customers.customer_id holds integer ids" in found


def test_problems_of_all_tables_are_reported_together() -> None:
    book = make_book()
    _set("customers", "annual_income", [0], -5.0)(book)
    _set("crm_interactions", "nps", [0], 12)(book)
    _duplicate_row("repayments", 0)(book)
    message = data_error(book)
    assert message.startswith("The input tables break the data contract (3 problems).")
    for prefix in (
        "customers.annual_income:",
        "repayments.loan_id, installment_no:",
        "crm_interactions.nps:",
    ):
        paragraph(message, prefix)


# --- bad files -------------------------------------------------------------------------------


def _read_error(tmp_path: Path) -> str:
    with pytest.raises(DataError) as info:
        load_tables(tmp_path)
    return str(info.value)


def test_missing_table_file_names_folder_and_expected_files(tmp_path: Path) -> None:
    write_book(make_book(), tmp_path, "csv")
    (tmp_path / "loans.csv").unlink()
    message = _read_error(tmp_path)
    assert f"loans: no table file in {tmp_path}: expected loans.parquet or loans.csv" in message
    assert "customers" not in message.split("\n\n", 1)[1]


def test_missing_raw_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_tables(tmp_path / "nowhere")


def test_empty_csv_file(tmp_path: Path) -> None:
    write_book(make_book(), tmp_path, "csv")
    (tmp_path / "customers.csv").write_bytes(b"")
    assert "customers.csv is empty" in _read_error(tmp_path)


def test_header_only_csv(tmp_path: Path) -> None:
    book = make_book()
    write_book(book, tmp_path, "csv")
    book["loans"].iloc[:0].to_csv(tmp_path / "loans.csv", index=False)
    assert "loans.csv has a header but no data rows" in _read_error(tmp_path)


def test_non_utf8_bytes_name_file_and_line(tmp_path: Path) -> None:
    write_book(make_book(), tmp_path, "csv")
    path = tmp_path / "customers.csv"
    lines = path.read_bytes().split(b"\n")
    lines[3] = lines[3].replace(b"east", b"\xe9ast")  # Latin-1 e-acute
    path.write_bytes(b"\n".join(lines))
    message = _read_error(tmp_path)
    assert "customers.csv is not UTF-8 text" in message
    assert "0xE9 on line 4" in message


def test_unparseable_csv(tmp_path: Path) -> None:
    write_book(make_book(), tmp_path, "csv")
    with (tmp_path / "loans.csv").open("a") as fh:
        fh.write('99,1,"unterminated,2021-01-01,1,2,3,x\n')
    assert "loans.csv could not be parsed as CSV" in _read_error(tmp_path)


def test_zero_byte_parquet(tmp_path: Path) -> None:
    write_book(make_book(), tmp_path, "parquet")
    (tmp_path / "repayments.parquet").write_bytes(b"")
    assert "repayments.parquet is not a readable Parquet file" in _read_error(tmp_path)


def test_all_unreadable_files_are_reported_together(tmp_path: Path) -> None:
    write_book(make_book(), tmp_path, "parquet")
    (tmp_path / "repayments.parquet").write_bytes(b"")
    (tmp_path / "crm_interactions.parquet").unlink()
    message = _read_error(tmp_path)
    assert "repayments.parquet" in message
    assert "crm_interactions: no table file" in message


# --- property: any mutation of a valid book gives success or DataError -------------------------

_VALUES = st.one_of(
    st.none(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6),
    st.booleans(),
    st.datetimes(timezones=st.one_of(st.none(), st.timezones())),
    st.sampled_from(["2021-01-31", "2021-13-01", "phone", "complaint", " ", "", "1e9", "NaN"]),
)
_DTYPES = ["object", "str", "float64", "int64", "category", "boolean", "datetime64[us]"]


@st.composite
def mutated_books(draw: st.DrawFn) -> Book:
    """A valid book after 1-4 random edits; positional, so repeated names and labels work."""
    book = make_book()
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        name = draw(st.sampled_from(TABLES))
        frame = book[name].copy()
        if frame.shape[1] == 0:
            continue
        j = draw(st.integers(0, frame.shape[1] - 1))
        action = draw(
            st.sampled_from(["set", "set", "retype", "drop", "rename", "add", "dup", "cut"])
        )
        if action == "set" and len(frame):
            values = frame.iloc[:, j].astype(object).to_numpy(copy=True)
            rows = draw(st.lists(st.integers(0, len(frame) - 1), min_size=1, max_size=3))
            values[rows] = draw(_VALUES)
            frame.isetitem(j, values)
        elif action == "retype":
            dtype = draw(st.sampled_from(_DTYPES))
            # An impossible cast (text -> float) leaves the column as it was.
            with contextlib.suppress(TypeError, ValueError, OverflowError):
                frame.isetitem(j, frame.iloc[:, j].astype(dtype))
        elif action == "drop":
            frame = frame.iloc[:, [k for k in range(frame.shape[1]) if k != j]]
        elif action == "rename":
            names = list(frame.columns)
            names[j] = draw(st.sampled_from(["x", " ", 0, "customer_id", "channel"]))
            frame.columns = names
        elif action == "add":
            column = draw(st.sampled_from(["extra", "gender", "direction", "answered"]))
            frame.insert(frame.shape[1], column, draw(_VALUES), allow_duplicates=True)
        elif action == "dup" and len(frame):
            frame = pd.concat([frame, frame.iloc[[0]]])  # repeats an index label too
        elif action == "cut":
            frame = frame.iloc[: draw(st.integers(0, 1))]
        book[name] = frame
    return book


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_books())
def test_mutated_books_give_success_or_data_error(book: Book) -> None:
    try:
        out = validate_tables(book)
    except DataError as exc:
        paragraphs = str(exc).split("\n\n")
        assert paragraphs[0].startswith("The input tables break the data contract")
        assert all(p.split(":")[0].split(".")[0] in TABLES for p in paragraphs[1:])
        return
    for name in TABLES:
        assert set(REQUIRED[name]) <= set(out[name].columns)
        key = out[name][list(KEYS[name])]
        assert not key.isna().any().any()
        assert not key.duplicated().any()
