"""Segment files of the write-ahead log: frame format, preallocation, recovery scan.

A segment ``wal-<first lsn>.seg`` is preallocated with zeros; frames are written one after
the other as ``length (u32) | crc32 (u32) | lsn (u64) | payload``. A zero length marks the end
of the written part; a torn or corrupt frame ends the valid part (it was never acknowledged).
"""

from __future__ import annotations

import fcntl
import logging
import os
import struct
import uuid
import zlib
from dataclasses import dataclass
from pathlib import Path

from mlops_assets.core.inference_log import LogRecord

logger = logging.getLogger(__name__)

HEADER = struct.Struct("<IIQ")  # payload length, crc32 of lsn+payload, lsn
SEGMENT_PREFIX, SEGMENT_SUFFIX = "wal-", ".seg"
ID_NAME, LOCK_NAME = "wal.id", "wal.lock"
_ZEROS = bytes(1 << 20)


class WalError(RuntimeError):
    """Raised when the log cannot accept or persist records (the request must not be acked)."""


@dataclass(frozen=True)
class WalStats:
    """Counters for metrics.

    Attributes:
        next_lsn: Sequence number the next record gets.
        pending_records: Records written and not yet durable.
        pending_bytes: Their bytes.
        fsyncs: Flushes since open (each one covers a whole group).
        records: Records made durable since open.
        segments: Segment files on disk.
        failed: The error that stopped the log, if any.
    """

    next_lsn: int
    pending_records: int
    pending_bytes: int
    fsyncs: int
    records: int
    segments: int
    failed: str | None


def frame(lsn: int, payload: bytes) -> bytes:
    """Encode one record as a frame."""
    lsn_bytes = lsn.to_bytes(8, "little")
    return HEADER.pack(len(payload), zlib.crc32(payload, zlib.crc32(lsn_bytes)), lsn) + payload


def segment_name(first_lsn: int) -> str:
    """File name of the segment whose first record is ``first_lsn``."""
    return f"{SEGMENT_PREFIX}{first_lsn:020d}{SEGMENT_SUFFIX}"


def zero_file(path: Path, size: int) -> None:
    """Create ``path`` filled with ``size`` zero bytes, durably."""
    with open(path, "wb") as handle:
        for start in range(0, size, len(_ZEROS)):
            handle.write(_ZEROS[: min(len(_ZEROS), size - start)])
        handle.flush()
        os.fsync(handle.fileno())


def fsync_dir(path: Path) -> None:
    """Make a folder's entries (created, renamed files) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def scan_segment(path: Path, expected_lsn: int) -> list[LogRecord]:
    """Return the valid records of one segment, stopping at the first torn or corrupt frame.

    Args:
        path: Segment file.
        expected_lsn: Sequence number the first frame must carry.
    """
    data = path.read_bytes()
    records: list[LogRecord] = []
    offset, lsn = 0, expected_lsn
    while offset + HEADER.size <= len(data):
        length, crc, frame_lsn = HEADER.unpack_from(data, offset)
        end = offset + HEADER.size + length
        if length == 0 or end > len(data) or frame_lsn != lsn:
            break
        payload = data[offset + HEADER.size : end]
        if zlib.crc32(payload, zlib.crc32(lsn.to_bytes(8, "little"))) != crc:
            logger.warning(
                "WAL %s: corrupt frame at offset %d (lsn %d); stopping", path, offset, lsn
            )
            break
        records.append(LogRecord(lsn=lsn, payload=payload))
        offset, lsn = end, lsn + 1
    return records


def load_app_id(directory: Path) -> str:
    """The folder's Delta application id (created once, kept across restarts)."""
    path = directory / ID_NAME
    if path.is_file():
        return path.read_text().strip()
    app_id = f"mlops-serve-{uuid.uuid4().hex}"
    scratch = path.with_suffix(".tmp")
    scratch.write_text(app_id)
    os.replace(scratch, path)
    fsync_dir(directory)
    return app_id


def recover_segments(directory: Path) -> tuple[list[LogRecord], list[tuple[int, Path]], int]:
    """Scan every segment in order.

    Returns:
        The valid records, the segments as ``(first lsn, path)`` and the next free lsn.

    Raises:
        WalError: When a segment starts inside the previous one.
    """
    found = sorted(
        (int(path.name[len(SEGMENT_PREFIX) : -len(SEGMENT_SUFFIX)]), path)
        for path in directory.glob(f"{SEGMENT_PREFIX}*{SEGMENT_SUFFIX}")
    )
    records: list[LogRecord] = []
    expected = found[0][0] if found else 1
    for first_lsn, path in found:
        if first_lsn < expected:
            raise WalError(
                f"WAL folder {directory}: segment {path.name} starts at lsn {first_lsn}, "
                f"inside the previous segment (which ends at lsn {expected - 1})"
            )
        if first_lsn > expected:
            logger.warning("WAL: lsn %d..%d are missing before %s", expected, first_lsn - 1, path)
        segment_records = scan_segment(path, first_lsn)
        records.extend(segment_records)
        expected = first_lsn + len(segment_records)
    return records, found, expected


def lock_folder(directory: Path) -> int:
    """Take the folder's exclusive lock (one server per write-ahead log) and return its fd.

    Raises:
        WalError: When another process holds it.
    """
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as error:
        os.close(fd)
        raise WalError(f"WAL folder {directory} is in use by another process") from error
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    return fd


def unlock_folder(fd: int) -> None:
    """Release the lock taken by :func:`lock_folder`."""
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)
