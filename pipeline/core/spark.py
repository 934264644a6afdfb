"""The Spark session both Spark engines (features, scoring) run on.

Under spark-submit, a notebook or a test fixture the active session is used as it is (and not
stopped here); otherwise a local one is started on this interpreter: UI and console progress
off (they would overwrite our own progress bar), UTC, few shuffle partitions (200 by default
suit a cluster, not one machine's cores).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.core.errors import ConfigError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

PACKAGE_ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def spark_session(
    app: str,
    master: str = "local[1]",
    shuffle_partitions: int = 2,
    driver_memory: str | None = None,
) -> Iterator[SparkSession]:
    """The active session if there is one, else a new local one on `master`; `driver_memory`
    sets the local driver's heap (in local mode the driver is the executor)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise ConfigError("--engine spark needs pyspark: pip install 'loanrisk[spark]'") from None
    active = SparkSession.getActiveSession()
    if active is not None:
        yield active
        return
    builder = (
        SparkSession.builder.appName(app)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", str(shuffle_partitions))
        .config("spark.sql.session.timeZone", "UTC")
    )
    # Under spark-submit (which starts this driver through a gateway) the master and the
    # workers' environment are the cluster's; only a session of our own is set up here.
    if "PYSPARK_GATEWAY_PORT" not in os.environ:
        # The workers must run this interpreter (else: the system Python, without pandas)
        # and import this checkout's `pipeline` (the reason-code step unpickles the model).
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
        path = os.pathsep.join(p for p in (str(PACKAGE_ROOT), os.environ.get("PYTHONPATH")) if p)
        builder = (
            builder.master(master)
            .config("spark.executorEnv.PYTHONPATH", path)
            .config("spark.executorEnv.OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "1"))
        )
        if driver_memory:
            builder = builder.config("spark.driver.memory", driver_memory)
    spark = builder.getOrCreate()
    try:
        yield spark
    finally:
        spark.stop()
