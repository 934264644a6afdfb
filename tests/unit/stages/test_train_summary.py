"""`loanrisk train`'s console summary says which AUC is on which PDs, as the report does: the
tuner's validation AUC on raw PDs, the test AUC on calibrated ones."""

from __future__ import annotations

from rich.console import Console

from pipeline.stages.summary import train_table
from pipeline.stages.train import TrainResult


def _result(tmp_path, **kw) -> TrainResult:
    base = dict(
        run_id="r1", model_uri="models:/m-1", model_version="3", promoted=True, valid_auc=0.8182,
        test_auc=0.8301, test_auc_unconstrained=None, calibration="isotonic", seconds=12.0,
        run_dir=str(tmp_path), promotion_reason="better",
    )  # fmt: skip
    return TrainResult(**{**base, **kw})


def test_the_train_summary_labels_raw_and_calibrated_aucs(tmp_path):
    console = Console(record=True, width=120)
    console.print(train_table(_result(tmp_path)))
    table = console.export_text()
    assert "valid AUC (best tuning trial, raw PD)" in table and "0.8182" in table
    assert "test AUC (final model, calibrated PD)" in table
    line = str(_result(tmp_path))
    assert (
        "test AUC 0.8301 (calibrated PD; best tuning trial's validation AUC 0.8182, raw PD)" in line
    )


def test_a_random_split_is_not_called_out_of_time(tmp_path):
    line = str(_result(tmp_path, split_kind="random"))
    assert "random-split test AUC" in line and "OOT" not in line


def test_a_sampled_constraints_pair_is_shown_as_a_pair_with_its_rows(tmp_path):
    console = Console(record=True, width=140)
    whole = _result(tmp_path, test_auc_unconstrained=0.8290)
    console.print(train_table(whole))
    assert "test AUC unconstrained" in console.export_text()
    pair = _result(
        tmp_path,
        test_auc_unconstrained=0.8422,
        test_auc_constrained_refit=0.8440,
        constraints_pair_rows=99_873,
    )
    console.print(train_table(pair))
    table = console.export_text()
    assert "with / without constraints (refits on 99,873 rows)" in table
    assert "0.8440 / 0.8422" in table
