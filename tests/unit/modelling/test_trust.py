"""A model folder is checked before any of its code runs: only a loanrisk PD model, as
`log_model` writes it, is loaded."""

from __future__ import annotations

import shutil
from pathlib import Path

import mlflow
import pytest
import yaml

from pipeline.core.errors import ModelError
from pipeline.scoring.core import load_scoring_model


@pytest.fixture(scope="module")
def folder(logged, tmp_path_factory) -> Path:
    """The tiny logged model's files, as someone could copy them to a shared folder."""
    info, _, _ = logged
    dst = tmp_path_factory.mktemp("model")
    return Path(mlflow.artifacts.download_artifacts(artifact_uri=info.model_uri, dst_path=dst))


def _copy(folder: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(folder, tmp_path / "model"))


def _edit_mlmodel(model: Path, **pyfunc: object) -> None:
    meta = yaml.safe_load((model / "MLmodel").read_text())
    meta["flavors"]["python_function"].update(pyfunc)
    (model / "MLmodel").write_text(yaml.safe_dump(meta))


def test_a_loanrisk_model_folder_loads(folder, tmp_path):
    loaded = load_scoring_model(str(_copy(folder, tmp_path)))
    assert loaded.model.feature_names == ["dpd_now", "late_count_6m", "tenure_months", "product"]


def test_foreign_model_code_is_refused_before_it_runs(folder, tmp_path):
    model = _copy(folder, tmp_path)
    ran = tmp_path / "ran.txt"
    (model / "model_code.py").write_text(
        f"open({str(ran)!r}, 'w').write('code of the folder ran')\n"
        "from mlflow.models import set_model\n"
        "from pipeline.modelling.model import LoanRiskModel\n"
        "set_model(LoanRiskModel())\n"
    )
    with pytest.raises(ModelError, match=r"not a loanrisk PD model: its model code"):
        load_scoring_model(str(model))
    assert not ran.exists()


def test_pickled_python_model_is_refused_before_unpickling(folder, tmp_path):
    model = _copy(folder, tmp_path)
    _edit_mlmodel(model, loader_module="mlflow.pyfunc.model", python_model="python_model.pkl")
    with pytest.raises(ModelError, match=r"loader is 'mlflow.pyfunc.model' \(a pickled"):
        load_scoring_model(str(model))


def test_extra_code_on_the_path_is_refused(folder, tmp_path):
    model = _copy(folder, tmp_path)
    (model / "code" / "sitecustomize.py").write_text("raise SystemExit('ran')\n")
    with pytest.raises(ModelError, match="its code folder holds pipeline, sitecustomize.py"):
        load_scoring_model(str(model))


@pytest.mark.parametrize("mlmodel", [None, "flavors: [", "flavors:\n  sklearn: {}\n"])
def test_missing_or_foreign_mlmodel_is_refused(folder, tmp_path, mlmodel):
    model = _copy(folder, tmp_path)
    if mlmodel is None:
        (model / "MLmodel").unlink()
    else:
        (model / "MLmodel").write_text(mlmodel)
    with pytest.raises(ModelError, match="is not a loanrisk PD model"):
        load_scoring_model(str(model))
