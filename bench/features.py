"""Benchmark of the feature build (not a test; run on demand).

    .venv/bin/python bench/features.py                        # 10M repayments, 5M CRM events
    .venv/bin/python bench/features.py --size 0.2             # 2M repayments, 1M CRM events
    .venv/bin/python bench/features.py --repayments 2000000 --crm 1000000 --freq monthly
    .venv/bin/python bench/features.py --keep                  # reuse bench/out/<size> next time
    .venv/bin/python bench/features.py --size 0.2 --threads 1 # the families on one thread
    .venv/bin/python bench/features.py --size 0.2 --repeat 5  # medians of 5 runs of each
    .venv/bin/python bench/features.py --interim data/interim --spark local[2]
                                        # the book `make train` made (default config), and Spark

Generates a synthetic book with a vectorised numpy generator (Parquet in bench/out/<size>/),
then, each in a fresh subprocess so that peak RSS is its own:
  engine   the build_features code path end to end (Parquet views -> sorted pandas matrix),
           timed per step: stage (typed tables, loan status, grid, the rows sorted with their
           static columns), fetch (DuckDB sorts the CRM events, then the instalments, into
           numpy/Arrow, while the pool works on the CRM family's chunks), families (the rest of
           the two families' chunks, the tasks of one pool of --threads workers), assemble (the
           features derived in numpy, pandas)
  today    the engine as it was before the portable rewrite (a verbatim copy in
           bench/features_today/), the reference "N x faster than today" is measured against
  limit    the floor: the fastest formulation known of the same repayment + CRM aggregates
           (prefix sums: the engine's staging and array code, `engine.aggregates`) from the
           same Parquet files into numpy, without the features' derivation or pandas. (Until
           issue 20 the limit was one hand-written range-join query, the same algorithm as the
           engine then: 6-15 s on --size 0.2, slower than the engine now.)
  spark    (--spark MASTER) the Spark engine in one session: its start, then --spark-builds
           builds of the matrix as `loanrisk features --engine spark` makes it (the book's
           facts, the partitions' builds, the partitioned Parquet written and read back as
           the sorted pandas matrix); the first pays the JVM's and the workers' warm-up, the
           later ones are what a running session (a cluster's, a notebook's) pays
and prints events/s, peak RSS, the today / engine speed-up and the engine / limit ratio.
`--repeat N` runs today's engine and the engine N times each, one after the other in turn, and
reports the run of median time of each with every pair's ratio: on this machine one build's
time varies by 15-30% from run to run (fresh memory costs what the host makes it cost), which
one pair cannot tell from a change.
`--check` also compares the engine's matrix with today's value by value (one more run of each).
`--interim DIR` measures a folder of validated tables instead (e.g. the default book that
`make train` ingested into data/interim), with the default config's snapshots.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))  # features_today: today's engine, the reference

from pipeline.core.contract import CRM_CHANNELS, CRM_TYPES  # noqa: E402

START = np.datetime64("2018-01-01")
END = np.datetime64("2025-01-01")  # extraction date: the data end is the day before + 1
TERMS = np.array([12, 24, 36, 48, 60])
CHANNELS = np.array(CRM_CHANNELS)
TYPES = np.array(CRM_TYPES)
TYPE_P = np.array([0.30, 0.05, 0.25, 0.10, 0.03, 0.02, 0.25])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--size",
        type=float,
        default=1.0,
        help="scale of the default book (1 = 10M repayments + 5M CRM events)",
    )
    p.add_argument("--repayments", type=int, help="repayment rows (overrides --size)")
    p.add_argument("--crm", type=int, help="CRM events (overrides --size)")
    p.add_argument("--freq", choices=["monthly", "quarterly"], default="quarterly")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeat", type=int, default=1, help="runs of today's engine and the engine")
    p.add_argument("--memory-limit", default="4GB")
    p.add_argument("--keep", action="store_true", help="reuse generated data when present")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--check", action="store_true", help="also compare the matrix with today's engine's"
    )
    p.add_argument(
        "--spark",
        metavar="MASTER",
        help="also time the Spark engine on this master, e.g. local[2] (Parquet in and out)",
    )
    p.add_argument("--spark-builds", type=int, default=4, help="Spark builds in one session")
    p.add_argument(
        "--interim", type=Path, help="a folder of validated tables to measure (no generation)"
    )
    p.add_argument(
        "--measure", choices=["engine", "today", "limit", "spark"], help=argparse.SUPPRESS
    )
    p.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    a = p.parse_args()
    a.repayments = a.repayments or int(10_000_000 * a.size)
    a.crm = a.crm or int(5_000_000 * a.size)
    if a.measure:
        if a.measure == "spark":
            out = _measure_spark(a)
        elif a.measure == "limit":
            out = _measure_limit(a)
        else:
            out = _measure_engine(a, a.measure)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        out["peak_rss_mb"] = usage.ru_maxrss / 1024
        # CPU seconds of the whole process (data views, imports and all): less sensitive to
        # other jobs on the machine than wall time, and wall >= cpu / threads
        out["cpu"] = usage.ru_utime + usage.ru_stime
        print(json.dumps(out))
        return

    folder = a.interim or ROOT / "bench" / "out" / f"r{a.repayments}_c{a.crm}_s{a.seed}"
    if a.interim is None and not (a.keep and (folder / "crm_interactions.parquet").exists()):
        t = time.perf_counter()
        n = generate(folder, a.repayments, a.crm, a.seed)
        print(f"generated {n} in {time.perf_counter() - t:.1f} s -> {folder}")
    events = sum(
        pq.ParquetFile(folder / f"{t}.parquet").metadata.num_rows
        for t in ("repayments", "crm_interactions")
    )
    with open("/proc/loadavg") as f:
        a.load = " ".join(f.read().split()[:3])

    def measure(mode: str) -> dict:
        cmd = [
            sys.executable,
            __file__,
            "--measure",
            mode,
            "--dir",
            str(folder),
            "--freq",
            a.freq,
            "--threads",
            str(a.threads),
            "--memory-limit",
            a.memory_limit,
            *(["--spark", a.spark, "--spark-builds", str(a.spark_builds)] if a.spark else []),
            *(["--interim", str(a.interim)] if a.interim else []),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode:
            sys.exit(f"{mode} failed:\n{proc.stderr}")
        return json.loads(proc.stdout.strip().splitlines()[-1])

    runs: dict[str, list[dict]] = {"today": [], "engine": []}
    for _ in range(max(1, a.repeat)):
        for mode in runs:
            runs[mode].append(measure(mode))
    results = {mode: sorted(r, key=lambda x: x["seconds"])[len(r) // 2] for mode, r in runs.items()}
    for mode in ("limit", *(["spark"] if a.spark else [])):
        results[mode] = measure(mode)
    if a.repeat > 1:
        pairs = zip(runs["today"], runs["engine"], strict=True)
        ratios = [t["seconds"] / e["seconds"] for t, e in pairs]
        print(
            f"{a.repeat} runs each, in turn: today "
            + ", ".join(f"{r['seconds']:.2f}" for r in runs["today"])
            + " s; engine "
            + ", ".join(f"{r['seconds']:.2f}" for r in runs["engine"])
            + f" s; each pair's speed-up {min(ratios):.2f}-{max(ratios):.2f}x (the medians below)"
        )
    _report(results, events, a)
    if a.spark:
        sp, engine = results["spark"], results["engine"]["seconds"]
        later = sorted(sp["builds"][1:])
        steady = later[len(later) // 2] if later else float("nan")
        print(
            f"spark engine on {a.spark} ({sp['partitions']} partitions, {sp['rows']:,} rows): "
            f"session start {sp['start']:.1f} s; builds "
            + ", ".join(f"{b:.2f}" for b in sp["builds"])
            + f" s\n    first build {sp['builds'][0] / engine:.1f}x the DuckDB engine's time, "
            f"later builds (median) {steady / engine:.1f}x (goal <= 3); driver peak RSS "
            f"{sp['peak_rss_mb']:.0f} MB (the JVM's and the workers' memory not counted)"
        )
        floor = sum(sp["floor"].values())
        print(
            f"    Spark's floor (after the builds): {floor:.2f} s = "
            + ", ".join(f"{k} {v:.2f} s" for k, v in sp["floor"].items())
            + f"; {floor / engine:.1f}x the DuckDB engine's time"
        )
    if a.check:
        _check(a, folder)


def _report(results: dict, events: int, a: argparse.Namespace) -> None:
    e, lim, today = results["engine"], results["limit"], results["today"]
    print(
        f"\nbook: {events:,} events (repayments + CRM), {a.freq} snapshots, "
        f"{a.threads} threads, memory limit {a.memory_limit}"
    )
    print(
        f"engine: {e['seconds']:.2f} s, {e['rows']:,} rows x {e['columns']} columns, "
        f"{e['snapshots']} snapshots, {events / e['seconds'] / 1e6:.2f} M events/s, "
        f"peak RSS {e['peak_rss_mb']:.0f} MB, process CPU {e['cpu']:.2f} s"
    )
    for step, sec in e["steps"].items():
        print(f"    {step:<10} {sec:6.2f} s")
    print(
        f"today's engine (bench/features_today): {today['seconds']:.2f} s, "
        f"{events / today['seconds'] / 1e6:.2f} M events/s, "
        f"peak RSS {today['peak_rss_mb']:.0f} MB, process CPU {today['cpu']:.2f} s"
    )
    for step, sec in today["steps"].items():
        print(f"    {step:<10} {sec:6.2f} s")
    print(f"speed-up engine vs today: {today['seconds'] / e['seconds']:.2f}x (goal >= 3)")
    with open("/proc/loadavg") as f:  # the speed-up shrinks when other jobs take the cores
        print(f"load average before the runs: {a.load}, after: {' '.join(f.read().split()[:3])}")
    print(
        f"limit (prefix-sum aggregates -> numpy, no derivation or pandas): "
        f"{lim['seconds']:.2f} s, {lim['rows']:,} rows, "
        f"{events / lim['seconds'] / 1e6:.2f} M events/s, peak RSS {lim['peak_rss_mb']:.0f} MB"
    )
    print(f"ratio engine / limit: {e['seconds'] / lim['seconds']:.2f} (goal <= 1.5)")


# -- the synthetic book ------------------------------------------------------------------------


def generate(folder: Path, n_repayments: int, n_crm: int, seed: int) -> str:
    """Write customers, loans, repayments and crm_interactions Parquet files; about
    `n_repayments` instalment rows and exactly `n_crm` CRM events."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    span_months = int((END.astype("M8[M]") - START.astype("M8[M]")).astype(int))
    # loans until the instalments present (due before END) reach the target
    guess = int(n_repayments / 20) + 1000
    orig_month = rng.integers(0, span_months - 1, guess)
    term = rng.choice(TERMS, guess)
    present = np.minimum(term, span_months - 1 - orig_month)
    keep = np.searchsorted(np.cumsum(present), n_repayments) + 1
    orig_month, term, present = orig_month[:keep], term[:keep], present[:keep]
    n_loans = len(term)
    n_cust = max(1, int(n_loans / 1.4))
    cust = rng.integers(1, n_cust + 1, n_loans)
    day = rng.integers(1, 29, n_loans)
    orig = (START.astype("M8[M]") + orig_month).astype("M8[D]") + (day - 1)
    principal = rng.integers(10, 400, n_loans) * 100.0
    rate = np.round(rng.uniform(0.03, 0.3, n_loans), 4)
    r = rate / 12
    payment = np.round(principal * r / (1 - (1 + r) ** -term), 2)
    loans = pa.table(
        {
            "loan_id": np.arange(1, n_loans + 1, dtype=np.int64),
            "customer_id": cust.astype(np.int64),
            "product": rng.choice(
                ["personal", "auto", "home_improvement", "credit_builder"], n_loans
            ),
            "origination_date": orig.astype("M8[us]"),
            "principal": principal,
            "term_months": term.astype(np.int64),
            "interest_rate": rate,
            "channel": rng.choice(["branch", "online", "broker"], n_loans),
        }
    )
    customers = pa.table(
        {
            "customer_id": np.arange(1, n_cust + 1, dtype=np.int64),
            "customer_since": (
                np.datetime64("2005-01-01") + rng.integers(0, 365 * 18, n_cust)
            ).astype("M8[us]"),
            "birth_year": pa.array(
                rng.integers(1950, 2003, n_cust), mask=rng.random(n_cust) < 0.03
            ),
            "annual_income": np.where(
                rng.random(n_cust) < 0.03, np.nan, rng.integers(15, 150, n_cust) * 1000.0
            ),
            "employment_type": rng.choice(
                ["salaried", "self_employed", "retired", "contractor"], n_cust
            ),
            "region": rng.choice(["north", "south", "east", "west", "central"], n_cust),
        }
    )

    # instalments: k = 1..present per loan
    loan_idx = np.repeat(np.arange(n_loans), present)
    starts = np.repeat(np.cumsum(present) - present, present)
    k = np.arange(len(loan_idx)) - starts + 1
    due = (START.astype("M8[M]") + orig_month[loan_idx] + k).astype("M8[D]") + (day[loan_idx] - 1)
    n = len(k)
    u = rng.random(n)
    offset = np.where(u < 0.85, -rng.integers(0, 6, n), rng.integers(1, 60, n))
    stop = np.where(rng.random(n_loans) < 0.06, rng.integers(1, 61, n_loans), 10_000)
    unpaid = k >= stop[loan_idx]
    paid = due + offset
    unpaid |= paid >= END
    share = np.where(rng.random(n) < 0.02, 0.5, 1.0)
    amount_due = payment[loan_idx]
    repayments = pa.table(
        {
            "loan_id": (loan_idx + 1).astype(np.int64),
            "installment_no": k.astype(np.int64),
            "due_date": due.astype("M8[us]"),
            "amount_due": amount_due,
            "paid_date": pa.array(paid.astype("M8[us]"), mask=unpaid),
            "amount_paid": np.where(unpaid, 0.0, np.round(amount_due * share, 2)),
        }
    )

    # CRM events: uniform over the period, customers weighted
    m = n_crm
    span_s = int((END - np.datetime64("2017-01-01")).astype("m8[s]").astype(np.int64))
    ts = np.datetime64("2017-01-01T00:00:00") + rng.integers(0, span_s, m).astype("m8[s]")
    etype = rng.choice(len(TYPES), m, p=TYPE_P)
    resolvable = np.isin(etype, [0, 1, 5])
    resolved = rng.random(m) < 0.75
    outbound = np.isin(etype, [2, 3, 6])
    order = np.argsort(ts, kind="stable")
    crm = pa.table(
        {
            "interaction_id": np.arange(1, m + 1, dtype=np.int64),
            "customer_id": rng.integers(1, n_cust + 1, m)[order].astype(np.int64),
            "timestamp": ts[order].astype("M8[us]"),
            "channel": CHANNELS[rng.integers(0, 6, m)][order],
            "type": TYPES[etype][order],
            "resolved": pa.array(resolved[order], mask=~resolvable[order]),
            "resolution_days": np.where(resolvable & resolved, rng.integers(0, 40, m), np.nan)[
                order
            ],
            "satisfaction": pa.array(rng.integers(1, 6, m), mask=rng.random(m) > 0.35),
            "nps": pa.array(rng.integers(0, 11, m), mask=rng.random(m) > 0.2),
            "direction": np.where(outbound, "outbound", "inbound")[order],
            "answered": pa.array((rng.random(m) < 0.6)[order], mask=~outbound[order]),
        }
    )
    for name, table in (
        ("customers", customers),
        ("loans", loans),
        ("repayments", repayments),
        ("crm_interactions", crm),
    ):
        pq.write_table(table, folder / f"{name}.parquet")
    return f"{n_cust:,} customers, {n_loans:,} loans, {n:,} repayments, {m:,} CRM events"


# -- measurements (each in its own process) -----------------------------------------------------


def _config(a: argparse.Namespace):
    from pipeline.config import Config, FeaturesConfig, load_config

    threads = {"duckdb_threads": a.threads, "duckdb_memory_limit": a.memory_limit}
    if a.interim:
        cfg = load_config(ROOT / "configs" / "default.yaml")
        return cfg.model_copy(update={"features": cfg.features.model_copy(update=threads)})
    return Config(features=FeaturesConfig(snapshot_freq=a.freq, **threads))


def _snapshots(a: argparse.Namespace) -> list[dt.date] | None:
    """The synthetic book's snapshots; None (the config's default range) for --interim."""
    from pipeline.features import snapshot_dates

    if a.interim:
        return None
    return snapshot_dates(dt.date(2019, 1, 1), dt.date(2025, 1, 1), a.freq)


def _measure_engine(a: argparse.Namespace, which: str = "engine") -> dict:
    frame, specs, steps, seconds = _build(a, a.dir, which)
    return {
        "seconds": seconds,
        "rows": len(frame),
        "columns": len(specs),
        "snapshots": int(frame["snapshot_date"].nunique()),
        "steps": steps,
    }


def _build(a: argparse.Namespace, folder: Path, which: str) -> tuple:
    """(matrix, specs, seconds per step, seconds) of `which` engine: "engine" or "today"."""
    if which == "today":
        from features_today.engine import _connection as connection
        from features_today.engine import build_on
    else:
        from pipeline.features.engine import build_on
        from pipeline.features.engine import duckdb_connection as connection

    cfg, snaps = _config(a), _snapshots(a)
    steps: dict[str, float] = {}
    t = time.perf_counter()
    with connection(cfg) as con:
        for name in ("customers", "loans", "repayments", "crm_interactions"):
            con.execute(
                f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{folder / name}.parquet')"
            )
        frame, specs = build_on(con, cfg, snaps, timings=steps)
    return frame, specs, steps, time.perf_counter() - t


def _check(a: argparse.Namespace, folder: Path) -> None:
    """Value-by-value comparison of the two matrices: max abs diff, NaN positions, row order."""
    import pandas as pd

    new = _build(a, folder, "engine")[0]
    old = _build(a, folder, "today")[0]
    pd.testing.assert_frame_equal(new, old, check_exact=False, rtol=0, atol=1e-9)
    numeric = [c for c in new.columns if new[c].dtype.kind == "f"]
    worst = max(float((new[c] - old[c]).abs().max()) for c in numeric)
    print(f"check: the matrices are equal ({len(new):,} rows, max abs diff {worst:g})")


def _measure_spark(a: argparse.Namespace) -> dict:
    import tempfile

    from pipeline.features.spark import (
        book_facts,
        partition_count,
        read_spark_matrix,
        read_tables,
        spark_matrix,
        spark_session,
        write_spark_matrix,
    )

    cfg, snaps = _config(a), _snapshots(a)
    t = time.perf_counter()
    builds = []
    with spark_session(a.spark) as spark, tempfile.TemporaryDirectory() as scratch:
        start = time.perf_counter() - t
        for i in range(max(1, a.spark_builds)):
            out = f"{scratch}/build{i}"
            t = time.perf_counter()
            matrix, levels = spark_matrix(spark, str(a.dir), cfg, snaps)
            write_spark_matrix(matrix, out)
            rows = len(read_spark_matrix(Path(out), levels))
            builds.append(time.perf_counter() - t)
        # Spark's floor: the same job with partitions that build nothing, then the write of the
        # last build's matrix (read back) and its reading as pandas
        t = time.perf_counter()
        empty, _ = spark_matrix(spark, str(a.dir), cfg, snaps, empty=True)
        empty.write.format("noop").mode("overwrite").save()
        job = time.perf_counter() - t
        t = time.perf_counter()
        write_spark_matrix(spark.read.parquet(out), f"{scratch}/again")
        write = time.perf_counter() - t
        t = time.perf_counter()
        read_spark_matrix(Path(f"{scratch}/again"), levels)
        read = time.perf_counter() - t
        events = book_facts(read_tables(spark, str(a.dir))).events
        parts = partition_count(
            events, spark.sparkContext.defaultParallelism, cfg.features.spark_partition_rows
        )
    return {
        "seconds": builds[0],
        "builds": builds,
        "start": start,
        "rows": rows,
        "partitions": parts,
        "floor": {"the job without builds": job, "the matrix's write": write, "pandas": read},
    }


def _measure_limit(a: argparse.Namespace) -> dict:
    """The floor: the fastest formulation known (prefix sums, the engine's array code) of the
    same aggregates, from the same Parquet files to numpy, without the features' derivation or
    pandas."""
    from pipeline.features.engine import aggregates, duckdb_connection

    cfg, snaps = _config(a), _snapshots(a)
    with duckdb_connection(cfg) as con:
        for name in ("customers", "loans", "repayments", "crm_interactions"):
            con.execute(
                f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{a.dir / (name + '.parquet')}')"
            )
        t = time.perf_counter()
        _, rows, parts, _ = aggregates(con, cfg, snaps)
        seconds = time.perf_counter() - t
    return {
        "seconds": seconds,
        "rows": rows.num_rows,
        "columns": sum(len(p) for p in parts.values()),
    }


if __name__ == "__main__":
    main()
