"""The config: one typed object, validated at start-up; errors name the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pipeline.config import DEFAULT_CONFIG, Config, load_config
from pipeline.core.errors import ConfigError


def test_default_yaml_is_valid_and_equals_the_code_defaults_where_it_is_silent() -> None:
    cfg = load_config(DEFAULT_CONFIG)
    assert isinstance(cfg, Config)
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text())
    assert cfg.train.n_trials == raw["train"]["n_trials"]
    assert cfg.mlflow.tracking_uri.startswith("sqlite:///")
    assert cfg.effects.levers  # the effects section is part of the one config object


def test_overrides_are_typed_and_nested() -> None:
    cfg = load_config(DEFAULT_CONFIG, ["train.n_trials=5", "split.gap_months=0", "seed=7"])
    assert (cfg.train.n_trials, cfg.split.gap_months, cfg.seed) == (5, 0, 7)


def test_size_accepts_a_number_from_yaml_or_override() -> None:
    assert load_config(None, ["generate.size=20000"]).generate.n_customers() == 20000
    assert load_config(None, ["generate.size=tiny"]).generate.n_customers() == 400


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("train.n_trails=5", "train.n_trails: unknown key"),
        ("trian.n_trials=5", "trian: unknown key"),
        ("train.n_trials=0", "train.n_trials:"),
        ("generate.size=huge", "generate.size:"),
        ("generate.size=true", "generate.size:"),
        ("train.calibration=magic", "train.calibration:"),
        ("effects.bogus=1", "effects.bogus: unknown key"),
    ],
)
def test_bad_keys_and_values_name_the_key(override: str, named: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(DEFAULT_CONFIG, [override])
    assert named in str(info.value)


def test_override_without_equals_sign_is_an_error() -> None:
    with pytest.raises(ConfigError, match="expected key=value"):
        load_config(DEFAULT_CONFIG, ["train.n_trials"])


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    listing = tmp_path / "list.yaml"
    listing.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping of sections"):
        load_config(listing)
