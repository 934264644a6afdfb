"""The report reads explain's and the effect study's files only as whole sets."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline.config import Config
from pipeline.core import catalogue
from pipeline.core.catalogue import RunFiles
from pipeline.core.errors import DataError
from pipeline.core.publish import publish_set
from pipeline.stages import report


@dataclass
class _Run:
    """As much of a RunContext as the report needs before it asks MLflow."""

    files: RunFiles
    run_id: str = "r1"

    @property
    def run_dir(self) -> Path:
        return self.files.root

    def train_result(self) -> dict:
        return {}


def _publish(folder: Path, stage: str, manifest: str, names: list[str]) -> None:
    with publish_set(folder, stage, manifest) as out:
        for name in names:
            out.path(name).write_bytes(b"drawn by run 1")


def test_report_refuses_explain_files_of_two_runs(tmp_path):
    files = RunFiles(tmp_path / "r1")
    names = [catalogue.shap_dependence_png("tenure_months"), "shap_importance.csv"]
    _publish(files.root, "explain", catalogue.EXPLAIN_MANIFEST, names)
    files.png(names[0]).write_bytes(b"drawn by run 2")  # a kill between two renames
    cfg = Config.model_validate({"output": {"reports_dir": str(tmp_path)}})
    with pytest.raises(DataError, match=r"shap_dependence_tenure_months\.png.*--run-id r1"):
        report.gather(cfg, _Run(files))


def test_report_refuses_an_effect_study_of_two_runs(tmp_path):
    effects = catalogue.effects_dir(tmp_path)
    _publish(effects, "effects", catalogue.MANIFEST, [catalogue.EFFECTS_HTML, "effects.csv"])
    (effects / "effects.csv").write_bytes(b"another estimate")
    files = RunFiles(tmp_path / "r1")
    files.root.mkdir()
    cfg = Config.model_validate({"output": {"reports_dir": str(tmp_path)}})
    with pytest.raises(DataError, match=r"effects\.csv.*loanrisk effects"):
        report.gather(cfg, _Run(files))
