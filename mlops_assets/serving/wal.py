"""Write-ahead log with group commit: a record is acknowledged only once it is on disk.

Records go to preallocated, zero-filled segment files (``wal-<first lsn>.seg``, see
:mod:`~mlops_assets.serving.wal_segments`). The pipeline has two stages:

* on the event loop, a request frames and writes its record at once with one ``pwrite``
  (page cache, no wait), wakes an idle sync thread and awaits;
* sync threads run ``fdatasync``: each call makes durable everything written before it
  started, then one ``call_soon_threadsafe`` resumes all those requests. Records written while
  every thread is busy form the next group (leader/follower), and with two threads a new group
  need not wait for the flush in flight to finish before its own starts.

Writing at once matters: when records were queued and written once per loop iteration, the
requests that arrived together were all scored before the first flush started, so the loop
sat idle during every flush and the clients moved in lockstep (8 records per flush at
concurrency 8). Now the first record's flush overlaps the scoring of the others. So
concurrent requests share a flush (group commit), the loop never blocks on the disk, and the
threads cost one hand-off per flush rather than per request. Overwriting preallocated blocks
keeps ``fdatasync`` from committing the filesystem journal (a fraction of a millisecond on an
idle disk). On open the log scans the segments, stops at the first torn or corrupt frame (it
was never acknowledged), returns every valid record and starts a fresh segment.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mlops_assets.core.inference_log import LogRecord
from mlops_assets.serving.wal_segments import (
    WalError,
    load_app_id,
    lock_folder,
    recover_segments,
    unlock_folder,
)
from mlops_assets.serving.wal_writer import SegmentWriter

__all__ = ["WalError", "WalStats", "WriteAheadLog"]
logger = logging.getLogger(__name__)


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


class WriteAheadLog:
    """Durable, segmented, group-committed record log in one folder (one process at a time)."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        segment_bytes: int = 8 << 20,
        on_durable: Callable[[list[LogRecord]], None] | None = None,
        sync_threads: int = 2,
    ) -> None:
        """Prepare the log; nothing touches the disk before :meth:`open`.

        Args:
            directory: Folder of the segments (created if missing).
            segment_bytes: Preallocated size of a segment.
            on_durable: Called on the event loop with each group once it is durable.
            sync_threads: Threads that may run ``fdatasync`` at the same time.
        """
        self.directory = Path(directory)
        self.segment_bytes = segment_bytes
        self.app_id = ""
        self._on_durable = on_durable
        self._files: SegmentWriter | None = None
        self._pending_bytes = 0
        self._awaiting: deque[tuple[asyncio.Future, LogRecord]] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = threading.Condition()
        self._written = self._claimed = 0
        self._syncing: dict[int, int] = {}  # fd -> syncs in flight on it
        self.sync_threads = sync_threads
        self._closing = False
        self._failed: str | None = None
        self._fsyncs = self._records = 0
        self._threads: list[threading.Thread] = []
        self._lock_fd = -1

    def open(self) -> list[LogRecord]:
        """Lock the folder and recover the valid records (call :meth:`start` next).

        Returns:
            Every valid record found in the existing segments, in order.

        Raises:
            WalError: When another process holds the folder or segments overlap.
        """
        self._lock_fd = lock_folder(self.directory)
        self.app_id = load_app_id(self.directory)
        records, segments, next_lsn = recover_segments(self.directory)
        self._files = SegmentWriter(self.directory, self.segment_bytes, segments, next_lsn)
        return records

    def start(self, min_next_lsn: int = 1) -> None:
        """Open a fresh segment and start the sync thread.

        Args:
            min_next_lsn: Lower bound for the next sequence number (one past the last
                sequence number already committed downstream), so numbers are never reused.
        """
        assert self._files is not None, "open() first"
        self._files.next_lsn = max(self._files.next_lsn, min_next_lsn)
        self._written = self._claimed = self._files.next_lsn - 1
        self._files.start()
        self._threads = [
            threading.Thread(target=self._sync_loop, name=f"wal-sync-{n}", daemon=True)
            for n in range(self.sync_threads)
        ]
        for thread in self._threads:
            thread.start()

    def _check_open(self) -> None:
        if self._failed is not None:
            raise WalError(f"write-ahead log failed earlier: {self._failed}")
        if self._closing or not self._threads:
            raise WalError("write-ahead log is closed")

    async def append(self, payload: bytes) -> int:
        """Write ``payload`` now and return its sequence number once it is durable.

        Raises:
            WalError: When the log is closed or failed (after a failure every append fails).
        """
        self._check_open()
        loop = self._loop = asyncio.get_running_loop()
        future = loop.create_future()
        files = self._files
        assert files is not None
        try:
            with files.lock:
                (record,) = files.write([payload])
                self._written = record.lsn
        except BaseException as error:  # noqa: BLE001 - every waiter must hear about it
            self._fail(error, [future])
            return await future
        self._awaiting.append((future, record))
        self._pending_bytes += len(payload)
        with self._wake:
            self._wake.notify()
        return await future

    def _sync_loop(self) -> None:
        files = self._files
        assert files is not None
        while True:
            with self._wake:
                while self._written <= self._claimed and not self._closing:
                    self._wake.wait()
                if self._written <= self._claimed:
                    return
                with files.lock:
                    fd, target = files.fd, self._written
                    self._syncing[fd] = self._syncing.get(fd, 0) + 1
                self._claimed = target
            try:
                os.fdatasync(fd)  # durable: everything written before this call started
            except OSError as error:
                if self._loop is not None:
                    self._loop.call_soon_threadsafe(self._fail, error, None)
                return
            finally:
                with files.lock:
                    self._syncing[fd] -= 1
                    files.close_retired(busy={f for f, n in self._syncing.items() if n})
            self._fsyncs += 1
            if self._loop is not None:
                try:
                    self._loop.call_soon_threadsafe(self._resolve, target)
                except RuntimeError:  # the loop is closed: nobody waits any more
                    pass

    def _resolve(self, target: int) -> None:
        """Resume every request whose record is durable (event loop)."""
        done = []
        while self._awaiting and self._awaiting[0][1].lsn <= target:
            future, record = self._awaiting.popleft()
            if not future.done():  # a client that went away does not matter here
                future.set_result(record.lsn)
            self._pending_bytes -= len(record.payload)
            done.append(record)
        self._records += len(done)
        if done and self._on_durable is not None:
            self._on_durable(done)

    def _fail(self, error: BaseException, futures: list | None) -> None:
        logger.error("WAL write failed; the log stops accepting records: %s", error)
        self._failed = f"{type(error).__name__}: {error}"
        waiting = futures if futures is not None else []
        waiting += [future for future, _ in self._awaiting]
        self._awaiting.clear()
        self._pending_bytes = 0
        for future in waiting:
            if not future.done():
                future.set_exception(WalError(f"write-ahead log write failed: {error}"))

    def append_blocking(self, payload: bytes) -> int:
        """Write and sync one record from a thread without an event loop; return its lsn."""
        self._check_open()
        assert self._files is not None
        with self._files.lock:
            records = self._files.write([payload])
            os.fdatasync(self._files.fd)
            self._written = max(self._written, records[0].lsn)
        self._records += 1
        if self._on_durable is not None:
            self._on_durable(records)
        return records[0].lsn

    @property
    def pending_bytes(self) -> int:
        """Bytes written and not yet durable."""
        return self._pending_bytes

    def release_through(self, lsn: int) -> int:
        """Delete closed segments whose records all have sequence numbers <= ``lsn``."""
        assert self._files is not None
        with self._files.lock:
            return self._files.release_through(lsn)

    def stats(self) -> WalStats:
        """Return the current counters."""
        files = self._files
        return WalStats(
            next_lsn=files.next_lsn if files else 0,
            pending_records=len(self._awaiting),
            pending_bytes=self._pending_bytes,
            fsyncs=self._fsyncs,
            records=self._records,
            segments=len(files.segments) if files else 0,
            failed=self._failed,
        )

    def close(self) -> None:
        """Sync what was written, stop the sync thread and unlock the folder."""
        self._closing = True
        with self._wake:
            self._wake.notify_all()
        for thread in self._threads:
            thread.join()
        if self._files is not None:
            with self._files.lock:
                self._files.close()
        if self._lock_fd >= 0:
            unlock_folder(self._lock_fd)
            self._lock_fd = -1
