from __future__ import annotations

import gzip
import json
import socket
import time
from pathlib import Path

import pandas as pd
import pytest

from mlops_assets.core import readers
from mlops_assets.core.sources import (
    FileSource,
    LoadedSource,
    OpenMLSource,
    SourceError,
    SyntheticSource,
    TargetSpec,
    expected_target,
    expected_types,
    load_source,
)
from mlops_assets.core.synthetic import DriftSpec

CLASS = TargetSpec("Class", "1")


@pytest.fixture()
def offline(monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    """Make every outgoing TCP connection fail at once, as on a machine without network."""
    attempts: list[tuple] = []

    def unreachable(address, timeout=None, *args, **kwargs):
        attempts.append((address, timeout))
        raise OSError(101, "Network is unreachable")

    monkeypatch.setattr(socket, "create_connection", unreachable)
    return attempts


def _fetch_never(data_id: int, data_home: Path) -> pd.DataFrame:
    raise AssertionError("fetch must not be called when OpenML is unreachable")


def test_openml_offline_falls_back_to_synthetic_fast_and_says_why(
    tmp_path: Path, offline: list
) -> None:
    source = OpenMLSource(cache_dir=str(tmp_path), fallback=SyntheticSource(rows=500, seed=1))
    started = time.perf_counter()
    loaded = load_source(source, fetch=_fetch_never)
    assert time.perf_counter() - started < 5
    assert offline and offline[0][0] == ("api.openml.org", 443) and offline[0][1] == 3.0
    assert loaded.kind == "synthetic"
    assert loaded.fallback_reason and "OpenML unreachable" in loaded.fallback_reason
    assert "Network is unreachable" in loaded.description
    assert "used synthetic" in loaded.description
    assert len(loaded.frame) == 500 and loaded.target == CLASS


def test_openml_offline_without_fallback_fails_clearly(tmp_path: Path, offline: list) -> None:
    source = OpenMLSource(cache_dir=str(tmp_path), fallback=None)
    with pytest.raises(SourceError, match="OpenML unreachable.*no fallback source configured"):
        load_source(source, fetch=_fetch_never)


def test_openml_fallback_refused_when_target_differs(tmp_path: Path, offline: list) -> None:
    source = OpenMLSource(cache_dir=str(tmp_path), data_id=31, target=TargetSpec("class", "bad"))
    with pytest.raises(SourceError, match="cannot stand in"):
        load_source(source, fetch=_fetch_never)


def test_openml_fetch_error_falls_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("mlops_assets.core.sources.openml_reachable", lambda *a, **k: None)

    def broken(data_id: int, data_home: Path) -> pd.DataFrame:
        raise ConnectionError("HTTP 503 from OpenML")

    source = OpenMLSource(cache_dir=str(tmp_path), fallback=SyntheticSource(rows=100))
    loaded = load_source(source, fetch=broken)
    assert loaded.kind == "synthetic" and "HTTP 503" in loaded.description


def test_openml_cache_checksum_is_recorded_verified_and_used_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("mlops_assets.core.sources.openml_reachable", lambda *a, **k: None)
    frame = pd.DataFrame({"V1": [0.1, 0.2], "Class": pd.Categorical(["0", "1"])})
    calls: list[Path] = []

    def fetch(data_id: int, data_home: Path) -> pd.DataFrame:
        calls.append(data_home)
        return frame.copy()

    source = OpenMLSource(cache_dir=str(tmp_path))
    first = load_source(source, fetch=fetch)
    assert first.kind == "openml" and "OpenML data 1597" in first.description
    marker = tmp_path / "openml" / "data-1597.sha256.json"
    recorded = json.loads(marker.read_text())
    assert recorded["data_id"] == 1597 and len(recorded["sha256"]) == 64
    assert calls == [tmp_path / "openml"]

    # With a cache present, no network probe happens (sklearn reads its own cache).
    monkeypatch.setattr(
        "mlops_assets.core.sources.openml_reachable",
        lambda *a, **k: pytest.fail("probe must be skipped when cached"),
    )
    assert load_source(source, fetch=fetch).frame.equals(frame)

    marker.write_text(json.dumps({"data_id": 1597, "sha256": "0" * 64}))
    with pytest.raises(SourceError, match="does not match checksum"):
        load_source(source, fetch=fetch)


def test_synthetic_source_and_drift() -> None:
    loaded = load_source(SyntheticSource(rows=300, seed=2, drift=DriftSpec(shift={"V1": 1.0})))
    assert loaded.kind == "synthetic" and "with drift" in loaded.description
    assert loaded.fallback_reason is None and loaded.seconds >= 0
    assert expected_target(SyntheticSource()) == CLASS
    assert expected_types(SyntheticSource())["Amount"] == "float"


def test_csv_parquet_and_gzip_files(tmp_path: Path) -> None:
    frame = pd.DataFrame({"a": [1.5, 2.5, None], "b": ["x", "", "z"], "y": ["no", "yes", "no"]})
    frame.to_csv(tmp_path / "t.csv", sep=";", index=False)
    frame.to_csv(tmp_path / "t.csv.gz", index=False, compression="gzip")
    frame.to_parquet(tmp_path / "t.parquet")
    target = TargetSpec("y", "yes")
    for name, delimiter in (("t.csv", ";"), ("t.csv.gz", ","), ("t.parquet", ",")):
        loaded = load_source(FileSource(str(tmp_path / name), target, delimiter=delimiter))
        assert isinstance(loaded, LoadedSource) and loaded.kind == "file"
        assert list(loaded.frame.columns) == ["a", "b", "y"]
        assert loaded.frame["y"].tolist() == ["no", "yes", "no"]
        assert pd.isna(loaded.frame["a"].iloc[2])
    csv = load_source(FileSource(str(tmp_path / "t.csv"), target, delimiter=";"))
    assert pd.isna(csv.frame["b"].iloc[1])  # empty string is a missing value
    dropped = load_source(FileSource(str(tmp_path / "t.csv.gz"), target, drop_columns=("b",)))
    assert list(dropped.frame.columns) == ["a", "y"]


def test_real_bank_and_marketing_files(shared_data: Path) -> None:
    bank = load_source(
        FileSource(
            str(shared_data / "bank-additional-full.csv"),
            TargetSpec("y", "yes"),
            delimiter=";",
            drop_columns=("duration",),
        )
    )
    assert bank.frame.shape == (41_188, 20)
    assert (bank.frame["y"] == "yes").sum() == 4_640
    assert bank.frame["job"].dtype == object
    marketing = load_source(
        FileSource(
            str(shared_data / "marketing_campaign.csv"), TargetSpec("Response", "1"), delimiter="\t"
        )
    )
    assert marketing.frame.shape == (2_240, 29)
    assert marketing.frame["Income"].isna().sum() == 24
    assert marketing.frame["Response"].sum() == 334


def test_real_credit_card_gzip_slice(shared_data: Path, tmp_path: Path) -> None:
    # A small slice of the real file, re-gzipped, keeps the test fast.
    with gzip.open(shared_data / "creditcard.csv.gz", "rt") as handle:
        lines = [next(handle) for _ in range(2_001)]
    path = tmp_path / "slice.csv.gz"
    with gzip.open(path, "wt") as handle:
        handle.writelines(lines)
    loaded = load_source(FileSource(str(path), CLASS))
    assert loaded.frame.shape == (2_000, 31)
    assert (
        list(loaded.frame.columns[:2]) == ["Time", "V1"] and loaded.frame["Class"].dtype == "int64"
    )


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.csv", None, "missing.csv: does not exist"),
        ("empty.csv", "", "empty.csv: is empty"),
        ("header.csv", "a,b,Class\n", "header.csv: has no data rows"),
        ("short.csv", "a,b,Class\n1,2,0\n3,4", r"short.csv: truncated or malformed CSV.*'Class'"),
        ("long.csv", "a,b,Class\n1,2,0,9\n3,4,1\n", "long.csv: truncated or malformed CSV"),
        ("broken.parquet", "not parquet", "broken.parquet: not a readable Parquet file"),
    ],
)
def test_bad_files_fail_naming_file_and_problem(
    tmp_path: Path, name: str, content: str | None, message: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(SourceError, match=message):
        load_source(FileSource(str(path), CLASS))


def test_truncated_gzip_fails_naming_file(tmp_path: Path) -> None:
    path = tmp_path / "cut.csv.gz"
    payload = gzip.compress(("a,b,Class\n" + "1.0,2.0,0\n" * 20_000).encode())
    path.write_bytes(payload[: len(payload) // 2])
    with pytest.raises(SourceError, match="cut.csv.gz: truncated or corrupt"):
        load_source(FileSource(str(path), CLASS))


def test_missing_target_or_drop_column_names_them(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(SourceError, match=r"t.csv, column 'Class': target column not found"):
        load_source(FileSource(str(path), CLASS))
    with pytest.raises(SourceError, match=r"drop column\(s\) \['zz'\] not found"):
        load_source(FileSource(str(path), TargetSpec("a", "1"), drop_columns=("zz",)))


def test_a_hanging_name_lookup_is_bounded_by_the_probe_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import threading

    release = threading.Event()

    def hang(*args, **kwargs):
        release.wait(10)
        raise OSError("late")

    monkeypatch.setattr(socket, "create_connection", hang)
    started = time.perf_counter()
    reason = readers.openml_reachable(0.2)
    release.set()
    assert time.perf_counter() - started < 2
    assert reason is not None and "no answer from api.openml.org:443 within 0.2 s" in reason
