"""The one CSV writer: text cells that a spreadsheet would run as a formula are escaped (OWASP
CSV injection), numbers stay numbers, missing cells stay empty."""

from __future__ import annotations

import csv

import numpy as np
import pandas as pd

from pipeline.core.io import spreadsheet_text, write_csv

TRIGGERS = ['=HYPERLINK("http://x","y")', "+1+2", "-3+cmd|' /C calc'!A0", "@SUM(A1)", "\tx", "\rx"]


def _cells(path) -> list[list[str]]:
    with open(path, newline="") as f:
        return list(csv.reader(f))


def test_formula_text_is_escaped_numbers_and_plain_text_are_not(tmp_path):
    n = len(TRIGGERS)
    df = pd.DataFrame(
        {
            "loan_id": pd.Series(TRIGGERS, dtype="str"),
            "mixed": pd.Series(["-x", *[-1.5] * (n - 1)], dtype=object),
            "pd": np.linspace(-0.5, 0.5, n),
            "tier": pd.Categorical(["=A", *["B"] * (n - 1)]),
            "reason": ["Product: card", *["3 days past due"] * (n - 1)],
        }
    )
    rows = _cells(write_csv(df, tmp_path / "t.csv"))[1:]
    assert [r[0] for r in rows] == ["'" + t.replace("\r", "\n") for t in TRIGGERS]
    assert rows[0][1] == "'-x" and rows[1][1] == "-1.5"  # a number in a text column stays one
    assert rows[0][2] == "-0.5"  # numeric columns are never escaped
    assert rows[0][3] == "'=A" and rows[1][3] == "B"
    assert rows[0][4] == "Product: card"
    back = pd.read_csv(tmp_path / "t.csv", keep_default_na=False)
    # a carriage return comes back as the line break it is ("\r" alone ends a row in readers)
    assert spreadsheet_text(back["loan_id"]).tolist() == [*TRIGGERS[:-1], "\nx"]
    assert back["pd"].tolist() == df["pd"].tolist()


def test_missing_ids_are_empty_cells_never_nan(tmp_path):
    df = pd.DataFrame(
        {
            "text_id": pd.Series(["a", None, "-b"], dtype="str"),
            "object_id": pd.Series(["a", np.nan, None], dtype=object),
            "int_id": pd.array([1, None, 3], dtype="Int64"),
        }
    )
    rows = _cells(write_csv(df, tmp_path / "t.csv"))
    assert rows[2] == ["", "", ""]
    assert rows[3][:2] == ["'-b", ""]
