"""A throwaway PostgreSQL server for tests: initdb in a temporary folder, trust auth, a free port
on 127.0.0.1, no Unix socket; stopped and removed afterwards.

The Debian server binaries are expected in PG_BIN (`.ci/run` installs the `postgresql` package
when they are missing). As root, the server runs as the `postgres` user: PostgreSQL refuses to
run as root.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.helpers import free_port

DEFAULT_BIN = Path("/usr/lib/postgresql/15/bin")


def _find_bin() -> Path:
    """LOANRISK_PG_BIN, else Debian's version 15, else the newest Debian server installed."""
    if os.environ.get("LOANRISK_PG_BIN"):
        return Path(os.environ["LOANRISK_PG_BIN"])
    if (DEFAULT_BIN / "initdb").exists():
        return DEFAULT_BIN
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0,
    )
    return found[-1].parent if found else DEFAULT_BIN


PG_BIN = _find_bin()
START_TIMEOUT_S = 60


@dataclass(frozen=True)
class PgServer:
    host: str
    port: int
    user: str
    start_seconds: float

    def url(self, database: str = "postgres", password: str | None = None) -> str:
        auth = f"{self.user}:{password}" if password else self.user
        return f"postgresql+psycopg://{auth}@{self.host}:{self.port}/{database}"


def missing_binaries(bin_dir: Path = PG_BIN) -> str | None:
    """Why the server cannot be started here from `bin_dir`, or None."""
    needed = [bin_dir / "initdb", bin_dir / "pg_ctl"]
    absent = [str(p) for p in needed if not os.access(p, os.X_OK)]
    if absent:
        return (
            f"PostgreSQL server binaries not found: {', '.join(absent)}. Install them with "
            "`apt-get install -y postgresql` (`.ci/run` does this when they are missing) or set "
            "LOANRISK_PG_BIN to the folder holding initdb and pg_ctl."
        )
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root needs `runuser` to start PostgreSQL as the postgres user"
    return None


@contextlib.contextmanager
def pg_server() -> Iterator[PgServer]:
    import time

    folder = Path(tempfile.mkdtemp(prefix="loanrisk-pg-"))
    data = folder / "data"
    as_user: list[str] = []
    if os.geteuid() == 0:
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(folder, "postgres", "postgres")
    port = free_port()
    start = time.perf_counter()
    started = False
    try:
        _run([*as_user, str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "loanrisk"])
        # TCP on 127.0.0.1 only, no Unix socket (its default folder may not exist), no fsync
        # (the data is thrown away).
        options = f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''"
        options += " -c fsync=off"
        _run(
            [
                *as_user,
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(data),
                "-o",
                options,
                "-l",
                str(folder / "server.log"),
                "-w",
                "-t",
                str(START_TIMEOUT_S),
                "start",
            ]
        )
        started = True
        yield PgServer("127.0.0.1", port, "loanrisk", time.perf_counter() - start)
    finally:
        if started:
            subprocess.run(
                [*as_user, str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                capture_output=True,
                timeout=60,
                check=False,
            )
        shutil.rmtree(folder, ignore_errors=True)


def _run(cmd: list[str]) -> None:
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({res.returncode}):\n{res.stdout}{res.stderr}")
