"""One tiny book through the CLI, checked for reproducibility, idempotency, provenance and
personal data.

The book is the simulated tiny one with personal canaries added to customers: a name and a
free-text note (not in the contract: ingest must drop them), incomes made distinctive (48,024.57
rather than 48,000, so a leaked value cannot be a coincidence) and the sensitive columns gender
and age_band (fairness audit only). Ids are pseudonymised with a key from the environment.
"""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.core.contract import SENSITIVE, TABLES
from pipeline.core.fingerprint import frame_sha256
from pipeline.core.privacy import pseudonym
from pipeline.runs.metric_names import flat_metrics
from tests.helpers import latest_train_result, tiny_overrides

pytestmark = pytest.mark.training
runner = CliRunner()
KEY = "test-key-0123456789abcdef"


def _opts(items: list[str]) -> list[str]:
    return [x for o in items for x in ("-o", o)]


def _invoke(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def _add_canaries(raw: Path) -> pd.DataFrame:
    path = raw / "customers.parquet"
    c = pd.read_parquet(path)
    ids = c["customer_id"].to_numpy()
    # Distinctive cents and units on top of the simulator's round hundreds.
    c["annual_income"] = (c["annual_income"] + 11 + ids % 83 + 0.01 * (1 + ids % 97)).round(2)
    c["name"] = [f"Canaryname Person{i:05d}" for i in ids]
    c["notes"] = [f"canary-note-{i} moved to Elm Street" for i in ids]
    c["gender"] = np.where(ids % 2 == 0, "female", "male")
    c["age_band"] = pd.cut(
        2024 - c["birth_year"].astype(float),
        [0, 30, 45, 60, 200],
        labels=["<30", "30-44", "45-59", "60+"],
    ).astype("string")
    c.to_parquet(path, index=False)
    return c


@pytest.fixture(scope="module")
def book(tmp_path_factory, monkeypatch_module):
    root = tmp_path_factory.mktemp("hard")
    extra = ["privacy.pseudonymise_ids=true", "train.num_boost_round=80", "effects.enabled=true"]
    ov = _opts(tiny_overrides(root, trials=2) + extra)
    monkeypatch_module.setenv("LOANRISK_ID_KEY", KEY)
    _invoke("generate", *ov)
    customers = _add_canaries(root / "raw")
    _invoke("run", *ov)
    first = {
        "interim": {t: (root / "interim" / f"{t}.parquet").read_bytes() for t in TABLES},
        "features": (root / "features" / "features.parquet").read_bytes(),
        "features_frame": pd.read_parquet(root / "features" / "features.parquet"),
        "metrics": json.loads((root / "reports" / "metrics.json").read_text()),
        "latest": latest_train_result(root),
    }
    return root, ov, customers, first


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


@pytest.fixture(scope="module")
def rerun(book):
    """ingest, features and train again on the same inputs."""
    root, ov, _, first = book
    _invoke("ingest", *ov)
    _invoke("features", *ov)
    _invoke("train", *ov)
    second = latest_train_result(root)
    assert second["run_id"] != first["latest"]["run_id"]
    return second


def _client(root: Path) -> MlflowClient:
    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlruns.db'}")
    return MlflowClient()


# --- idempotency and reproducibility ---------------------------------------------------------


def test_rerun_of_ingest_and_features_is_byte_identical(book, rerun):
    root, _, _, first = book
    for t in TABLES:
        assert (root / "interim" / f"{t}.parquet").read_bytes() == first["interim"][t], t
    assert (root / "features" / "features.parquet").read_bytes() == first["features"]
    again = pd.read_parquet(root / "features" / "features.parquet")
    pd.testing.assert_frame_equal(again, first["features_frame"], check_exact=True)


def test_two_train_runs_give_identical_metrics(book, rerun):
    root, _, _, first = book
    client = _client(root)
    a = client.get_run(first["latest"]["run_id"]).data
    b = client.get_run(rerun["run_id"]).data
    a_metrics, b_metrics = flat_metrics(a.metrics), flat_metrics(b.metrics)
    # run a also holds the evaluate stage's metrics; b is train alone
    keys = [k for k in b_metrics if k not in ("tuning_seconds", "promoted")]
    assert "test_auc" in keys and "best_valid_auc" in keys
    # evaluate logs test_auc too, from its own AUC code: equal up to float rounding
    evaluated = {"test_auc"}
    for k in keys:
        if k in evaluated:
            assert a_metrics[k] == pytest.approx(b_metrics[k], rel=1e-12, abs=0), k
        else:
            assert a_metrics[k] == b_metrics[k], k
    best = {k: v for k, v in a.params.items() if k.startswith("best_")}
    assert best and best == {k: v for k, v in b.params.items() if k.startswith("best_")}
    assert a.tags["data_fingerprint"] == b.tags["data_fingerprint"]


def test_run_records_data_fingerprints_config_commit_and_versions(book):
    root, _, customers, first = book
    run = _client(root).get_run(first["latest"]["run_id"])
    tags = run.data.tags
    interim = pd.read_parquet(root / "interim" / "customers.parquet")
    assert tags["data.sha256.input.customers"] == frame_sha256(interim)
    for t in TABLES:
        assert re.fullmatch(r"[0-9a-f]{64}", tags[f"data.sha256.input.{t}"])
        assert re.fullmatch(r"[0-9a-f]{64}", tags[f"data.sha256.interim.{t}"])
    assert re.fullmatch(r"[0-9a-f]{64}", tags["data.sha256.features"])
    assert re.fullmatch(r"[0-9a-f]{40}", tags["git_commit"])
    assert tags["git_dirty"] in ("true", "false")
    for pkg in ("lightgbm", "pandas", "numpy", "mlflow", "pyarrow", "python"):
        assert tags[f"version.{pkg}"]
    art = Path(run.info.artifact_uri.removeprefix("file://"))
    provenance = json.loads((art / "provenance.json").read_text())
    assert provenance["data"]["stale"] == []
    assert set(provenance["data"]["ingest"]["tables"]) == set(TABLES)
    config = json.loads((art / "config.json").read_text())
    assert config["train"]["n_trials"] == 2 and config["privacy"]["pseudonymise_ids"] is True


# --- personal data ---------------------------------------------------------------------------


def test_sensitive_and_free_text_columns_are_never_features(book):
    root, _, _, first = book
    meta = json.loads((root / "features" / "feature_metadata.json").read_text())
    names = {m["name"] for m in meta}
    assert names.isdisjoint({*SENSITIVE, "name", "notes", "birth_year"})
    assert set(first["features_frame"].columns).isdisjoint({*SENSITIVE, "name", "notes"})
    # income enters features rounded: the distinctive raw incomes never reach the model
    incomes = first["features_frame"]["annual_income"].dropna()
    assert (incomes % 100 == 0).all()


# An image embedded in a page (PNG, JPEG or WebP bytes, like the image files the scan skips, and
# most of the report's megabytes, which made the scan take minutes).
EMBEDDED_IMAGE = re.compile(r"data:image/[a-z+]+;base64,[A-Za-z0-9+/=]+")


def _text_of(path: Path) -> str:
    if path.suffix == ".parquet":
        frame = pd.read_parquet(path)
        return " ".join(map(str, frame.columns)) + "\n" + frame.to_csv(index=False)
    return EMBEDDED_IMAGE.sub("", path.read_bytes().decode("utf-8", errors="ignore"))


def _first_needle(text: str, needles: set[str]) -> str | None:
    r"""A needle found in `text` as a whole value: no digit or dot before it, no digit after it
    (what the regex `(?<![\d.])needle(?![\d])` finds; str.find per needle is ~50x faster than
    one alternation of a thousand needles)."""
    for needle in needles:
        at = text.find(needle)
        while at != -1:
            end = at + len(needle)
            before_ok = at == 0 or not (text[at - 1].isdigit() or text[at - 1] == ".")
            if before_ok and not (end < len(text) and text[end].isdigit()):
                return needle
            at = text.find(needle, at + 1)
    return None


def test_whole_value_search_respects_number_boundaries():
    assert _first_needle("income 52345.67 a year", {"52345.67"}) == "52345.67"
    assert _first_needle("x 152345.67, 52345.678, 1.52345.67", {"52345.67"}) is None
    assert _first_needle("end:52345.67", {"52345.67"}) == "52345.67"
    assert _first_needle("Canaryname Jones", {"Canaryname"}) == "Canaryname"


def test_no_personal_value_in_any_report_or_artefact(book, rerun):
    root, _, customers, _ = book
    files = [
        p
        for folder in ("reports", "mlartifacts")
        for p in (root / folder).rglob("*")
        if p.is_file() and p.suffix.lower() not in (".png", ".jpg", ".svg")
    ]
    assert len(files) > 20  # the scan sees the run's real output
    con = sqlite3.connect(root / "mlruns.db")
    store = "\n".join(
        str(v)
        for table in ("params", "tags", "metrics", "latest_metrics")
        for row in con.execute(f"SELECT * FROM {table}")  # noqa: S608
        for v in row
    )
    con.close()
    texts = {str(p.relative_to(root)): _text_of(p) for p in files}
    texts["mlruns.db"] = store
    incomes = customers["annual_income"].dropna()
    needles = {f"{v:.2f}" for v in incomes} | {repr(float(v)) for v in incomes}
    needles |= set(customers["name"]) | set(customers["notes"])
    needles |= {"Canaryname", "canary-note"}
    leaks = {f: hit for f, t in texts.items() if (hit := _first_needle(t, needles))}
    assert not leaks, f"personal values found: {leaks}"
    # Birth years are too common as numbers to scan for as text: no table may hold a column
    # of them, under any name.
    years = set(customers["birth_year"].dropna().astype(int))
    for path in files:
        if path.suffix in (".parquet", ".csv"):
            frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
            for column in frame.columns:
                values = pd.to_numeric(frame[column], errors="coerce").dropna()
                distinct = set(values.unique())
                assert not (len(distinct) > 5 and distinct <= years), (path, column)


def test_prediction_ids_are_keyed_pseudonyms(book):
    root, _, _, first = book
    preds = pd.read_parquet(Path(first["latest"]["run_dir"]) / "predictions.parquet")
    loans = pd.read_parquet(root / "raw" / "loans.parquet")
    expected = {pseudonym(v, KEY.encode()) for v in loans["loan_id"]}
    assert preds["loan_id"].map(lambda v: v in expected).all()
    raw = set(loans["loan_id"].astype(str))
    assert not preds["loan_id"].isin(raw).any()
    # the oracle AUC still joins the truth through the same pseudonyms
    assert first["metrics"]["oracle_auc"] is not None


def test_fairness_table_by_sensitive_group(book):
    _, _, customers, first = book
    table = pd.read_csv(Path(first["latest"]["run_dir"]) / "fairness.csv")
    # the protected defaults: the age feature (audited by band), gender and age band
    assert set(table["attribute"]) == {"customer_age_years", "gender", "age_band"}
    assert set(table.loc[table["attribute"] == "gender", "group"]) == {"female", "male"}
    test = pd.read_parquet(Path(first["latest"]["run_dir"]) / "predictions.parquet")
    n_test = int((test["split"] == "test").sum())
    for _, part in table.groupby("attribute"):
        assert part["n"].sum() == n_test
        assert part["adverse_impact_ratio"].max() == pytest.approx(1.0)
        assert (part["adverse_impact_ratio"] <= 1).all()
    np.testing.assert_allclose(
        table["o_e"], table["defaults"] / (table["mean_pd"] * table["n"]), rtol=1e-9
    )
