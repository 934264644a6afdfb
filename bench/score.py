"""Benchmark of batch scoring (not a test; run on demand).

    .venv/bin/python bench/score.py                  # 1M loans x 60 features
    .venv/bin/python bench/score.py --rows 200000    # a quicker look
    .venv/bin/python bench/score.py --keep           # reuse bench/out/score-<rows> next time
    .venv/bin/python bench/score.py --why-rows 10000 # reason-code paths on the first 10k only

Builds a synthetic feature matrix (Parquet, 55 numeric + 5 categorical features) and a
LightGBM PD model (500 trees, depth <= 6, trained on 50k other rows, calibrated, logged to a
throwaway MLflow sqlite store), then, each in a fresh subprocess so that peak RSS is its own:
  e2e        `run_score` end to end without reason codes (read Parquet in chunks, prepare,
             predict, calibrate, tiers, write Parquet, drift, early-warning list, summary)
  e2e+why    the same with 3 reason codes per loan (tree SHAP via pred_contrib)
  predict    raw `booster.predict` on the same rows already in memory and prepared: the limit
  contrib    raw `booster.predict(pred_contrib=True)` on the same rows: the floor for e2e+why
  cli        the whole `loanrisk score ... -o scoring.reasons_top_k=0` command as a user runs it,
             timed from outside: interpreter start, imports, config, model load, scoring, files
and prints rows/s, peak RSS and the ratios the issue sets goals for (e2e and cli >= 0.5x
predict; e2e+why <= 1.2x the contrib time). Tree SHAP is ~70x a prediction for this model, so
the two reason-code paths can run on the first --why-rows loans only (their own Parquet file).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

N_NUMERIC, N_CATEGORICAL = 55, 5
LEVELS = [f"level_{i}" for i in range(8)]
TRAIN_ROWS = 50_000


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rows", type=int, default=1_000_000, help="loans in the portfolio")
    p.add_argument("--trees", type=int, default=500, help="boosting rounds of the model")
    p.add_argument("--chunk-rows", type=int, default=200_000, help="scoring.chunk_rows")
    p.add_argument("--keep", action="store_true", help="keep and reuse the generated files")
    p.add_argument("--why-rows", type=int, default=None, help="loans for e2e+why and contrib")
    p.add_argument(
        "--measure", choices=["e2e", "e2e+why", "predict", "contrib"], help=argparse.SUPPRESS
    )
    p.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    a = p.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if a.measure:
        out = _measure(a)
        out["peak_rss_mb"] = peak_rss_mib()
        print(json.dumps(out))
        return

    folder = ROOT / "bench" / "out" / f"score-{a.rows}"
    if not (a.keep and (folder / "model.json").exists()):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        t = time.perf_counter()
        write_portfolio(folder / "portfolio.parquet", a.rows, seed=1)
        model_uri = train_and_log(folder, a.trees)
        (folder / "model.json").write_text(json.dumps({"uri": model_uri}))
        took = time.perf_counter() - t
        print(f"built a {a.rows:,}-loan matrix and a {a.trees}-tree model in {took:.0f} s")
    why_rows = min(a.why_rows or a.rows, a.rows)
    # Only the first rows pass through this process: a child's peak RSS starts from its
    # parent's at fork time on Linux (getrusage), so the parent stays small.
    first = next(pq.ParquetFile(folder / "portfolio.parquet").iter_batches(batch_size=why_rows))
    pq.write_table(pa.Table.from_batches([first]), folder / "why.parquet")
    results = {}
    for m in ("predict", "e2e", "contrib", "e2e+why"):
        cmd = [sys.executable, __file__, "--measure", m, "--dir", str(folder),
               "--chunk-rows", str(a.chunk_rows)]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode:
            sys.exit(f"{m} failed:\n{done.stderr[-3000:]}")
        results[m] = json.loads(done.stdout.strip().splitlines()[-1])
    results["cli"] = _measure_cli(folder, a.chunk_rows)
    _report(results, a, why_rows)
    if not a.keep:
        shutil.rmtree(folder, ignore_errors=True)


def peak_rss_mib() -> float:
    """This process's peak RSS since exec: VmHWM (Linux); getrusage's ru_maxrss would carry
    the parent's peak over the fork."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _report(r: dict, a: argparse.Namespace, why_rows: int) -> None:
    threads = os.environ["OMP_NUM_THREADS"]
    print(f"\nscoring loans x {N_NUMERIC + N_CATEGORICAL} features, {a.trees} trees, "
          f"chunks of {a.chunk_rows:,}, OMP_NUM_THREADS={threads}")  # fmt: skip
    print(f"{'path':<10} {'loans':>10} {'seconds':>8} {'rows/s':>10} {'peak RSS MiB':>13}")
    for m, v in r.items():
        n = why_rows if m in ("contrib", "e2e+why") else a.rows
        rate = n / v["seconds"]
        print(f"{m:<10} {n:>10,} {v['seconds']:>8.2f} {rate:>10,.0f} {v['peak_rss_mb']:>13,.0f}")
    ratio = r["predict"]["seconds"] / r["e2e"]["seconds"]
    whole = r["predict"]["seconds"] / r["cli"]["seconds"]
    why = r["e2e+why"]["seconds"] / r["contrib"]["seconds"]
    print(f"e2e rate / predict rate: {ratio:.2f} (goal >= 0.5)")
    print(f"cli rate / predict rate: {whole:.2f} (goal >= 0.5; the whole command)")
    print(f"e2e+why time / pred_contrib time: {why:.2f} (goal <= 1.2)")


def _measure_cli(folder: Path, chunk_rows: int) -> dict:
    """The `loanrisk score` command in a fresh process, wall-clock from outside, with its own
    peak RSS."""
    uri = json.loads((folder / "model.json").read_text())["uri"]
    overrides = [f"mlflow.tracking_uri=sqlite:///{folder / 'mlruns.db'}",
                 "scoring.reasons_top_k=0", f"scoring.chunk_rows={chunk_rows}"]  # fmt: skip
    cmd = [sys.executable, "-m", "pipeline.cli", "-q", "score",
           "--input", str(folder / "portfolio.parquet"),
           "--out", str(folder / "scores-cli.parquet"), "--model", uri,
           *[x for o in overrides for x in ("-o", o)]]  # fmt: skip
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=folder)
    err = proc.stderr.read().decode()
    # wait4: this child's own rusage (RUSAGE_CHILDREN would give the largest earlier child's)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        sys.exit(f"cli failed:\n{err[-3000:]}")
    return {"seconds": seconds, "peak_rss_mb": usage.ru_maxrss / 1024}


def write_portfolio(path: Path, n: int, seed: int) -> pd.DataFrame:
    df = _matrix(n, seed)
    df.to_parquet(path, index=False, row_group_size=100_000)
    return df


def _matrix(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, N_NUMERIC))
    X[rng.random((n, N_NUMERIC)) < 0.03] = np.nan
    cols = {"loan_id": np.arange(n, dtype=np.int64), "snapshot_date": pd.Timestamp("2024-12-01")}
    cols.update({f"num_{j:02d}": X[:, j] for j in range(N_NUMERIC)})
    codes = rng.integers(0, len(LEVELS), size=(n, N_CATEGORICAL))
    for j in range(N_CATEGORICAL):
        cols[f"cat_{j}"] = pd.Series(np.asarray(LEVELS)[codes[:, j]], dtype="str")
    z = -3 + np.nan_to_num(X[:, :10]) @ np.linspace(0.8, 0.1, 10) + 0.3 * (codes[:, 0] == 1)
    cols["label"] = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(int)
    return pd.DataFrame(cols)


def train_and_log(folder: Path, trees: int) -> str:
    import lightgbm as lgb
    import mlflow

    from pipeline.config import ScoringConfig
    from pipeline.core.metadata import FeatureSpec
    from pipeline.modelling.calibration import fit_calibrator
    from pipeline.modelling.matrix import categories_of, to_model_frame
    from pipeline.modelling.model import build_reference, log_model

    specs = [FeatureSpec(f"num_{j:02d}", "repayment", f"Numeric {j}") for j in range(N_NUMERIC)]
    specs += [
        FeatureSpec(f"cat_{j}", "customer_loan", f"Category {j}", kind="categorical")
        for j in range(N_CATEGORICAL)
    ]
    train = _matrix(TRAIN_ROWS, seed=2)
    cats = categories_of(train, specs)
    X = to_model_frame(train, specs, cats)
    params = {"objective": "binary", "num_threads": 1, "verbose": -1, "num_leaves": 31,
              "max_depth": 6, "min_data_in_leaf": 20, "learning_rate": 0.03, "seed": 1}  # fmt: skip
    booster = lgb.train(params, lgb.Dataset(X, train["label"]), num_boost_round=trees)
    raw = booster.predict(X)
    cal, _ = fit_calibrator(train["label"], raw, "platt")
    mlflow.set_tracking_uri(f"sqlite:///{folder / 'mlruns.db'}")
    exp = mlflow.create_experiment("bench-score", artifact_location=(folder / "art").as_uri())
    with mlflow.start_run(experiment_id=exp):
        ref = build_reference(X, cal.apply(raw), ScoringConfig())
        info = log_model(booster, cal, specs, cats, ScoringConfig(), ref, train)
    return info.model_uri


def _measure(a: argparse.Namespace) -> dict:
    import mlflow

    from pipeline.config import Config, MlflowConfig, ScoringConfig

    uri = json.loads((a.dir / "model.json").read_text())["uri"]
    tracking = f"sqlite:///{a.dir / 'mlruns.db'}"
    if a.measure in ("predict", "contrib"):
        from pipeline.scoring.core import load_scoring_model

        mlflow.set_tracking_uri(tracking)
        model = load_scoring_model(uri).model
        src = "why.parquet" if a.measure == "contrib" else "portfolio.parquet"
        X = model.prepare(pd.read_parquet(a.dir / src))
        t = time.perf_counter()
        model.booster.predict(X, pred_contrib=a.measure == "contrib")
        return {"seconds": time.perf_counter() - t}
    from pipeline.scoring.run import run_score

    top_k = 3 if a.measure == "e2e+why" else 0
    cfg = Config(
        mlflow=MlflowConfig(tracking_uri=tracking),
        scoring=ScoringConfig(chunk_rows=a.chunk_rows, reasons_top_k=top_k),
    )
    t = time.perf_counter()
    src = a.dir / ("why.parquet" if top_k else "portfolio.parquet")
    s = run_score(src, a.dir / f"scores-{top_k}.parquet", uri, cfg=cfg)
    return {"seconds": time.perf_counter() - t, "n": s.n_loans, "alerts": len(s.drift_alerts)}


if __name__ == "__main__":
    main()
