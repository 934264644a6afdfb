"""The feature engine as it was before the prefix-sum / portable-SQL rewrite (main at 4a6c341),
kept verbatim so that `bench/features.py` times today's engine and the new one in the same run
on the same book. Not part of the package; only the imports between these three files changed."""
