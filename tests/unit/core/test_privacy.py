"""Pseudonymised ids, sensitive columns kept out of the model, the fairness table."""

from __future__ import annotations

import hashlib
import hmac

import numpy as np
import pandas as pd
import pytest

from pipeline.config import Config, DataConfig, FairnessConfig, PrivacyConfig
from pipeline.core.contract import SENSITIVE
from pipeline.core.errors import ConfigError
from pipeline.core.privacy import id_key, pseudonymise_ids
from pipeline.modelling import dataset
from pipeline.riskmath.fairness import COLUMNS, fairness_table
from pipeline.sources.sensitive import sensitive_groups

KEY = "k" * 32
ON = PrivacyConfig(pseudonymise_ids=True, key_env="TEST_LOANRISK_KEY")


def test_off_by_default_is_a_no_op() -> None:
    frame = pd.DataFrame({"loan_id": [1, 2], "pd": [0.1, 0.2]})
    assert pseudonymise_ids(frame, PrivacyConfig()) is frame


def test_pseudonyms_are_hmac_sha256_and_stable(monkeypatch) -> None:
    monkeypatch.setenv("TEST_LOANRISK_KEY", KEY)
    frame = pd.DataFrame({"loan_id": [10, 11, 10, None], "customer_id": ["a", "b", "a", "c"]})
    out = pseudonymise_ids(frame.astype({"loan_id": "Int64"}), ON)
    expected = hmac.new(KEY.encode(), b"10", hashlib.sha256).hexdigest()[:24]
    assert out["loan_id"].iloc[0] == expected == out["loan_id"].iloc[2]
    assert out["loan_id"].iloc[1] != expected
    assert pd.isna(out["loan_id"].iloc[3])
    assert not out["customer_id"].isin(["a", "b", "c"]).any()
    monkeypatch.setenv("TEST_LOANRISK_KEY", "another key, as long as needed")
    assert pseudonymise_ids(frame, ON)["loan_id"].iloc[0] != expected


@pytest.mark.parametrize("value", [None, "short"])
def test_missing_or_short_key_is_a_config_error_naming_the_variable(monkeypatch, value) -> None:
    if value is None:
        monkeypatch.delenv("TEST_LOANRISK_KEY", raising=False)
    else:
        monkeypatch.setenv("TEST_LOANRISK_KEY", value)
    with pytest.raises(ConfigError, match="TEST_LOANRISK_KEY.*privacy.key_env"):
        id_key(ON)


def test_sensitive_columns_of_a_prepared_table_are_not_features(tmp_path) -> None:
    rng = np.random.default_rng(0)
    n = 200
    table = pd.DataFrame(
        {
            "id": np.arange(n),
            "income": rng.normal(50, 10, n),
            "gender": rng.choice(["f", "m"], n),
            "age_band": rng.choice(["<30", "30+"], n),
            "y": rng.integers(0, 2, n),
        }
    )
    path = tmp_path / "t.parquet"
    table.to_parquet(path)
    cfg = Config(data=DataConfig(kind="table", path=path, target="y", id="id"))
    data = dataset.load(cfg)
    names = [s.name for s in data.specs]
    assert names == ["income"]
    assert set(SENSITIVE) <= set(data.frame.columns)  # kept for the fairness audit
    assert set(data.X().columns).isdisjoint(SENSITIVE)


def test_fairness_table_by_hand() -> None:
    groups = pd.DataFrame({"gender": ["f", "f", "m", "m", "m", None]})
    y = np.array([1, 0, 0, 0, 1, 0])
    p = np.array([0.5, 0.1, 0.1, 0.3, 0.1, 0.05])
    table = fairness_table(groups, y, p, favourable_below=0.2)
    assert list(table.columns) == list(COLUMNS)
    t = table.set_index("group")
    assert t.loc["f", "n"] == 2 and t.loc["m", "n"] == 3 and t.loc["missing", "n"] == 1
    assert t.loc["f", "default_rate"] == pytest.approx(0.5)
    assert t.loc["f", "mean_pd"] == pytest.approx(0.3)
    assert t.loc["f", "o_e"] == pytest.approx(1 / 0.6)  # 1 default against 0.6 expected
    assert t.loc["f", "auc"] == pytest.approx(1.0) and t.loc["m", "auc"] == pytest.approx(0.25)
    assert t.loc["m", "calibration"] == "green"
    assert t.loc["m", "favourable_rate"] == pytest.approx(2 / 3)
    assert t.loc["missing", "adverse_impact_ratio"] == pytest.approx(1.0)
    assert t.loc["f", "adverse_impact_ratio"] == pytest.approx(0.5)
    assert t.loc["missing", "o_e"] == 0 and np.isnan(t.loc["missing", "auc"])  # no default


def test_no_sensitive_column_gives_an_empty_table() -> None:
    out = fairness_table(pd.DataFrame(index=range(3)), np.zeros(3), np.zeros(3), 0.2)
    assert out.empty and list(out.columns) == list(COLUMNS)


def test_protected_attributes_are_audited_not_used_unless_allowed(tmp_path) -> None:
    rng = np.random.default_rng(1)
    n = 300
    table = pd.DataFrame(
        {
            "id": np.arange(n),
            "income": rng.normal(50, 10, n),
            "customer_age_years": rng.integers(18, 80, n),
            "y": rng.integers(0, 2, n),
        }
    )
    path = tmp_path / "t.parquet"
    table.to_parquet(path)
    data_cfg = DataConfig(kind="table", path=path, target="y", id="id")
    default = dataset.load(Config(data=data_cfg))
    assert [s.name for s in default.specs] == ["income"]
    allowed = Config(data=data_cfg, fairness=FairnessConfig(use_as_features=True))
    assert [s.name for s in dataset.load(allowed).specs] == ["income", "customer_age_years"]
    # The audit bands the age: lower bounds 25, 35, 50, 62.
    groups = sensitive_groups(default.frame, None, FairnessConfig())
    assert list(groups.columns) == ["customer_age_years"]
    bands = groups["customer_age_years"]
    ages = default.frame["customer_age_years"]
    assert (bands[ages < 25] == "<25").all() and (bands[ages >= 62] == "62+").all()
    assert (bands[(ages >= 35) & (ages < 50)] == "35-49").all()
    assert sensitive_groups(default.frame, None, FairnessConfig(protected=("gender",))) is None


def test_configured_directions_replace_the_defaults_and_unknown_names_are_refused(tmp_path):
    from pipeline.config import ExpectedDirection, TrainConfig
    from pipeline.core.metadata import FeatureSpec

    specs = [
        FeatureSpec("reminders_3m", "relationship", "Reminders", expected="lowers"),
        FeatureSpec("dpd_now", "repayment", "Days past due", expected="raises"),
    ]
    why = "reminders go to customers already late"
    cfg = Config(
        train=TrainConfig(expected={"reminders_3m": ExpectedDirection(direction="none", why=why)})
    )
    out = {s.name: s.expected for s in dataset.model_specs(specs, cfg)}
    assert out == {"reminders_3m": "unknown", "dpd_now": "raises"}
    cfg = Config(
        train=TrainConfig(expected={"dpd_nw": ExpectedDirection(direction="raises", why="x")})
    )
    with pytest.raises(ConfigError, match=r"train.expected names features.*\['dpd_nw'\]"):
        dataset.model_specs(specs, cfg)
