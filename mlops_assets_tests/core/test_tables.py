from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from mlops_assets.core.tables import DeltaRsEngine, TableNotFoundError


def test_write_read_and_time_travel(tmp_path: Path) -> None:
    engine = DeltaRsEngine(str(tmp_path / "lake"))
    first = engine.write("t", pd.DataFrame({"a": [1, 2]}), mode="overwrite")
    second = engine.write("t", pd.DataFrame({"a": [3]}))
    third = engine.write("t", pd.DataFrame({"a": [9]}), mode="overwrite")

    assert (first.version, second.version, third.version) == (0, 1, 2)
    assert engine.read("t", 0)["a"].tolist() == [1, 2]
    assert sorted(engine.read("t", 1)["a"].tolist()) == [1, 2, 3]
    assert engine.read("t")["a"].tolist() == [9]
    assert engine.latest_version("t") == 2
    assert [commit.version for commit in engine.history("t")] == [2, 1, 0]
    assert third.describe() == "t@v2"


def test_missing_table_and_version_name_the_table(tmp_path: Path) -> None:
    engine = DeltaRsEngine(str(tmp_path / "lake"))
    assert engine.latest_version("nope") is None
    with pytest.raises(TableNotFoundError, match="nope"):
        engine.read("nope")
    engine.write("t", pd.DataFrame({"a": [1]}))
    with pytest.raises(TableNotFoundError, match="no version 7"):
        engine.read("t", 7)


def test_lossy_append_is_refused_and_names_the_column(tmp_path: Path) -> None:
    engine = DeltaRsEngine(str(tmp_path / "lake"))
    engine.write("t", pd.DataFrame({"a": [1, 2]}), mode="overwrite")
    with pytest.raises(ValueError, match="column 'a' is int64 in the table but double"):
        engine.write("t", pd.DataFrame({"a": [1.5]}))
    widened = engine.write("t", pd.DataFrame({"a": [3.0], "b": ["new column"]}))
    assert widened.version == 1
    assert sorted(engine.read("t")["a"].tolist()) == [1, 2, 3]
    assert engine.latest_version("t") == 1


def test_write_returns_its_own_version(tmp_path: Path) -> None:
    engine = DeltaRsEngine(str(tmp_path / "lake"))
    refs = [engine.write("t", pd.DataFrame({"a": [i]})) for i in range(3)]
    assert [ref.version for ref in refs] == [0, 1, 2]
    assert sorted(engine.read("t", refs[1].version)["a"].tolist()) == [0, 1]


def test_nanosecond_timestamps_append_at_delta_microsecond_precision(tmp_path: Path) -> None:
    engine = DeltaRsEngine(str(tmp_path / "lake"))
    first = pd.Timestamp("2026-01-01 00:00:00.000001", tz="UTC")
    engine.write("t", pd.DataFrame({"at": [first]}), mode="overwrite")
    engine.write(
        "t", pd.DataFrame({"at": [pd.Timestamp("2026-01-01 00:00:00.000002789", tz="UTC")]})
    )
    stored = sorted(engine.read("t")["at"].tolist())
    assert stored[1] == pd.Timestamp("2026-01-01 00:00:00.000002", tz="UTC")
