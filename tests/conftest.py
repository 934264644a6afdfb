"""Shared test set-up: small data, one LightGBM thread, MLflow in a temporary store."""

from __future__ import annotations

import os

# Two shared cores: oversubscribed OpenMP threads slow LightGBM down tenfold.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
