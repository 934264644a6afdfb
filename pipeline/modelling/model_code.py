"""MLflow "models from code" entry: MLflow runs this file to build the model at load time.

The class lives in pipeline.modelling.model; its state comes from the logged artefacts
(load_context).
"""

from mlflow.models import set_model

from pipeline.modelling.model import LoanRiskModel

set_model(LoanRiskModel())
