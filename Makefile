# loanrisk: `make train` sets everything up and runs the job on the default data; `make test` tests.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CONFIG ?= configs/default.yaml
MLFLOW_URI ?= sqlite:///mlruns.db
PORT ?= 5000
PORTFOLIO ?= data/raw
SCORES ?= scores/portfolio_scores.parquet
# pytest-xdist workers; each test pins LightGBM to one thread. Files stay whole on one worker
# (--dist loadfile), so module fixtures (a trained tiny run) are built once.
TEST_WORKERS ?= 2

# OpenMP's wait policy is left at its default: passive waiting made `loanrisk train` on the
# default book 43-44 s against 25-29 s on an idle machine (README, "On a machine shared with
# other jobs"); the test suite sets it for its own processes (tests/conftest.py).

.PHONY: help setup train test test-fast lint ui score clean bench notebooks screenshots

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-8s\033[0m %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP) ## Create the virtualenv and install the package with its dev tools (pinned)

train: $(STAMP) ## Generate the default book when no data is configured, then run every stage
	$(BIN)/loanrisk run --config $(CONFIG)

test: $(STAMP) ## Run the whole test suite (unit and integration tiers) on TEST_WORKERS cores
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

test-fast: $(STAMP) ## Run the unit tier only (tests/unit)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder tests/unit

lint: $(STAMP) ## Ruff lint and format check, and the import contracts (layers, no cycles)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

# One uvicorn worker: MLflow's default four (plus job consumers) took about 45 s to serve on 2 cores.
ui: $(STAMP) ## Open the MLflow UI on the project's store (http://127.0.0.1:5000, PORT=...)
	@echo "open http://127.0.0.1:$(PORT)/#/?workflowType=machine_learning (MLflow 3 starts in its GenAI view otherwise)"
	$(BIN)/mlflow ui --backend-store-uri $(MLFLOW_URI) --host 127.0.0.1 --port $(PORT) --workers 1

# The kernel goes into the virtualenv (--sys-prefix), not the user's home: JupyterLab started
# from .venv and VS Code's picker find it, and removing .venv removes it.
notebooks: $(STAMP) ## Build the .ipynb of notebooks/*.py and register the `loanrisk` Jupyter kernel
	$(BIN)/python -m ipykernel install --sys-prefix --name loanrisk --display-name "Python (loanrisk)"
	$(BIN)/jupytext --sync notebooks/*.py

score: $(STAMP) ## Score a portfolio with the champion model (PORTFOLIO=..., SCORES=...)
	$(BIN)/loanrisk score --input $(PORTFOLIO) --out $(SCORES) --config $(CONFIG)

screenshots: $(STAMP) ## Screenshots of the latest run's report and MLflow run page (after make train)
	$(BIN)/python tools/screenshots.py --config $(CONFIG)

bench: $(STAMP) ## Run the benchmarks (minutes; prints their figures)
	for b in bench/*.py; do $(BIN)/python $$b; done

clean: ## Remove generated data, runs, reports and scores (keeps the virtualenv)
	rm -rf data mlruns.db mlartifacts reports scores .pytest_cache .ruff_cache
