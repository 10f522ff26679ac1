from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import orjson
import pytest
from deltalake import DeltaTable

from mlops_assets.core.delta_log_sink import DeltaLogSink
from mlops_assets.core.inference_log import decode_batch
from mlops_assets.serving.log_writer import InferenceLog, LogSaturatedError
from mlops_assets_tests.core.test_inference_log import feedback, prediction


def make_log(tmp_path: Path, **kwargs) -> InferenceLog:
    options = {"segment_bytes": 64 << 10, "flush_interval_s": 0.05, **kwargs}
    return InferenceLog(tmp_path / "wal", str(tmp_path / "lake"), **options)


def rows(tmp_path: Path, table: str) -> list[str]:
    path = tmp_path / "lake" / table
    if not path.exists():
        return []
    return DeltaTable(str(path)).to_pyarrow_table().column("request_id").to_pylist()


def crash(log: InferenceLog) -> None:
    """What a kill -9 leaves: the mover killed, the WAL's folder unlocked, nothing drained."""
    with log._lock:
        log._stopping = True
        log._stopped.set()
    log._process.kill()
    log._process.wait()
    log._watcher.join(5)
    log.wal.close()


def append_all(log: InferenceLog, payloads: list[bytes]) -> list[int]:
    async def run() -> list[int]:
        return await asyncio.gather(*(log.append(payload) for payload in payloads))

    return asyncio.run(run())


def test_records_reach_both_tables_and_segments_are_released(tmp_path: Path) -> None:
    log = make_log(tmp_path)
    assert log.open() == 0
    lsns = append_all(
        log, [prediction(0, f"r{i}").payload for i in range(30)] + [feedback(0, ("r1", 1)).payload]
    )
    assert sorted(lsns) == list(range(1, 32))
    deadline = time.monotonic() + 10
    while log.stats().committed_lsn < 31 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert log.stats().backlog_records == 0
    assert log.close() is True
    assert sorted(rows(tmp_path, "inference_log")) == sorted(f"r{i}" for i in range(30))
    assert rows(tmp_path, "feedback") == ["r1"]


def test_restart_moves_what_the_crash_left_exactly_once(tmp_path: Path) -> None:
    log = make_log(tmp_path, flush_interval_s=3600, batch_records=10**6)
    log.open()
    append_all(log, [prediction(0, f"a{i}").payload for i in range(10)])
    append_all(log, [feedback(0, ("a3", 1)).payload])
    crash(log)  # durable in the WAL, nothing moved to Delta
    app_id = log.wal.app_id
    sink = DeltaLogSink(str(tmp_path / "lake"), app_id)
    first = decode_batch(log.wal.open()[:6])  # a crash right after a partial Delta commit
    sink.append("inference_log", first.predictions, first.last_lsn)
    log.wal.close()
    again = make_log(tmp_path)
    assert again.open() == 5  # records 7..11 still had to go (feedback is record 11)
    assert again.close() is True
    assert sorted(rows(tmp_path, "inference_log")) == sorted(f"a{i}" for i in range(10))
    assert rows(tmp_path, "feedback") == ["a3"]
    third = make_log(tmp_path)  # nothing left: no duplicates on yet another restart
    assert third.open() == 0
    third.close()
    assert len(rows(tmp_path, "inference_log")) == 10


def test_full_backlog_refuses_records_until_delta_catches_up(tmp_path: Path) -> None:
    record = prediction(0, "x").payload
    log = make_log(
        tmp_path, flush_interval_s=3.0, batch_records=10**6, max_backlog_bytes=3 * len(record)
    )
    log.open()
    append_all(log, [record] * 3)
    assert log.saturated
    with pytest.raises(LogSaturatedError, match="backlog is full"):
        append_all(log, [record])
    deadline = time.monotonic() + 10
    while log.saturated and time.monotonic() < deadline:
        time.sleep(0.05)
    assert append_all(log, [record]) == [4]
    log.close()
    assert len(rows(tmp_path, "inference_log")) == 4


def test_delta_failures_are_retried_and_reported(tmp_path: Path) -> None:
    (tmp_path / "lake").write_text("not a folder")  # the lakehouse root cannot be created
    log = make_log(tmp_path)
    log.open()
    append_all(log, [prediction(0, "y").payload])
    deadline = time.monotonic() + 10
    while log.stats().delta_failures == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    stats = log.stats()
    assert stats.delta_failures >= 1 and stats.backlog_records == 1 and stats.last_error
    assert log.close(drain_timeout_s=0.5) is False  # not drained: still safe in the WAL
    (tmp_path / "lake").unlink()
    again = make_log(tmp_path)
    assert again.open() == 1
    assert again.close() is True
    assert rows(tmp_path, "inference_log") == ["y"]


def test_undecodable_records_are_quarantined_not_blocking(tmp_path: Path) -> None:
    log = make_log(tmp_path)
    log.open()
    append_all(log, [orjson.dumps({"k": "?"}), prediction(0, "ok").payload])
    assert log.close() is True
    assert rows(tmp_path, "inference_log") == ["ok"]
    assert len(list((tmp_path / "wal" / "quarantine").glob("*.json"))) == 1


def wait_for(condition, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
    return condition()


def test_the_mover_is_a_separate_process_restarted_when_it_dies(tmp_path: Path) -> None:
    log = make_log(tmp_path)
    log.open()
    first = log._process
    assert first.pid != os.getpid() and first.poll() is None
    append_all(log, [prediction(0, "before").payload])
    assert wait_for(lambda: log.stats().committed_lsn == 1)
    first.kill()
    assert wait_for(lambda: log.stats().mover_restarts == 1 and log._process is not first)
    append_all(log, [prediction(0, "after").payload])
    assert wait_for(lambda: log.stats().committed_lsn == 2)
    assert log.close() is True
    assert sorted(rows(tmp_path, "inference_log")) == ["after", "before"]


def test_the_mover_stops_at_once_without_moving_when_its_server_is_gone(tmp_path: Path) -> None:
    log = make_log(tmp_path, flush_interval_s=3600, batch_records=10**6)
    log.open()
    append_all(log, [prediction(0, f"k{i}").payload for i in range(3)])
    with log._lock:  # as after a kill -9 of the server: no restart, no drain request
        log._stopping = True
    os.close(log._control)  # the mover sees the end of its control pipe
    log._control = -1
    assert log._process.wait(5) == 0
    assert rows(tmp_path, "inference_log") == []
    log._watcher.join(5)
    log.wal.close()
    again = make_log(tmp_path)
    assert again.open() == 3
    assert again.close() is True
    assert sorted(rows(tmp_path, "inference_log")) == ["k0", "k1", "k2"]
