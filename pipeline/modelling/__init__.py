"""The model: the modelling data set and its out-of-time split, Optuna tuning of LightGBM,
calibration, the logistic baseline, the MLflow pyfunc that returns PD, the data a model was
built on (lineage), the promotion gate, the registry and champion alias, and the refits behind
SHAP stability."""
