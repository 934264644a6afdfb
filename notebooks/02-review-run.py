# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python (loanrisk)
#     language: python
#     name: loanrisk
# ---

# %% [markdown]
# # 02 · Review the champion run
#
# The model that holds the registry alias (`mlflow.alias`, default `champion`), the run that
# trained it: its metrics, the evaluation plots, the SHAP tables, and a few loans scored with
# their reason codes. Everything comes from the MLflow store of the config
# (`LOANRISK_CONFIG`, default `configs/default.yaml`) and the feature matrix in
# `data.features_dir`, so run `make train` (or `loanrisk run`) first. Run from the repository
# root.

# %% tags=["parameters"]
import os
import warnings

# tqdm (via optuna) asks for ipywidgets; the notebooks need none.
warnings.filterwarnings("ignore", message="IProgress not found")

CONFIG = os.environ.get("LOANRISK_CONFIG", "configs/default.yaml")
N_LOANS = int(os.environ.get("LOANRISK_N_LOANS", "5"))  # loans to score at the end

# %%
from pathlib import Path

import mlflow
import pandas as pd
from IPython.display import Image, display
from mlflow import MlflowClient

from pipeline.core import catalogue
from pipeline.scoring.core import load_scoring_model, score_frame
from pipeline.config import load_config
from pipeline.runs.metric_names import flat_metrics

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # keep outputs short
cfg = load_config(CONFIG)
# The store of the config, set here and not at import time (see pipeline.runs.tracking).
mlflow.set_tracking_uri(cfg.mlflow.tracking_uri)
client = MlflowClient()
name, alias = cfg.mlflow.registered_model, cfg.mlflow.alias
champion = client.get_model_version_by_alias(name, alias)
run = client.get_run(champion.run_id)
print(f"{name}@{alias} = version {champion.version}, run {run.info.run_id}")
print(f"promotion: {champion.tags.get('promotion_reason', 'n/a')}")

# %% [markdown]
# ## Metrics
# Out-of-time test metrics first; `oracle_auc` (the AUC of the true probabilities) and
# `baseline_auc` (a logistic regression) exist on the simulated book.

# %%
# logged as test/auc, calibration/..., read back under the names metrics.json uses
run_metrics = pd.Series(flat_metrics(run.data.metrics), name="value").sort_index()
headline = ["test_auc", "test_gini", "test_ks", "test_brier", "oracle_auc", "baseline_auc"]
display(run_metrics.reindex([k for k in headline if k in run_metrics]).to_frame())
run_metrics.to_frame()

# %%
params = pd.Series(run.data.params, name="value")
params[params.index.str.startswith("best_")].to_frame()

# %% [markdown]
# ## Plots
# The evaluation and explanation figures logged with the run.

# %%
# Downloaded beside the run's other reports (reports/ is not versioned).
artefacts = Path(cfg.output.reports_dir) / run.info.run_id / "review"
artefacts.mkdir(parents=True, exist_ok=True)
for folder in ("evaluation", "explain"):
    local = Path(mlflow.artifacts.download_artifacts(
        run_id=run.info.run_id, artifact_path=folder, dst_path=str(artefacts)
    ))  # fmt: skip
    for png in sorted(local.glob("*.png")):
        print(f"{folder}/{png.name}")
        display(Image(filename=str(png)))

# %% [markdown]
# ## SHAP tables
# Mean |SHAP| per feature and per family (log-odds), the relationship factors with the
# direction the model found against the one expected, and on the simulated book the planted
# effects against what the model recovered.

# %%
shap_tables = {
    csv.stem: pd.read_csv(csv) for csv in sorted((artefacts / "explain").glob("*.csv"))
}
for table_name, table in shap_tables.items():
    print(table_name)
    display(table.head(15))

# %% [markdown]
# ## Score a few loans
# The champion scores the most recent snapshot of a few loans: PD, points, tier and the top
# reason codes (what pushes each PD up), as `loanrisk score` writes them.

# %%
model = load_scoring_model(f"models:/{name}@{alias}")
matrix = pd.read_parquet(Path(cfg.data.features_dir) / catalogue.FEATURES)
latest = matrix[matrix["snapshot_date"] == matrix["snapshot_date"].max()]
sample = latest.sort_values("loan_id").head(N_LOANS)
scored = score_frame(model, sample, top_k=cfg.scoring.reasons_top_k)
scored

# %%
print(f"scored {len(scored)} loans with {name} v{model.version} (run {run.info.run_id})")
