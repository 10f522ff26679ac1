"""Write-ahead log with group commit: a record is acknowledged only once it is on disk.

Records go to preallocated, zero-filled segment files (``wal-<first lsn>.seg``). Each frame is
``length | crc32 | lsn | payload``; a zero length marks the end of the written part. One
writer thread takes every record queued since its last write, writes them with one
``pwrite`` and makes them durable with one ``fdatasync`` (group commit: concurrent requests
share the flush). Overwriting preallocated blocks keeps ``fdatasync`` from committing the
filesystem journal, which is what makes a flush cost a fraction of a millisecond.

On open the log scans the segments, stops at the first torn or corrupt frame (it was never
acknowledged), returns every valid record and starts a fresh segment. Segments whose records
have all reached Delta are deleted through :meth:`WriteAheadLog.release_through`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mlops_assets.core.inference_log import LogRecord
from mlops_assets.serving.wal_segments import (
    HEADER,
    Waiter,
    WalError,
    frame,
    fsync_dir,
    load_app_id,
    lock_folder,
    recover_segments,
    segment_name,
    settle,
    unlock_folder,
    zero_file,
)

__all__ = ["WalError", "WalStats", "WriteAheadLog"]

logger = logging.getLogger(__name__)

SPARE_NAME = "spare.tmp"


@dataclass(frozen=True)
class WalStats:
    """Counters for metrics.

    Attributes:
        next_lsn: Sequence number the next record gets.
        pending_records: Records queued and not yet durable.
        pending_bytes: Their payload bytes.
        fsyncs: Flushes done since open (each one commits a whole group).
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


class WriteAheadLog:
    """Durable, segmented, group-committed record log in one folder (one process at a time)."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        segment_bytes: int = 8 << 20,
        on_durable: Callable[[list[LogRecord]], None] | None = None,
    ) -> None:
        """Prepare the log; nothing touches the disk before :meth:`open`.

        Args:
            directory: Folder of the segments (created if missing).
            segment_bytes: Preallocated size of a segment.
            on_durable: Called from the writer thread with each group once it is durable.
        """
        self.directory = Path(directory)
        self.segment_bytes = segment_bytes
        self._on_durable = on_durable
        self._cond = threading.Condition()
        self._segments_lock = threading.Lock()
        self._pending: list[tuple[bytes, Waiter]] = []
        self._pending_bytes = 0
        self._closing = False
        self._failed: str | None = None
        self._segments: list[tuple[int, Path]] = []
        self._fd = -1
        self._offset = 0
        self._size = 0
        self._next_lsn = 1
        self._fsyncs = 0
        self._records = 0
        self._spare_thread: threading.Thread | None = None
        self._thread: threading.Thread | None = None
        self._lock_fd = -1
        self.app_id = ""

    def open(self) -> list[LogRecord]:
        """Lock the folder and recover the valid records (call :meth:`start` next).

        Returns:
            Every valid record found in the existing segments, in order.

        Raises:
            WalError: When another process holds the folder or segments overlap.
        """
        self._lock_fd = lock_folder(self.directory)
        self.app_id = load_app_id(self.directory)
        records, self._segments, self._next_lsn = recover_segments(self.directory)
        return records

    def start(self, min_next_lsn: int = 1) -> None:
        """Start a fresh segment and the writer thread.

        Args:
            min_next_lsn: Lower bound for the next sequence number (one past the last
                sequence number already committed downstream), so numbers are never reused.
        """
        self._next_lsn = max(self._next_lsn, min_next_lsn)
        (self.directory / SPARE_NAME).unlink(missing_ok=True)
        self._start_segment(0)
        self._thread = threading.Thread(target=self._run, name="wal-writer", daemon=True)
        self._thread.start()

    def _start_segment(self, needed: int) -> None:
        path = self.directory / segment_name(self._next_lsn)
        spare = self._take_spare() if needed <= self.segment_bytes else None
        if spare is not None:
            os.replace(spare, path)
        else:
            zero_file(path, max(self.segment_bytes, needed))
        fsync_dir(self.directory)
        if self._fd >= 0:
            os.close(self._fd)
        self._fd = os.open(path, os.O_WRONLY)
        self._offset, self._size = 0, max(self.segment_bytes, needed)
        with self._segments_lock:
            self._segments = [entry for entry in self._segments if entry[1] != path]
            self._segments.append((self._next_lsn, path))

    def _make_spare(self) -> None:
        try:
            zero_file(self.directory / SPARE_NAME, self.segment_bytes)
        except OSError:
            logger.exception("WAL: could not preallocate the next segment")

    def _take_spare(self) -> Path | None:
        thread, self._spare_thread = self._spare_thread, None
        if thread is None:
            return None
        thread.join()
        spare = self.directory / SPARE_NAME
        return spare if spare.is_file() else None

    async def append(self, payload: bytes) -> int:
        """Queue ``payload`` and return its sequence number once it is durable."""
        future = asyncio.get_running_loop().create_future()
        self._submit(payload, future)
        return await future

    def append_blocking(self, payload: bytes, timeout: float | None = None) -> int:
        """Like :meth:`append`, for threads without an event loop."""
        future: concurrent.futures.Future = concurrent.futures.Future()
        self._submit(payload, future)
        return future.result(timeout)

    def _submit(self, payload: bytes, waiter: Waiter) -> None:
        with self._cond:
            if self._failed is not None:
                raise WalError(f"write-ahead log failed earlier: {self._failed}")
            if self._closing or self._thread is None:
                raise WalError("write-ahead log is closed")
            self._pending.append((payload, waiter))
            self._pending_bytes += len(payload)
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closing:
                    self._cond.wait()
                if not self._pending:
                    return
                group, self._pending, self._pending_bytes = self._pending, [], 0
            try:
                records = self._write([payload for payload, _ in group])
            except BaseException as error:  # noqa: BLE001 - every waiter must hear about it
                logger.exception("WAL write failed; the log stops accepting records")
                with self._cond:
                    self._failed = f"{type(error).__name__}: {error}"
                settle(group, None, WalError(f"write-ahead log write failed: {error}"))
                continue
            settle(group, [record.lsn for record in records], None)
            if self._on_durable is not None:
                self._on_durable(records)

    def _write(self, payloads: list[bytes]) -> list[LogRecord]:
        records, chunk, chunk_bytes = [], [], 0
        for payload in payloads:
            encoded = frame(self._next_lsn, payload)
            if self._offset + chunk_bytes + len(encoded) > self._size:
                self._flush(chunk)
                chunk, chunk_bytes = [], 0
                self._start_segment(len(encoded) + HEADER.size)
            chunk.append(encoded)
            chunk_bytes += len(encoded)
            records.append(LogRecord(lsn=self._next_lsn, payload=payload))
            self._next_lsn += 1
        self._flush(chunk)
        if self._offset > self._size // 2 and self._spare_thread is None:
            self._spare_thread = threading.Thread(target=self._make_spare, daemon=True)
            self._spare_thread.start()
        self._records += len(records)
        return records

    def _flush(self, chunk: list[bytes]) -> None:
        if not chunk:
            return
        data = b"".join(chunk)
        os.pwrite(self._fd, data, self._offset)
        os.fdatasync(self._fd)
        self._offset += len(data)
        self._fsyncs += 1

    def release_through(self, lsn: int) -> int:
        """Delete closed segments whose records all have sequence numbers <= ``lsn``.

        Returns:
            How many segment files were deleted.
        """
        with self._segments_lock:
            removable = [
                path
                for (_, path), (next_first, _) in zip(
                    self._segments, self._segments[1:], strict=False
                )
                if next_first - 1 <= lsn
            ]
            self._segments = self._segments[len(removable) :]
        for path in removable:
            path.unlink(missing_ok=True)
        return len(removable)

    def stats(self) -> WalStats:
        """Return the current counters."""
        with self._cond:
            pending, pending_bytes = len(self._pending), self._pending_bytes
        return WalStats(
            next_lsn=self._next_lsn,
            pending_records=pending,
            pending_bytes=pending_bytes,
            fsyncs=self._fsyncs,
            records=self._records,
            segments=len(self._segments),
            failed=self._failed,
        )

    def close(self) -> None:
        """Make every queued record durable, stop the writer thread and unlock the folder."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._spare_thread is not None:
            self._spare_thread.join()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if self._lock_fd >= 0:
            unlock_folder(self._lock_fd)
            self._lock_fd = -1
