"""The pipeline's stages, one module each, each a function first and a command second:
ingest, features, train, evaluate, explain, report. The later three work on a `RunContext`."""
