"""The model artefact in MLflow: LightGBM booster + calibrator + scaling, returning PD, not labels.

Logged as "models from code" (`pipeline/model_code.py` builds the `LoanRiskModel` below), so no
class is pickled; everything the model needs is a plain file among its artefacts:

    model.txt         LightGBM booster (text format, keeps the training category lists)
    calibrator.json   Calibrator.to_dict()
    features.json     FeatureSpec list, in the booster's feature order
    categories.json   {categorical feature: [categories seen in training]}
    scoring.json      ScoringConfig (PDO scaling and tiers)
    reference.json    training distributions for drift: {feature: bins, "__score__": bins of
                      the points, "__pd__": bins of the PD} (`stability.reference_bins`)

After `mlflow.pyfunc.load_model(uri).unwrap_python_model()` the helpers `prepare`,
`predict_prepared`, `contributions` and the attributes `booster`, `specs`, `calibrator`,
`scoring`, `reference`, `categories` are available to scoring and explanation code.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import asdict
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import lightgbm as lgb
import mlflow
import numpy as np
import pandas as pd
from mlflow.models import ModelSignature, infer_signature
from mlflow.types import ColSpec, Schema
from pandas.api.types import is_numeric_dtype

from pipeline.config import ScoringConfig
from pipeline.core import catalogue
from pipeline.core.errors import ModelError
from pipeline.core.metadata import FeatureSpec
from pipeline.modelling.calibration import Calibrator
from pipeline.modelling.matrix import to_model_frame
from pipeline.riskmath import scaling
from pipeline.riskmath.stability import reference_bins, reference_bins_frame

if TYPE_CHECKING:
    from mlflow.models.model import ModelInfo

ARTEFACTS = catalogue.MODEL_ARTEFACTS
# Keys of the reference dict beside the feature names (the layout train.py writes).
SCORE_KEY, PD_KEY = "__score__", "__pd__"
MODEL_CODE = Path(__file__).with_name("model_code.py")
PACKAGE_DIR = Path(__file__).resolve().parents[1]  # the whole `pipeline` package
# What the artefact needs to load and predict (scipy: pipeline.riskmath.scaling; pydantic/pyyaml:
# pipeline.config).
REQUIREMENTS = (
    "mlflow",
    "lightgbm",
    "pandas",
    "numpy",
    "scipy",
    "scikit-learn",
    "pydantic",
    "pyyaml",
)
EXAMPLE_ROWS = 5


class LoanRiskModel(mlflow.pyfunc.PythonModel):
    """PD model: raw feature frame in, DataFrame (pd, pd_raw, points, tier) out."""

    def load_context(self, context: Any) -> None:
        paths = {k: Path(v) for k, v in context.artifacts.items()}
        self._set(
            booster=lgb.Booster(model_file=str(paths["booster"])),
            calibrator=Calibrator.from_dict(_read_json(paths["calibrator"])),
            specs=[FeatureSpec(**d) for d in _read_json(paths["features"])],
            categories=_read_json(paths["categories"]),
            scoring=ScoringConfig.model_validate(_read_json(paths["scoring"])),
            reference=_read_json(paths["reference"]),
        )

    @classmethod
    def from_parts(
        cls,
        booster: lgb.Booster,
        calibrator: Calibrator,
        specs: list[FeatureSpec],
        categories: dict[str, list],
        scoring: ScoringConfig,
        reference: dict[str, Any],
    ) -> LoanRiskModel:
        """The same model in memory, without MLflow (training-time checks, tests)."""
        model = cls()
        model._set(booster, calibrator, specs, categories, scoring, reference)
        return model

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        """(n, any columns) raw features -> (n, 4) frame pd, pd_raw, points, tier; same index."""
        return self.predict_prepared(self.prepare(model_input))

    def prepare(self, df: pd.DataFrame) -> pd.DataFrame:
        """Select the booster's features in its order; numerics float64, categoricals `category`
        with the training category lists (unseen values -> NaN, i.e. LightGBM's missing).
        The same conversion as training (`pipeline.modelling.matrix.to_model_frame`)."""
        missing = [f for f in self.feature_names if f not in df.columns]
        if missing:
            raise ModelError(
                f"model input is missing {len(missing)} feature column(s): {', '.join(missing)}"
            )
        X = to_model_frame(df, self.specs, self.categories)
        # to_model_frame turns text in a numeric column into NaN; at scoring time that is a
        # broken input, not a missing value. Only non-numeric columns can hold such text.
        bad = [
            s.name
            for s in self.specs
            if s.kind == "numeric"
            and not is_numeric_dtype(df[s.name])
            and bool((X[s.name].isna() & df[s.name].notna()).any())
        ]
        if bad:
            raise ModelError(f"numeric feature column(s) hold non-numeric values: {', '.join(bad)}")
        return X

    def predict_prepared(self, X: pd.DataFrame) -> pd.DataFrame:
        """Frame from `prepare` -> pd (calibrated), pd_raw, points (float), tier (str)."""
        # LightGBM refuses an empty frame; an empty portfolio slice is not an error
        p_raw = np.asarray(self.booster.predict(X) if len(X) else [], dtype=float)
        p = self.calibrator.apply(p_raw)
        return pd.DataFrame(
            {
                "pd": p,
                "pd_raw": p_raw,
                "points": np.asarray(scaling.points(p, self.scoring), dtype=float),
                "tier": pd.Series(np.asarray(scaling.tier(p, self.scoring)), dtype=str).values,
            },
            index=X.index,
        )

    def contributions(self, X: pd.DataFrame) -> np.ndarray:
        """Tree SHAP of the raw booster on a prepared frame: (n, features + 1) log-odds, the
        last column the bias. Exact, and far slower than `predict` on deep trees."""
        if not len(X):
            return np.empty((0, X.shape[1] + 1))
        return np.asarray(self.booster.predict(X, pred_contrib=True))

    @property
    def feature_names(self) -> list[str]:
        return [s.name for s in self.specs]

    def _set(
        self,
        booster: lgb.Booster,
        calibrator: Calibrator,
        specs: list[FeatureSpec],
        categories: dict[str, list],
        scoring: ScoringConfig,
        reference: dict[str, Any],
    ) -> None:
        by_name = {s.name: s for s in specs}
        names = booster.feature_name()
        no_spec = [n for n in names if n not in by_name]
        if no_spec:
            raise ValueError(f"booster features without a FeatureSpec: {no_spec}")
        self.booster = booster
        self.calibrator = calibrator
        self.specs = [by_name[n] for n in names]  # booster order = column order of X
        self.categories = {k: list(v) for k, v in categories.items()}
        self.scoring = scoring
        self.reference = reference
        self._check_categories()

    def _check_categories(self) -> None:
        cat_names = [s.name for s in self.specs if s.kind == "categorical"]
        missing = [n for n in cat_names if n not in self.categories]
        if missing:
            raise ValueError(f"no category list for categorical feature(s) {missing}")
        # The booster remembers the lists it was trained with; ours must be the same, or the
        # category codes would silently shift.
        trained = self.booster.pandas_categorical
        if cat_names and trained is None:
            raise ValueError("categorical features given but the booster was not trained on them")
        if trained is not None and [list(c) for c in trained] != [
            self.categories[n] for n in cat_names
        ]:
            raise ValueError("category lists differ from those the booster was trained with")


def log_model(
    booster: lgb.Booster,
    calibrator: Calibrator,
    specs: list[FeatureSpec],
    categories: dict[str, list],
    scoring_cfg: ScoringConfig,
    reference: dict[str, Any],
    input_example: pd.DataFrame,
    name: str = "model",
    registered_model_name: str | None = None,
) -> ModelInfo:
    """Log the PD model to the active MLflow run; returns ModelInfo (model_uri for registering).

    input_example: rows of the feature matrix; only the features of its first rows are kept
    (no ids, no personal fields), categoricals as str. Signature: every feature a required
    string (categorical) or double input - taken from the specs so an example row with a
    missing value does not make the column optional - and the output columns inferred from the
    model's output on the example. MLflow ignores extra input columns when the model is called.
    """
    model = LoanRiskModel.from_parts(booster, calibrator, specs, categories, scoring_cfg, reference)
    example = _example(input_example, model)
    signature = _signature(model, example)
    with tempfile.TemporaryDirectory(prefix="loanrisk-model-") as tmp:
        tmp_dir = Path(tmp)
        artifacts = _write_artefacts(tmp_dir, model)
        code = tmp_dir / "code" / "pipeline"
        # Ship the package with the model so it loads where `pipeline` is not installed.
        shutil.copytree(PACKAGE_DIR, code, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        return mlflow.pyfunc.log_model(
            name=name,
            python_model=str(MODEL_CODE),
            artifacts=artifacts,
            code_paths=[str(code)],
            signature=signature,
            input_example=example,
            pip_requirements=pip_requirements(),
            registered_model_name=registered_model_name,
        )


def build_reference(
    X: pd.DataFrame, pd_values: np.ndarray, scoring_cfg: ScoringConfig
) -> dict[str, Any]:
    """Training distributions for drift checks (JSON-able): `stability.reference_bins` of every
    column of `X` (a prepared frame, as the model sees it) under its name, of the score points
    under SCORE_KEY and of the PD under PD_KEY."""
    p = np.asarray(pd_values, dtype=float)
    return {
        **reference_bins_frame(X),
        SCORE_KEY: reference_bins(scaling.points(p, scoring_cfg)),
        PD_KEY: reference_bins(p),
    }


def pip_requirements() -> list[str]:
    """Pinned requirements from the running environment (inferring them costs ~3 s a model)."""
    reqs = []
    for dist in REQUIREMENTS:
        try:
            reqs.append(f"{dist}=={version(dist)}")
        except PackageNotFoundError:
            reqs.append(dist)
    return reqs


def _example(df: pd.DataFrame, model: LoanRiskModel) -> pd.DataFrame:
    """First rows of the features only (no ids - MLflow warns on columns outside the
    signature - and no personal fields); categoricals as str (MLflow's schema check refuses
    `category` input, PITFALLS), numerics float64."""
    X = model.prepare(df.head(EXAMPLE_ROWS))
    for spec in model.specs:
        if spec.kind == "categorical":
            X[spec.name] = X[spec.name].astype(str)  # pandas 3 keeps NaN as missing here
    return X.reset_index(drop=True)


def _signature(model: LoanRiskModel, features: pd.DataFrame) -> ModelSignature:
    """Inputs from the specs (every feature required, string or double, whatever the example's
    missing values), outputs inferred from the model's output on the example."""
    inputs = Schema(
        [ColSpec("string" if s.kind == "categorical" else "double", s.name) for s in model.specs]
    )
    outputs = infer_signature(features, model.predict(None, features)).outputs
    return ModelSignature(inputs=inputs, outputs=outputs)


def _write_artefacts(folder: Path, model: LoanRiskModel) -> dict[str, str]:
    paths = {k: folder / v for k, v in ARTEFACTS.items()}
    model.booster.save_model(str(paths["booster"]))
    _write_json(paths["calibrator"], model.calibrator.to_dict())
    _write_json(paths["features"], [asdict(s) for s in model.specs])
    _write_json(paths["categories"], model.categories)
    _write_json(paths["scoring"], model.scoring.model_dump(mode="json"))
    _write_json(paths["reference"], model.reference)
    return {k: str(p) for k, p in paths.items()}


def _read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=1, default=str))
