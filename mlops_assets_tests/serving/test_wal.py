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
    wal, _ = opened(tmp_path, on_durable=lambda a, b, _: durable.extend(range(a, b + 1)))

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


def test_a_group_that_spans_segments_is_written_in_order_and_recovered(tmp_path: Path) -> None:
    """One pass fills a segment and goes on in the next: the helper writes both parts."""
    wal, _ = opened(tmp_path)
    payloads = [b"%02d" % index + b"w" * 9_000 for index in range(30)]  # ~270 KB, 64 KiB segments

    async def one_pass() -> list[int]:
        return await asyncio.gather(*(wal.append(payload) for payload in payloads))

    lsns = asyncio.run(one_pass())
    stats = wal.stats()
    wal.close()
    assert lsns == list(range(1, 31)) and stats.records == 30
    assert stats.fsyncs < 30, "the pass's records were not grouped"
    assert len(list(tmp_path.glob("wal-*.seg"))) >= 4
    _, recovered = opened(tmp_path)
    assert [record.payload for record in recovered] == payloads


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
    segment = sorted(tmp_path.glob("wal-*.seg"))[0]
    segment.unlink()
    segment.mkdir()  # the disk "fails": the helper cannot open the segment for writing

    async def two_appends() -> list:
        return await asyncio.gather(wal.append(b"a"), wal.append(b"b"), return_exceptions=True)

    errors = asyncio.run(two_appends())
    assert all(isinstance(error, WalError) for error in errors)
    assert "write failed" in str(errors[0]) and wal.stats().failed
    with pytest.raises(WalError, match="failed earlier"):
        asyncio.run(wal.append(b"c"))
    wal.close()


def test_a_long_loop_pass_is_flushed_in_groups_while_it_runs(tmp_path: Path) -> None:
    """No lockstep: records of a long pass must not all wait for the end of the pass."""
    wal, _ = opened(tmp_path)  # max_group_delay_s 1 ms
    answers = wal._helper.response_fd
    flushed_during_pass = []

    async def request(index: int) -> int:
        if index == 3:  # the last request of the pass scores until a flush has answered
            deadline = time.monotonic() + 5
            while not select.select([answers], [], [], 0.001)[0] and time.monotonic() < deadline:
                pass
            flushed_during_pass.append(bool(select.select([answers], [], [], 0)[0]))
        else:
            time.sleep(0.005)  # scoring holds the loop
        return await wal.append(b"record-%d" % index)

    async def one_pass() -> list[int]:
        return await asyncio.gather(*(request(index) for index in range(4)))

    lsns = asyncio.run(one_pass())
    stats = wal.stats()
    wal.close()
    assert sorted(lsns) == [1, 2, 3, 4] and flushed_during_pass == [True]
    assert stats.fsyncs == 2 and stats.records == 4  # records 1-2, then 3-4


def test_a_lone_record_is_flushed_at_the_end_of_its_pass(tmp_path: Path) -> None:
    wal, _ = opened(tmp_path)

    async def one_at_a_time() -> list[int]:
        return [await wal.append(b"alone-%d" % index) for index in range(3)]

    assert asyncio.run(one_at_a_time()) == [1, 2, 3]
    stats = wal.stats()
    wal.close()
    assert stats.fsyncs == 3 and stats.records == 3


def test_a_group_still_growing_at_the_end_of_a_pass_waits_for_the_next_pass(
    tmp_path: Path,
) -> None:
    """Requests answered together come back over a few passes: they share one flush."""
    wal, _ = opened(tmp_path)

    async def request(passes_later: int) -> int:
        for _ in range(passes_later):
            await asyncio.sleep(0)
        return await wal.append(b"late-%d" % passes_later)

    async def staggered() -> list[int]:  # one record per pass, each after the flush check
        return await asyncio.gather(*(request(passes) for passes in (3, 2, 1, 0)))

    lsns = asyncio.run(staggered())
    stats = wal.stats()
    wal.close()
    assert sorted(lsns) == [1, 2, 3, 4]
    assert stats.fsyncs == 1 and stats.records == 4


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


def test_a_dead_sync_helper_fails_the_waiters_and_every_later_append(tmp_path: Path) -> None:
    wal, _ = opened(tmp_path)

    async def append_after_the_helper_died() -> list:
        assert await wal.append(b"before") == 1
        wal._helper.process.kill()
        wal._helper.process.wait()
        results = await asyncio.gather(
            wal.append(b"lost"), asyncio.sleep(0.2), return_exceptions=True
        )
        return results[:1]

    (error,) = asyncio.run(append_after_the_helper_died())
    assert isinstance(error, WalError) and "helper process exited" in str(error)
    with pytest.raises(WalError, match="failed earlier"):
        asyncio.run(wal.append(b"later"))
    wal.close()
    _, recovered = opened(tmp_path)
    assert [record.payload for record in recovered][:1] == [b"before"]
