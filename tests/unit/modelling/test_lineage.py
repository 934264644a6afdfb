"""A model's data identity: what makes two models comparable by the promotion gate."""

from __future__ import annotations

from pipeline.config import load_config
from pipeline.core.metadata import FeatureSpec
from pipeline.modelling.lineage import data_identity

SPECS = [FeatureSpec("dpd_now", "repayment", "Days past due now", "raises")]


def _identity(*overrides, specs=SPECS):
    return data_identity(load_config(None, list(overrides)), specs)


def test_another_raw_folder_label_or_feature_set_is_other_data(tmp_path):
    base = _identity(f"data.raw_dir={tmp_path / 'raw'}")
    assert base == _identity(f"data.raw_dir={tmp_path / 'raw'}")  # next month's extract
    assert base["data.source"] != _identity(f"data.raw_dir={tmp_path / 'small'}")["data.source"]
    window = _identity(f"data.raw_dir={tmp_path / 'raw'}", "features.performance_window_months=6")
    assert base["data.label"] != window["data.label"]
    more = [*SPECS, FeatureSpec("late_count_6m", "repayment", "Late instalments", "raises")]
    assert (
        base["features.set"]
        != _identity(f"data.raw_dir={tmp_path / 'raw'}", specs=more)["features.set"]
    )


def test_a_database_source_is_named_without_its_password():
    ident = _identity("data.sql.url=postgresql+psycopg://analyst:s3cret@db:5432/lending")
    assert "s3cret" not in ident["data.source"] and "db:5432/lending" in ident["data.source"]
