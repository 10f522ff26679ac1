from __future__ import annotations

import asyncio
import os
import select
import time
from pathlib import Path

import pytest

from mlops_assets.serving.wal import WalError, WriteAheadLog
from mlops_assets.serving.wal_segments import HEADER, frame, scan_segment

SEGMENT = 64 << 10


def opened(folder: Path, **kwargs) -> tuple[WriteAheadLog, list]:
    wal = WriteAheadLog(folder, segment_bytes=SEGMENT, **kwargs)
    recovered = wal.open()
    wal.start()
    return wal, recovered


def test_records_survive_a_restart_in_order(tmp_path: Path) -> None:
    wal, recovered = opened(tmp_path)
    assert recovered == [] and wal.app_id.startswith("mlops-serve-")
    lsns = [wal.append_blocking(f"record {index}".encode()) for index in range(5)]
    assert lsns == [1, 2, 3, 4, 5]
    app_id = wal.app_id
    wal.close()
    again, recovered = opened(tmp_path)
    assert [record.lsn for record in recovered] == [1, 2, 3, 4, 5]
    assert recovered[3].payload == b"record 3"
    assert again.app_id == app_id
    assert again.append_blocking(b"next") == 6  # numbers are never reused
    again.close()


def test_group_commit_shares_one_fsync_between_concurrent_appends(tmp_path: Path) -> None:
    durable: list[int] = []
    wal, _ = opened(tmp_path, on_durable=lambda records: durable.extend(r.lsn for r in records))

    async def burst() -> list[int]:
        return await asyncio.gather(*(wal.append(b"x" * 200) for _ in range(200)))

    lsns = asyncio.run(burst())
    stats = wal.stats()
    wal.close()
    assert sorted(lsns) == list(range(1, 201)) and sorted(durable) == lsns
    assert stats.records == 200
    assert stats.fsyncs < 50, f"{stats.fsyncs} fsyncs for 200 concurrent records"


def test_torn_and_corrupt_tails_are_cut_at_the_last_valid_frame(tmp_path: Path) -> None:
    wal, _ = opened(tmp_path)
    for index in range(3):
        wal.append_blocking(b"payload-%d" % index)
    wal.close()
    segment = sorted(tmp_path.glob("wal-*.seg"))[0]
    data = bytearray(segment.read_bytes())
    second = HEADER.size + len(b"payload-0")
    data[second + HEADER.size + 2] ^= 0xFF  # flip a payload byte of record 2
    segment.write_bytes(bytes(data))
    assert [record.lsn for record in scan_segment(segment, 1)] == [1]
    again, recovered = opened(tmp_path)
    assert [record.payload for record in recovered] == [b"payload-0"]
    assert again.append_blocking(b"after") == 2  # the unacknowledged lsns are reused
    again.close()
    _, recovered = opened(tmp_path)
    assert [record.payload for record in recovered] == [b"payload-0", b"after"]


def test_segments_roll_and_are_released_once_committed(tmp_path: Path) -> None:
    wal, _ = opened(tmp_path)
    payload = b"y" * 10_000
    for _ in range(20):  # ~200 KB over 64 KiB segments
        wal.append_blocking(payload)
    segments = sorted(tmp_path.glob("wal-*.seg"))
    assert len(segments) >= 3
    wal.append_blocking(b"z" * (SEGMENT * 2))  # a record larger than a segment still fits
    assert wal.release_through(10) >= 1
    assert len(sorted(tmp_path.glob("wal-*.seg"))) < len(segments) + 2
    wal.close()
    _, recovered = opened(tmp_path)
    assert recovered[-1].payload == b"z" * (SEGMENT * 2)
    assert [record.lsn for record in recovered] == list(range(recovered[0].lsn, 22))
    assert recovered[0].lsn <= 11


def test_a_second_process_cannot_open_the_same_folder(tmp_path: Path) -> None:
    wal, _ = opened(tmp_path)
    pid = os.fork()
    if pid == 0:  # child: must be refused
        try:
            WriteAheadLog(tmp_path).open()
            os._exit(1)
        except WalError:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    wal.close()
    assert os.waitstatus_to_exitcode(status) == 0


def test_closed_log_refuses_and_min_next_lsn_is_respected(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path, segment_bytes=SEGMENT)
    wal.open()
    wal.start(min_next_lsn=42)
    assert wal.append_blocking(b"a") == 42
    wal.close()
    with pytest.raises(WalError, match="closed"):
        wal.append_blocking(b"b")
    again, recovered = opened(tmp_path)
    again.close()
    assert [record.lsn for record in recovered] == [42]


def test_a_failed_write_fails_its_waiters_and_every_later_append(tmp_path: Path) -> None:
    wal, _ = opened(tmp_path)
    os.close(wal._files.fd)  # the disk "fails": the next pwrite gets EBADF

    async def two_appends() -> list:
        return await asyncio.gather(wal.append(b"a"), wal.append(b"b"), return_exceptions=True)

    errors = asyncio.run(two_appends())
    assert all(isinstance(error, WalError) for error in errors)
    assert "write failed" in str(errors[0]) and wal.stats().failed
    with pytest.raises(WalError, match="failed earlier"):
        asyncio.run(wal.append(b"c"))
    wal._files.fd = -1  # already closed above
    wal.close()


def test_a_record_is_flushed_while_the_loop_is_still_busy(tmp_path: Path) -> None:
    """No lockstep: the first request's flush must not wait for the loop to score the others."""
    wal, _ = opened(tmp_path)
    answers = wal._helper.response_fd

    async def first_append_then_busy_loop() -> tuple[bool, int]:
        first = asyncio.ensure_future(wal.append(b"first"))
        await asyncio.sleep(0)  # the task runs up to its await: written, flush requested
        deadline = time.monotonic() + 5
        flushed = False
        while not flushed and time.monotonic() < deadline:  # the loop stays busy (scoring)
            flushed = bool(select.select([answers], [], [], 0.001)[0])
        return flushed, await first

    flushed_while_busy, lsn = asyncio.run(first_append_then_busy_loop())
    stats = wal.stats()
    wal.close()
    assert flushed_while_busy and lsn == 1 and stats.fsyncs == 1 and stats.records == 1


@pytest.mark.parametrize(
    "damage",
    ["zero tail", "torn payload", "length past the end", "half a header", "wrong lsn"],
)
def test_recovery_stops_at_the_first_invalid_frame_of_a_preallocated_segment(
    tmp_path: Path, damage: str
) -> None:
    wal, _ = opened(tmp_path)
    for index in range(3):
        wal.append_blocking(b"record-%d" % index)
    wal.close()
    segment = sorted(tmp_path.glob("wal-*.seg"))[0]
    data = bytearray(segment.read_bytes())
    assert len(data) == SEGMENT  # preallocated: the written part is followed by zeros
    end = 3 * (HEADER.size + len(b"record-0"))
    if damage == "torn payload":  # header of a 4th frame on disk, its payload never was
        data[end : end + HEADER.size] = frame(4, b"record-3")[: HEADER.size]
    elif damage == "length past the end":
        data[end : end + HEADER.size] = HEADER.pack(SEGMENT, 0, 4)
    elif damage == "half a header":
        data[end : end + 6] = frame(4, b"record-3")[:6]
    elif damage == "wrong lsn":  # a stale frame of another life of the file
        data[end : end + HEADER.size + 8] = frame(9, b"record-9")
    segment.write_bytes(bytes(data))
    again, recovered = opened(tmp_path)
    assert [record.payload for record in recovered] == [b"record-%d" % n for n in range(3)]
    assert again.append_blocking(b"after") == 4
    again.close()
