"""Two Delta engines, one table format: delta-rs and Spark read each other's tables.

Every test compares whole frames (values and dtypes) at pinned versions, so a type that one
engine writes and the other reads differently (timestamps, int widths, nulls) fails here.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from deltalake import write_deltalake

from mlops_assets.core.spark import spark_session
from mlops_assets.core.spark_tables import SparkDeltaEngine
from mlops_assets.core.tables import DeltaRsEngine, TableNotFoundError
from mlops_assets.resources import Lakehouse

pytestmark = pytest.mark.spark


def typed_frame(start: int, rows: int = 3) -> pd.DataFrame:
    """Rows ``start..start+rows-1`` covering every column type the project stores."""
    ids = np.arange(start, start + rows, dtype="int64")
    return pd.DataFrame(
        {
            "id": ids,
            "count32": (ids * 10).astype("int32"),
            "amount": [np.nan if i % 3 == 1 else i * 1.5 for i in ids],
            "is_fraud": ids % 2 == 0,
            "merchant": [None if i % 3 == 2 else f"m{i}" for i in ids],
            "seen_at": pd.to_datetime(ids * 3_600_123_456_789, utc=True),
            "local_time": pd.to_datetime(ids * 60_000_001_000),
            "day": [dt.date(2024, 1, 1) + dt.timedelta(days=int(i)) for i in ids],
        }
    )


def stored(frame: pd.DataFrame) -> pd.DataFrame:
    """What a Delta table returns for ``frame``: timestamps in microseconds, rows by id."""
    microseconds = {"seen_at": "datetime64[us, UTC]", "local_time": "datetime64[us]"}
    return frame.astype(microseconds).sort_values("id", ignore_index=True)


def assert_same(left: pd.DataFrame, right: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(
        left.sort_values("id", ignore_index=True), right.sort_values("id", ignore_index=True)
    )


@pytest.fixture()
def engines(spark: Any, tmp_path: Path) -> tuple[DeltaRsEngine, SparkDeltaEngine]:
    root = str(tmp_path / "lake")
    return DeltaRsEngine(root), SparkDeltaEngine(root, spark)


def test_delta_rs_tables_read_identically_on_spark_at_every_version(
    engines: tuple[DeltaRsEngine, SparkDeltaEngine],
) -> None:
    rs, spark = engines
    rs.write("t", typed_frame(0), mode="overwrite")
    rs.write("t", typed_frame(3))

    both = pd.concat([typed_frame(0), typed_frame(3)])
    for version, expected in ((0, typed_frame(0)), (1, both)):
        from_spark = spark.read("t", version)
        assert_same(from_spark, stored(expected))
        assert_same(from_spark, rs.read("t", version))
    assert_same(spark.read("t"), stored(both))
    assert spark.latest_version("t") == rs.latest_version("t") == 1
    assert [c.version for c in spark.history("t")] == [c.version for c in rs.history("t")]


def test_spark_tables_read_identically_on_delta_rs_at_every_version(
    engines: tuple[DeltaRsEngine, SparkDeltaEngine],
) -> None:
    rs, spark = engines
    assert spark.write("t", typed_frame(0), mode="overwrite").version == 0
    assert spark.write("t", typed_frame(3)).version == 1
    assert spark.write("t", typed_frame(10, rows=1), mode="overwrite").version == 2

    assert_same(rs.read("t", 0), stored(typed_frame(0)))
    assert_same(rs.read("t", 1), stored(pd.concat([typed_frame(0), typed_frame(3)])))
    assert_same(rs.read("t"), stored(typed_frame(10, rows=1)))
    for version in (0, 1):
        assert_same(rs.read("t", version), spark.read("t", version))
    assert rs.latest_version("t") == 2
    assert [c.operation for c in rs.history("t")] == ["WRITE"] * 3


def test_interleaved_commits_read_each_others_checkpoints(
    engines: tuple[DeltaRsEngine, SparkDeltaEngine], tmp_path: Path
) -> None:
    rs, spark = engines
    uri = rs.uri("t")
    # A checkpoint every 2 commits: Spark writes them at even versions, delta-rs after odd ones.
    write_deltalake(uri, typed_frame(0, rows=1), configuration={"delta.checkpointInterval": "2"})
    for version, writer in enumerate([spark, spark, rs, rs, spark], start=1):
        assert writer.write("t", typed_frame(version, rows=1)).version == version

    log = tmp_path / "lake" / "t" / "_delta_log"
    checkpoints = sorted(path.name[:20] for path in log.glob("*.checkpoint.parquet"))
    assert checkpoints == [f"{2:020d}", f"{3:020d}"]  # 2 by Spark, 3 by delta-rs
    everything = stored(pd.concat([typed_frame(v, rows=1) for v in range(6)]))
    for engine in (rs, spark):
        assert engine.latest_version("t") == 5
        assert_same(engine.read("t"), everything)  # from delta-rs's checkpoint 3
        assert_same(engine.read("t", 2), everything.iloc[:3])  # from Spark's checkpoint 2
    assert [c.version for c in spark.history("t")] == [5, 4, 3, 2, 1, 0]


def test_spark_appends_to_delta_rs_tables_whose_names_it_could_not_create(
    engines: tuple[DeltaRsEngine, SparkDeltaEngine],
) -> None:
    rs, spark = engines
    rs.write("t", pd.DataFrame({"amount eur": [1.0], "emp.var.rate": [1.1]}), mode="overwrite")
    assert spark.write("t", pd.DataFrame({"amount eur": [2.0], "emp.var.rate": [2.2]})).version == 1
    assert rs.read("t").sort_values("amount eur")["emp.var.rate"].tolist() == [1.1, 2.2]


def test_concurrent_appends_from_both_engines_all_land(
    engines: tuple[DeltaRsEngine, SparkDeltaEngine],
) -> None:
    rs, spark = engines
    rs.write("t", typed_frame(0, rows=1), mode="overwrite")
    versions: dict[str, list[int]] = {"rs": [], "spark": []}
    errors: list[BaseException] = []

    def append(label: str, engine: Any, first_id: int) -> None:
        try:
            for offset in range(3):
                ref = engine.write("t", typed_frame(first_id + offset, rows=1))
                versions[label].append(ref.version)
        except BaseException as error:  # surfaced below, with the thread's traceback
            errors.append(error)

    threads = [
        threading.Thread(target=append, args=("rs", rs, 100)),
        threading.Thread(target=append, args=("spark", spark, 200)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert sorted(versions["rs"] + versions["spark"]) == [1, 2, 3, 4, 5, 6]
    assert versions["rs"] == sorted(versions["rs"])
    assert versions["spark"] == sorted(versions["spark"])
    ids = [0, 100, 101, 102, 200, 201, 202]
    for engine in (rs, spark):
        assert sorted(engine.read("t")["id"].tolist()) == ids
    assert_same(rs.read("t", 4), spark.read("t", 4))


def test_lakehouse_resource_selects_the_engine_by_configuration(spark: Any, tmp_path: Path) -> None:
    root = str(tmp_path / "lake")
    embedded = Lakehouse(root=root).tables()
    lakehouse = Lakehouse(root=root, engine="spark", spark_master="local[2]", spark_conf={})
    scaled = lakehouse.tables()
    assert isinstance(embedded, DeltaRsEngine) and embedded.root == root
    assert isinstance(scaled, SparkDeltaEngine) and scaled.root == root
    assert scaled.spark is spark and lakehouse.spark_session() is spark  # one per process

    scaled.write("t", typed_frame(0), mode="overwrite")
    assert_same(embedded.read("t", 0), stored(typed_frame(0)))
    with pytest.raises(ValueError, match="sc://host:port"):
        Lakehouse(root=root, engine="spark", spark_remote="http://spark:15002").tables()


@pytest.fixture()
def connect_url(spark: Any) -> Iterator[str]:
    """A Spark Connect server inside the test JVM (Delta-enabled), on a free local port."""
    jvm = spark.sparkContext._jvm
    context = spark.sparkContext._jsc.sc()
    context.conf().set("spark.connect.grpc.binding.address", "127.0.0.1")
    context.conf().set("spark.connect.grpc.binding.port", "0")
    package = jvm.org.apache.spark.sql.connect.service
    service = getattr(getattr(package, "SparkConnectService$"), "MODULE$")  # the Scala object
    service.start(context)
    try:
        yield f"sc://127.0.0.1:{service.localPort()}"
    finally:
        service.stop(jvm.scala.Option.empty(), jvm.scala.Option.empty())


@pytest.mark.slow
def test_spark_connect_sessions_share_tables_with_delta_rs(
    connect_url: str, spark: Any, tmp_path: Path
) -> None:
    root = str(tmp_path / "lake")
    rs = DeltaRsEngine(root)
    remote = spark_session(remote=connect_url)
    try:
        assert type(remote).__module__.startswith("pyspark.sql.connect")
        connect = Lakehouse(root=root, engine="spark", spark_remote=connect_url).tables()
        assert isinstance(connect, SparkDeltaEngine) and connect.spark is remote

        rs.write("t", typed_frame(0), mode="overwrite")
        assert connect.write("t", typed_frame(3)).version == 1
        assert_same(connect.read("t", 0), rs.read("t", 0))
        assert_same(rs.read("t"), stored(pd.concat([typed_frame(0), typed_frame(3)])))
        assert connect.latest_version("t") == 1
        with pytest.raises(TableNotFoundError, match="no version 5"):
            connect.read("t", 5)
    finally:
        remote.stop()
    assert spark_session(master="local[2]") is spark  # the classic session is untouched
