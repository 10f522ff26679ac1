"""Tail the write-ahead log's segments from disk, in sequence order, up to a durable bound.

The log mover (:mod:`~mlops_assets.serving.log_mover`) runs in its own process and reads what
the server wrote straight from the segment files (the page cache, normally) instead of being
handed the records in memory. It reads the same frames recovery reads (see
:func:`~mlops_assets.serving.wal_segments.scan_segment`): a frame ends the readable part of a
segment when its length is zero, it is torn, its CRC is wrong or it carries another sequence
number; the reader then moves on to the next segment (a later life of the log). It never reads
past ``through``, the highest sequence number the server has made durable, so it only sees
complete frames of acknowledged records.
"""

from __future__ import annotations

import logging
import os
import zlib
from pathlib import Path

from mlops_assets.core.inference_log import LogRecord
from mlops_assets.serving.wal_segments import HEADER, SEGMENT_PREFIX, SEGMENT_SUFFIX

logger = logging.getLogger(__name__)
CHUNK_BYTES = 1 << 20


def list_segments(directory: Path) -> list[tuple[int, Path]]:
    """The segment files of ``directory`` as ``(first lsn, path)``, in order."""
    return sorted(
        (int(path.name[len(SEGMENT_PREFIX) : -len(SEGMENT_SUFFIX)]), path)
        for path in directory.glob(f"{SEGMENT_PREFIX}*{SEGMENT_SUFFIX}")
    )


class SegmentReader:
    """Reads records from ``next_lsn`` on, segment after segment."""

    def __init__(self, directory: str | os.PathLike[str], next_lsn: int = 1) -> None:
        """Start at ``next_lsn`` (or at the oldest record still on disk, if that is later)."""
        self.directory = Path(directory)
        self.next_lsn = next_lsn
        self._first = 0  # first lsn of the open segment
        self._fd = -1
        self._offset = 0
        self._buffer = b""  # bytes read from _offset on, not yet parsed
        self._buffer_at = 0

    def _open(self, after: int | None) -> bool:
        """Open the segment holding ``next_lsn`` (or the first one after segment ``after``)."""
        segments = list_segments(self.directory)
        if after is None:
            candidates = [entry for entry in segments if entry[0] <= self.next_lsn]
            chosen = candidates[-1] if candidates else (segments[0] if segments else None)
        else:
            chosen = next((entry for entry in segments if entry[0] > after), None)
        if chosen is None:
            return False
        first, path = chosen
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:  # released meanwhile: everything in it was committed
            return False
        self.close()
        self._fd, self._first, self._offset = fd, first, 0
        self._buffer, self._buffer_at = b"", 0
        if first > self.next_lsn:
            if after is not None:
                missing = (self.next_lsn, first - 1, path)
                logger.warning("WAL: lsn %d..%d are missing before %s", *missing)
            self.next_lsn = first
        return True

    def _frame(self, through: int) -> LogRecord | None:
        """The valid frame at the current offset, or None where the readable part ends."""
        start = self._offset - self._buffer_at
        if start + HEADER.size > len(self._buffer):
            self._buffer = os.pread(self._fd, CHUNK_BYTES, self._offset)
            self._buffer_at, start = self._offset, 0
            if len(self._buffer) < HEADER.size:
                return None
        length, crc, lsn = HEADER.unpack_from(self._buffer, start)
        if length == 0 or lsn > through:
            return None
        end = start + HEADER.size + length
        if end > len(self._buffer):
            self._buffer = os.pread(self._fd, max(CHUNK_BYTES, HEADER.size + length), self._offset)
            self._buffer_at, start = self._offset, 0
            end = HEADER.size + length
            if end > len(self._buffer):
                return None
        payload = self._buffer[start + HEADER.size : end]
        if zlib.crc32(payload, zlib.crc32(lsn.to_bytes(8, "little"))) != crc:
            return None
        self._offset += HEADER.size + length
        return LogRecord(lsn=lsn, payload=payload)

    def read(self, through: int, limit: int) -> list[LogRecord]:
        """Return the next records with sequence numbers <= ``through``, at most ``limit``.

        Records before :attr:`next_lsn` in a segment are skipped; a gap in the numbers (records
        that were never acknowledged, or a damaged segment) is logged and skipped.
        """
        records: list[LogRecord] = []
        self._buffer, self._buffer_at = b"", self._offset  # may predate frames written since
        while self.next_lsn <= through and len(records) < limit:
            if self._fd < 0 and not self._open(None):
                break
            record = self._frame(through)
            if record is not None and record.lsn < self.next_lsn:
                continue  # before the start point: already committed
            if record is not None and record.lsn == self.next_lsn:
                records.append(record)
                self.next_lsn += 1
                continue
            if not self._open(self._first):  # the readable part of this segment ended
                break
        return records

    def close(self) -> None:
        """Close the open segment."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
