"""The mover's view of the write-ahead log: segments read from disk up to a durable bound."""

from __future__ import annotations

from pathlib import Path

from mlops_assets.serving.log_mover import DurablePointer
from mlops_assets.serving.wal import WriteAheadLog
from mlops_assets.serving.wal_reader import SegmentReader, list_segments
from mlops_assets.serving.wal_segments import HEADER

SEGMENT = 64 << 10


def started(folder: Path) -> WriteAheadLog:
    wal = WriteAheadLog(folder, segment_bytes=SEGMENT)
    wal.open()
    wal.start()
    return wal


def test_reads_in_order_up_to_the_durable_bound_and_follows_the_live_segment(
    tmp_path: Path,
) -> None:
    wal = started(tmp_path)
    for index in range(5):
        wal.append_blocking(b"r%d" % index)
    reader = SegmentReader(tmp_path)
    assert [record.lsn for record in reader.read(through=3, limit=100)] == [1, 2, 3]
    assert reader.read(through=3, limit=100) == []
    assert [record.payload for record in reader.read(through=5, limit=1)] == [b"r3"]
    for index in range(5, 8):  # written after the reader's last look at this segment
        wal.append_blocking(b"r%d" % index)
    assert [record.lsn for record in reader.read(through=100, limit=100)] == [5, 6, 7, 8]
    assert reader.next_lsn == 9
    wal.close()
    reader.close()


def test_rolls_over_segments_and_starts_at_the_oldest_record_still_on_disk(
    tmp_path: Path,
) -> None:
    wal = started(tmp_path)
    payload = b"y" * 9_000
    for _ in range(30):  # ~270 KB over 64 KiB segments
        wal.append_blocking(payload)
    assert len(list_segments(tmp_path)) >= 4
    records = SegmentReader(tmp_path).read(through=30, limit=1000)
    assert [record.lsn for record in records] == list(range(1, 31))
    assert wal.release_through(12) >= 1  # a mover of an earlier life committed these
    oldest = list_segments(tmp_path)[0][0]
    assert 1 < oldest <= 13
    reader = SegmentReader(tmp_path, next_lsn=1)  # Delta says nothing: start where disk starts
    assert [record.lsn for record in reader.read(30, 1000)] == list(range(oldest, 31))
    middle = SegmentReader(tmp_path, next_lsn=20)  # inside a segment: earlier frames skipped
    assert [record.lsn for record in middle.read(25, 1000)] == list(range(20, 26))
    wal.close()


def test_a_corrupt_frame_ends_its_segment_and_the_next_life_continues(tmp_path: Path) -> None:
    wal = started(tmp_path)
    for index in range(3):
        wal.append_blocking(b"payload-%d" % index)
    wal.close()
    segment = list_segments(tmp_path)[0][1]
    data = bytearray(segment.read_bytes())
    second = HEADER.size + len(b"payload-0")
    data[second + HEADER.size + 2] ^= 0xFF  # record 2 is damaged: 2 and 3 are lost
    segment.write_bytes(bytes(data))
    again = started(tmp_path)  # recovery cut the segment after record 1
    assert again.append_blocking(b"after") == 2
    records = SegmentReader(tmp_path).read(through=2, limit=10)
    assert [(record.lsn, record.payload) for record in records] == [
        (1, b"payload-0"),
        (2, b"after"),
    ]
    again.close()


def test_the_durable_pointer_is_shared_between_a_writer_and_a_reader(tmp_path: Path) -> None:
    writer = DurablePointer(tmp_path, writable=True)
    reader = DurablePointer(tmp_path, writable=False)
    assert reader.get() == 0
    writer.set(12345678901)
    assert reader.get() == 12345678901
    writer.close()
    reader.close()
