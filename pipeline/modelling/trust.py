"""Trusting a model before any of its code runs.

`mlflow.pyfunc.load_model` executes what the model folder names: its loader module, a pickled
class or a "models from code" file, after putting the folder's `code/` first on `sys.path`. A
folder made by someone else (`--model /shared/x`, or a run in a shared store) would thus run its
code as the user before anything could check it is a loanrisk model. So the folder's files are
fetched first (no code runs), and its `MLmodel` (YAML, read with safe_load) must describe the
model `pipeline.modelling.model.log_model` writes: the pyfunc flavour loaded by MLflow's
models-from-code loader, its code file byte for byte this package's `model_code.py` (which only
builds a `LoanRiskModel` from the already imported package), and `code/` holding only the
`pipeline` package (already imported, so its copy there is never executed). Only then is the
folder loaded, from that local copy.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import mlflow
import yaml
from mlflow.exceptions import MlflowException

from pipeline.core import catalogue
from pipeline.core.errors import ModelError
from pipeline.modelling.model import MODEL_CODE

CODE_LOADER = "mlflow.pyfunc.loaders.code_model"
PYFUNC = "python_function"
MLMODEL = catalogue.MLFLOW_MODEL_FILE


def load_trusted_model(model_uri: str) -> mlflow.pyfunc.PyFuncModel:
    """Fetch `model_uri`'s files, check them with `check_model_folder`, then load that copy.

    Raises ModelError when the URI does not resolve (the MLflow message and a hint) or the
    folder is not a loanrisk model (what it is instead); nothing of its code has run then.
    """
    with tempfile.TemporaryDirectory(prefix="loanrisk-model-") as tmp:
        try:
            local = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=tmp))
        except (MlflowException, OSError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            store = mlflow.get_tracking_uri()
            raise ModelError(
                f"model {model_uri!r} could not be loaded: {first}\n"
                f"Hint: `loanrisk train` trains and registers one; see the registered models in "
                f"`mlflow ui --backend-store-uri {store}` (or pass --model with a models:/ or "
                "runs:/ URI)."
            ) from None
        check_model_folder(local, model_uri)
        # LoanRiskModel.load_context reads every artefact into memory: the copy may go.
        return mlflow.pyfunc.load_model(str(local))


def check_model_folder(folder: Path, model_uri: str) -> None:
    """ModelError unless `folder` holds a loanrisk PD model as `log_model` writes it.

    Reads files only: `MLmodel` with yaml.safe_load, the code file's bytes, `code/`'s listing.
    """
    conf = _pyfunc_conf(folder, model_uri)
    loader = conf.get("loader_module")
    if loader != CODE_LOADER:
        extra = " (a pickled Python model)" if conf.get("python_model") else ""
        _refuse(model_uri, f"its loader is {loader!r}{extra}, not the loanrisk model code")
    code_file = conf.get("model_code_path")
    if not isinstance(code_file, str):
        _refuse(model_uri, "its MLmodel names no model code file")
    path = folder / os.path.basename(code_file)
    if not path.is_file() or path.read_bytes() != MODEL_CODE.read_bytes():
        _refuse(
            model_uri,
            f"its model code ({path.name}) differs from this loanrisk version's "
            f"{MODEL_CODE.name}; a model logged by another loanrisk version must be retrained",
        )
    code_dir = conf.get("code")
    if code_dir is not None:
        entries = sorted(p.name for p in (folder / str(code_dir)).iterdir())
        if entries != ["pipeline"]:
            _refuse(model_uri, f"its code folder holds {', '.join(entries) or 'nothing'}")


def _pyfunc_conf(folder: Path, model_uri: str) -> dict[str, Any]:
    path = folder / MLMODEL
    if not path.is_file():
        _refuse(model_uri, f"it has no {MLMODEL} file (not an MLflow model folder)")
    try:
        meta = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        _refuse(model_uri, f"its {MLMODEL} is not readable YAML ({type(exc).__name__})")
    flavours = meta.get("flavors") if isinstance(meta, dict) else None
    conf = flavours.get(PYFUNC) if isinstance(flavours, dict) else None
    if not isinstance(conf, dict):
        have = ", ".join(flavours) if isinstance(flavours, dict) else "none"
        _refuse(model_uri, f"it has no {PYFUNC} flavour (flavours: {have})")
    return conf


def _refuse(model_uri: str, why: str) -> None:
    raise ModelError(
        f"model {model_uri!r} is not a loanrisk PD model: {why}. Nothing of it was run. "
        "Score with a model that `loanrisk train` logged (models:/<name>@champion)."
    )
