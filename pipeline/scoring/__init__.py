"""Batch scoring of a portfolio: one shared core (`core`: the model, a chunk, input checks),
the drift summary and early-warning list, the local (pandas) and Spark engines, and `run_score`
(`run`), which `loanrisk score` calls."""
