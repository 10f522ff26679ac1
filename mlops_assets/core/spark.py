"""Delta-enabled Spark sessions (classic or Spark Connect) and hyperopt ``SparkTrials``.

The Delta jars: the ``delta-spark`` 4.4.1 wheel has no 4.4.1 jar on Maven Central, so
``configure_spark_with_delta_pip`` (which asks for ``delta-spark_4.2_2.13:4.4.1``) fails. The
session pins the 4.4.0 connector built for Spark 4.2 / Scala 2.13 and excludes the transitive
jars pyspark already ships in newer versions (13 MB to download instead of 87 MB). Ivy keeps
them under the project state cache (``<state>/cache/ivy``), never under ``$HOME``; the first
session on a fresh machine downloads them from Maven Central, later ones resolve offline.

Local masters run Python workers with this interpreter (``PYSPARK_PYTHON``): pyspark 4 would
otherwise start ``python3`` from ``PATH``, which lacks the project's packages, and every
``SparkTrials`` trial would fail with ``No module named 'hyperopt'``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mlops_assets.core.paths import state_paths

if TYPE_CHECKING:
    from hyperopt import SparkTrials
    from pyspark.sql import SparkSession

DELTA_SPARK_PACKAGE = "io.delta:delta-spark_4.2_2.13:4.4.0"
# Transitive dependencies of the connector that pyspark 4.2 already ships (newer versions).
DELTA_JAR_EXCLUDES = (
    "com.fasterxml.jackson.core:jackson-annotations",
    "com.fasterxml.jackson.core:jackson-core",
    "com.fasterxml.jackson.core:jackson-databind",
    "com.github.luben:zstd-jni",
    "com.google.code.findbugs:jsr305",
    "commons-pool:commons-pool",
    "io.airlift:aircompressor",
    "org.apache.hadoop:hadoop-client-api",
    "org.apache.hadoop:hadoop-client-runtime",
    "org.apache.logging.log4j:log4j-api",
    "org.apache.logging.log4j:log4j-core",
    "org.apache.logging.log4j:log4j-slf4j2-impl",
    "org.apache.parquet:parquet-column",
    "org.apache.parquet:parquet-common",
    "org.apache.parquet:parquet-encoding",
    "org.apache.parquet:parquet-format-structures",
    "org.apache.parquet:parquet-hadoop",
    "org.apache.parquet:parquet-jackson",
    "org.roaringbitmap:RoaringBitmap",
    "org.slf4j:slf4j-api",
    "org.xerial.snappy:snappy-java",
    "org.locationtech.jts:jts-core",
)
DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"
DELTA_CATALOG = "org.apache.spark.sql.delta.catalog.DeltaCatalog"
# Runtime settings: valid on a classic session and on a Spark Connect session alike.
RUNTIME_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.databricks.delta.properties.defaults.enableDeletionVectors": "false",
    "spark.databricks.delta.properties.defaults.columnMapping.mode": "none",
    "spark.databricks.delta.properties.defaults.enableInCommitTimestamps": "false",
}


class SparkSessionError(RuntimeError):
    """Raised when the Spark session cannot serve as a Delta engine (or for SparkTrials)."""


def delta_spark_conf(
    master: str = "local[*]",
    remote: str | None = None,
    ivy_dir: str | None = None,
    app_name: str = "mlops_assets",
    driver_memory: str = "2g",
    shuffle_partitions: int = 4,
    extra_conf: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Return the Spark configuration of a Delta-enabled session (pure, starts nothing).

    Args:
        master: ``spark.master`` (``local[*]``, ``spark://host:7077``, ``yarn``, ...).
        remote: Spark Connect URL (``sc://host:port``); when set, ``master`` is ignored and
            only runtime settings are sent (the server owns jars and extensions).
        ivy_dir: Ivy cache for the Delta jars; default ``<state>/cache/ivy``.
        app_name: Application name shown in the Spark UI.
        driver_memory: ``spark.driver.memory`` of a local or client-mode driver.
        shuffle_partitions: ``spark.sql.shuffle.partitions`` (small suits one machine).
        extra_conf: Further settings, applied last (for example
            ``spark.driver.extraJavaOptions=-XX:TieredStopAtLevel=1``, which halves the JVM
            warm-up of short local sessions such as tests).

    Returns:
        Configuration keys and values for ``SparkSession.builder``.

    Raises:
        ValueError: When ``remote`` is not an ``sc://`` URL or ``master`` is empty.
    """
    conf = {**RUNTIME_CONF, "spark.sql.shuffle.partitions": str(shuffle_partitions)}
    extra = {str(key): str(value) for key, value in (extra_conf or {}).items()}
    if remote is not None:
        if not remote.startswith("sc://"):
            raise ValueError(f"Spark Connect remote must look like sc://host:port, got {remote!r}")
        return {**conf, **extra, "spark.remote": remote}
    if not master:
        raise ValueError("spark master is empty; use local[*], spark://host:port, yarn, ...")
    cache = state_paths().cache
    conf |= {
        "spark.master": master,
        "spark.app.name": app_name,
        "spark.jars.packages": DELTA_SPARK_PACKAGE,
        "spark.jars.excludes": ",".join(DELTA_JAR_EXCLUDES),
        "spark.jars.ivy": str(ivy_dir or cache / "ivy"),
        "spark.sql.extensions": DELTA_EXTENSION,
        "spark.sql.catalog.spark_catalog": DELTA_CATALOG,
        "spark.sql.warehouse.dir": str(cache / "spark-warehouse"),
        "spark.driver.memory": driver_memory,
        "spark.ui.showConsoleProgress": "false",
    }
    if master.startswith("local"):
        conf |= {
            "spark.ui.enabled": "false",
            "spark.driver.host": "127.0.0.1",
            "spark.driver.bindAddress": "127.0.0.1",
            # One partition for the replayed Delta log: halves small-table reads locally.
            "spark.databricks.delta.snapshotPartitions": "1",
        }
    return conf | extra


def is_connect(spark: Any) -> bool:
    """Return True when ``spark`` is a Spark Connect session (no SparkContext)."""
    return type(spark).__module__.startswith("pyspark.sql.connect")


def spark_session(
    master: str = "local[*]",
    remote: str | None = None,
    ivy_dir: str | None = None,
    app_name: str = "mlops_assets",
    driver_memory: str = "2g",
    log_level: str = "WARN",
    extra_conf: Mapping[str, str] | None = None,
) -> SparkSession:
    """Return the process's Delta-enabled Spark session, creating it on first use.

    The first classic session resolves the Delta jars from Maven Central into ``ivy_dir``;
    later calls return the same session (``getOrCreate``). Local masters run Python workers
    with this interpreter (``PYSPARK_PYTHON``), so hyperopt ``SparkTrials`` and UDFs see the
    project's packages. A Connect session is built with the Connect builder directly, so it
    does not switch the whole process into Connect mode.

    Args:
        master: ``spark.master`` for a classic session.
        remote: Spark Connect URL (``sc://host:port``); takes precedence over ``master``.
        ivy_dir: Ivy cache for the Delta jars; default ``<state>/cache/ivy``.
        app_name: Application name.
        driver_memory: ``spark.driver.memory``.
        log_level: JVM log level of a classic session.
        extra_conf: Further Spark settings, applied last.

    Returns:
        A classic or Spark Connect ``SparkSession`` with Delta enabled.

    Raises:
        SparkSessionError: When an already running classic session lacks the Delta extension.
    """
    conf = delta_spark_conf(master, remote, ivy_dir, app_name, driver_memory, extra_conf=extra_conf)
    if remote is not None:
        from pyspark.sql.connect.session import SparkSession as ConnectSession

        builder = ConnectSession.builder.remote(conf.pop("spark.remote"))
        return builder.config(map=conf).getOrCreate()
    from pyspark.sql import SparkSession

    if master.startswith("local"):
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    session = SparkSession.builder.config(map=conf).getOrCreate()
    extensions = session.sparkContext.getConf().get("spark.sql.extensions", "") or ""
    if DELTA_EXTENSION not in extensions:
        raise SparkSessionError(
            "a Spark session without Delta was already running in this process "
            f"(spark.sql.extensions={extensions!r}); stop it or start it with spark_session()"
        )
    session.sparkContext.setLogLevel(log_level)
    for key, value in RUNTIME_CONF.items():
        session.conf.set(key, value)
    return session


def spark_trials(
    parallelism: int, spark: SparkSession, timeout_s: int | None = None
) -> SparkTrials:
    """Return hyperopt ``SparkTrials`` running ``parallelism`` trials at once on ``spark``.

    Args:
        parallelism: Trials evaluated concurrently (Spark tasks).
        spark: A classic session from :func:`spark_session` (hyperopt needs a SparkContext).
        timeout_s: Optional wall-clock budget of the whole search.

    Returns:
        The trials object to pass to ``hyperopt.fmin``.

    Raises:
        SparkSessionError: For a Spark Connect session, which has no SparkContext.
        ValueError: When ``parallelism`` is below 1.
    """
    if parallelism < 1:
        raise ValueError(f"SparkTrials parallelism must be at least 1, got {parallelism}")
    if is_connect(spark):
        raise SparkSessionError(
            "hyperopt SparkTrials needs a classic SparkContext; a Spark Connect session "
            "cannot run it (use sequential Trials or a classic master)"
        )
    from hyperopt import SparkTrials

    return SparkTrials(parallelism=parallelism, timeout=timeout_s, spark_session=spark)
