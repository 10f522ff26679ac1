"""The Spark Delta engine on its own: session configuration, table operations, bad input.

Configuration and input-validation tests need no JVM; the rest share the session-scoped
``spark`` fixture (one local Spark for the whole run).
"""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path
from typing import Any

import pandas as pd
import pyspark
import pytest

from mlops_assets.core.paths import state_paths
from mlops_assets.core.spark import (
    DELTA_EXTENSION,
    DELTA_SPARK_PACKAGE,
    SparkSessionError,
    delta_spark_conf,
    spark_session,
    spark_trials,
)
from mlops_assets.core.spark_tables import SparkDeltaEngine
from mlops_assets.core.tables import TableNotFoundError


def test_conf_pins_a_delta_connector_built_for_this_pyspark(tmp_path: Path) -> None:
    conf = delta_spark_conf(master="local[2]", ivy_dir=str(tmp_path / "ivy"))

    spark_minor = ".".join(pyspark.__version__.split(".")[:2])
    delta_minor = ".".join(version("delta-spark").split(".")[:2])
    group, artifact, jar_version = DELTA_SPARK_PACKAGE.split(":")
    assert (group, artifact) == ("io.delta", f"delta-spark_{spark_minor}_2.13")
    assert jar_version.startswith(delta_minor + ".")
    assert conf["spark.jars.packages"] == DELTA_SPARK_PACKAGE
    assert conf["spark.jars.ivy"] == str(tmp_path / "ivy")
    assert conf["spark.sql.extensions"] == DELTA_EXTENSION
    assert conf["spark.sql.catalog.spark_catalog"].endswith("DeltaCatalog")
    assert conf["spark.sql.session.timeZone"] == "UTC"
    assert conf["spark.databricks.delta.properties.defaults.enableDeletionVectors"] == "false"
    assert conf["spark.master"] == "local[2]"


def test_conf_keeps_jars_and_warehouse_in_the_state_folder_by_default(state: Any) -> None:
    conf = delta_spark_conf()
    assert conf["spark.jars.ivy"] == str(state.cache / "ivy")
    assert conf["spark.sql.warehouse.dir"].startswith(str(state.root))
    assert str(Path.home()) not in conf["spark.jars.ivy"]


def test_conf_for_spark_connect_sends_only_runtime_settings() -> None:
    conf = delta_spark_conf(master="ignored", remote="sc://spark.example:15002")
    assert conf["spark.remote"] == "sc://spark.example:15002"
    assert not any(key.startswith(("spark.jars", "spark.master", "spark.driver")) for key in conf)
    assert conf["spark.sql.session.timeZone"] == "UTC"


def test_conf_applies_extra_settings_last() -> None:
    extra = {"spark.sql.shuffle.partitions": "9", "spark.executor.memory": "3g"}
    assert delta_spark_conf(extra_conf=extra).items() >= extra.items()
    remote = delta_spark_conf(remote="sc://h:1", extra_conf={"spark.remote": "sc://other:2"})
    assert remote["spark.remote"] == "sc://h:1"


def test_conf_rejects_bad_remote_and_master() -> None:
    with pytest.raises(ValueError, match="sc://host:port.*'http://spark:15002'"):
        delta_spark_conf(remote="http://spark:15002")
    with pytest.raises(ValueError, match="master is empty"):
        delta_spark_conf(master="")


@pytest.mark.parametrize(
    ("frame", "mode", "message"),
    [
        (pd.DataFrame({"": [1.0]}), "append", "table 'events': a column has an empty name"),
        (pd.DataFrame([[1, 2]], columns=["a", "a"]), "append", r"duplicate column names \['a'\]"),
        (pd.DataFrame({"u": pd.Series([1], dtype="uint64")}), "append", "column 'u'.*uint64"),
        (pd.DataFrame({"m": [1, "x"]}), "append", "table 'events'.*column m"),
        (pd.DataFrame({"a": [1]}), "upsert", "append or overwrite, not 'upsert'"),
    ],
)
def test_bad_frames_are_refused_before_spark_with_the_column_named(
    frame: pd.DataFrame, mode: Any, message: str
) -> None:
    engine = SparkDeltaEngine("/nowhere", spark=None)  # validation never reaches Spark
    with pytest.raises(ValueError, match=message):
        engine.write("events", frame, mode=mode)
    with pytest.raises(ValueError, match="non-empty folder name"):
        engine.uri("a/b")


@pytest.mark.spark
def test_spark_session_is_cached_delta_enabled_and_runs_workers_in_this_venv(spark: Any) -> None:
    assert spark_session(master="local[2]") is spark
    conf = spark.sparkContext.getConf()
    assert DELTA_EXTENSION in conf.get("spark.sql.extensions")
    assert conf.get("spark.jars.ivy").startswith(str(state_paths().root))
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"
    python = spark.sparkContext.parallelize([0], 1).map(lambda _: __import__("sys").executable)
    assert python.collect() == [__import__("sys").executable]


@pytest.mark.spark
def test_write_read_time_travel_and_history(spark: Any, tmp_path: Path) -> None:
    engine = SparkDeltaEngine(str(tmp_path / "lake"), spark)
    first = engine.write("t", pd.DataFrame({"a": [1, 2]}), mode="overwrite")
    second = engine.write("t", pd.DataFrame({"a": [3], "b": ["new column"]}))
    third = engine.write("t", pd.DataFrame({"a": [9]}), mode="overwrite")

    assert (first.version, second.version, third.version) == (0, 1, 2)
    assert engine.read("t", 0)["a"].tolist() == [1, 2]
    at_one = engine.read("t", 1).sort_values("a", ignore_index=True)
    assert at_one["a"].tolist() == [1, 2, 3]
    assert at_one["b"].tolist()[-1] == "new column" and at_one["b"].isna().sum() == 2
    assert engine.read("t").to_dict("list") == {"a": [9]}
    assert engine.latest_version("t") == 2
    history = engine.history("t")
    assert [commit.version for commit in history] == [2, 1, 0]
    assert {commit.operation for commit in history} == {"WRITE"}
    assert all(commit.timestamp_ms > 1_600_000_000_000 for commit in history)
    assert third.describe() == "t@v2" and third.uri == str(tmp_path / "lake" / "t")


@pytest.mark.spark
def test_missing_table_version_and_plain_folder_name_the_table(spark: Any, tmp_path: Path) -> None:
    engine = SparkDeltaEngine(str(tmp_path / "lake"), spark)
    assert engine.latest_version("nope") is None
    with pytest.raises(TableNotFoundError, match="nope.*does not exist"):
        engine.read("nope")
    with pytest.raises(TableNotFoundError, match="nope"):
        engine.history("nope")
    (tmp_path / "lake" / "plain").mkdir(parents=True)
    (tmp_path / "lake" / "plain" / "data.csv").write_text("a\n1\n")
    with pytest.raises(TableNotFoundError, match="plain.*does not exist"):
        engine.read("plain")
    engine.write("t", pd.DataFrame({"a": [1]}))
    with pytest.raises(TableNotFoundError, match="no version 7"):
        engine.read("t", 7)
    with pytest.raises(TableNotFoundError, match="no version -1"):
        engine.read("t", -1)
    assert engine.read("t", 0)["a"].tolist() == [1]


@pytest.mark.spark
def test_schema_problems_name_the_columns(spark: Any, tmp_path: Path) -> None:
    engine = SparkDeltaEngine(str(tmp_path / "lake"), spark)
    with pytest.raises(ValueError, match=r"table 'new': column names \['amount eur'\]"):
        engine.write("new", pd.DataFrame({"amount eur": [1.0], "ok": [1]}))
    assert engine.latest_version("new") is None

    engine.write("t", pd.DataFrame({"a": [1], "b": ["x"]}))
    with pytest.raises(ValueError, match="'a' is bigint in the table but double in the frame"):
        engine.write("t", pd.DataFrame({"a": [1.5], "b": ["y"]}))
    assert engine.read("t").to_dict("list") == {"a": [1], "b": ["x"]}  # v0 intact
    assert engine.latest_version("t") == 0


@pytest.mark.spark
@pytest.mark.slow
def test_spark_trials_runs_a_small_search_on_the_session(spark: Any) -> None:
    from hyperopt import STATUS_OK, fmin, hp, tpe

    def objective(x: float) -> dict[str, Any]:
        import hyperopt  # noqa: F401  (the worker must see the project's packages)

        return {"loss": (x - 1.0) ** 2, "status": STATUS_OK}

    trials = spark_trials(parallelism=2, spark=spark)
    best = fmin(
        objective,
        hp.uniform("x", -3, 3),
        algo=tpe.suggest,
        max_evals=4,
        trials=trials,
        show_progressbar=False,
    )
    assert len(trials.trials) == 4
    assert all(trial["result"]["status"] == STATUS_OK for trial in trials.trials)
    assert -3 <= best["x"] <= 3


def test_spark_trials_refuses_connect_sessions_and_bad_parallelism() -> None:
    class ConnectLike:
        pass

    ConnectLike.__module__ = "pyspark.sql.connect.session"
    with pytest.raises(SparkSessionError, match="classic SparkContext"):
        spark_trials(2, ConnectLike())
    with pytest.raises(ValueError, match="at least 1, got 0"):
        spark_trials(0, ConnectLike())
