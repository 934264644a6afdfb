"""MLflow: the tracking store and provenance (`tracking`), and the run context that names one
training run for the stages that work on it (`context`)."""
