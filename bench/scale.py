"""The cost curve: time and peak memory of every stage against the size of the book (on demand).

    .venv/bin/python bench/scale.py                                  # small and default
    .venv/bin/python bench/scale.py --sizes small,default,large --spark small,default
    .venv/bin/python bench/scale.py --sizes small,default,large,xlarge --trials 20

Per size (the simulator's `generate.size` presets, or a customer count), in a folder of its
own under bench/out/scale-<size> with its own MLflow store: generate, ingest, features (DuckDB,
and Spark at the sizes given to --spark), train, evaluate, explain, the effect study and score,
each as the `loanrisk` command a user runs, in a subprocess whose peak RSS is read from its own
rusage (os.wait4). Prints a table (seconds and peak GiB per stage and size, with the
loan-snapshot rows of the feature matrix) and, per stage, the growth exponent k of
time ~ rows^k fitted over the sizes it ran at (least squares on logs): k near 1 is linear; the
stage with the largest time at the largest size bounds what one machine takes. Each command
pays its own start-up (imports, reading the data: a few seconds), which `loanrisk run` pays once.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
LOANRISK = [sys.executable, "-m", "pipeline.cli"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--sizes", default="small,default", help="comma-separated sizes")
    p.add_argument("--trials", type=int, default=20, help="train.n_trials (the default config's)")
    p.add_argument(
        "--spark", default="", help="comma-separated sizes at which `features` also runs on Spark"
    )
    p.add_argument("--keep", action="store_true", help="keep each size's folder afterwards")
    a = p.parse_args()
    sizes = [s.strip() for s in a.sizes.split(",") if s.strip()]
    results: dict[str, dict[str, tuple[float, float]]] = {}
    rows: dict[str, int] = {}
    for size in sizes:
        folder = OUT / f"scale-{size}"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        spark = size in {x.strip() for x in a.spark.split(",")}
        results[size], rows[size] = run_size(size, folder, a.trials, spark)
        if not a.keep:
            shutil.rmtree(folder, ignore_errors=True)
    print_table(sizes, results, rows)


def run_size(
    size: str, folder: Path, trials: int, spark: bool
) -> tuple[dict[str, tuple[float, float]], int]:
    """{stage: (seconds, peak GiB)} and the feature matrix's rows for one book size."""
    ov = overrides(folder) + [f"train.n_trials={trials}"]
    stages: dict[str, list[str]] = {
        "generate": ["generate", "--out", str(folder / "raw"), "--size", size],
        "ingest": ["ingest", *flags(ov)],
        "features": ["features", *flags(ov)],
    }
    if spark:
        stages["features (spark)"] = ["features", *flags([*ov, "features.engine=spark"])]
    stages |= {
        "train": ["train", *flags(ov)],
        "evaluate": ["evaluate", *flags(ov)],
        "explain": ["explain", *flags(ov)],
        "effects": ["effects", *flags(ov)],
        "score": [
            "score",
            "--input",
            str(folder / "raw"),
            "--out",
            str(folder / "scores" / "portfolio.parquet"),
            # the version train registered (its own store): a small book's model may lose to
            # the baseline and not become champion, and the cost is the same
            "--model",
            "models:/loanrisk/1",
            *flags(ov),
        ],
    }
    out: dict[str, tuple[float, float]] = {}
    for stage, args in stages.items():
        seconds, peak = measure([*LOANRISK, "-q", *args], folder / f"{stage}.log")
        out[stage] = (seconds, peak)
        print(f"{size:>8} {stage:<17} {seconds:8.1f} s {peak:6.2f} GiB", flush=True)
    matrix = next((folder / "features").glob("**/*.parquet"), None)
    n = pq.ParquetFile(matrix).metadata.num_rows if matrix is not None else 0
    return out, n


def measure(cmd: list[str], log: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (GiB) of one command; its output goes to `log`."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with log.open("w") as sink:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd[2:])} failed ({proc.returncode}); see {log}")
    return seconds, usage.ru_maxrss / 2**20  # kB on Linux


def overrides(folder: Path) -> list[str]:
    return [
        f"data.raw_dir={folder / 'raw'}",
        f"data.interim_dir={folder / 'interim'}",
        f"data.features_dir={folder / 'features'}",
        f"output.reports_dir={folder / 'reports'}",
        f"output.scores_dir={folder / 'scores'}",
        f"mlflow.tracking_uri=sqlite:///{folder / 'mlruns.db'}",
        f"mlflow.artifact_location={folder / 'mlartifacts'}",
    ]


def flags(ov: list[str]) -> list[str]:
    return [x for kv in ov for x in ("-o", kv)]


def growth_exponent(n: list[int], seconds: list[float]) -> float:
    """k of seconds ~ n^k, least squares on logs; NaN with fewer than two sizes."""
    if len(n) < 2:
        return float("nan")
    return float(np.polyfit(np.log(n), np.log(seconds), 1)[0])


def print_table(
    sizes: list[str], results: dict[str, dict[str, tuple[float, float]]], rows: dict[str, int]
) -> None:
    stages = list(dict.fromkeys(st for s in sizes for st in results[s]))
    head = "| stage | " + " | ".join(f"{s} ({rows[s]:,} rows)" for s in sizes) + " | k |"
    print("\n" + head)
    print("|" + " --- |" * (len(sizes) + 2))
    for stage in stages:
        ran = [s for s in sizes if stage in results[s]]
        cells = [
            f"{results[s][stage][0]:.1f} s, {results[s][stage][1]:.2f} GiB" if s in ran else "-"
            for s in sizes
        ]
        k = growth_exponent([rows[s] for s in ran], [results[s][stage][0] for s in ran])
        print(f"| {stage} | " + " | ".join(cells) + f" | {k:.2f} |")
    total = {s: sum(v[0] for k, v in results[s].items() if "spark" not in k) for s in sizes}
    print("| total (DuckDB) | " + " | ".join(f"{total[s]:.0f} s" for s in sizes) + " | |")
    if any("spark" in k for s in sizes for k in results[s]):
        print("(Spark's peak GiB is the Python driver's: the JVM it starts is not counted.)")


if __name__ == "__main__":
    main()
