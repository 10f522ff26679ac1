"""Write-ahead log with group commit: a record is acknowledged only once it is on disk.

Records go to preallocated, zero-filled segment files (see
:mod:`~mlops_assets.serving.wal_segments`). On the event loop a request queues its record and
awaits. At the end of a loop pass the queued records form a group, unless the group grew
during that pass: then it waits one more pass, and so on until a pass adds nothing or the
oldest record has waited ``max_group_delay_s`` (a long pass is cut at that age too). A lone
request (concurrency 1) is flushed at the end of its own pass; requests answered together,
which come back together, share one flush. A group is framed and handed, with one pipe write,
to a helper process (:mod:`~mlops_assets.serving.wal_syncer`) that writes and flushes it. At
most ``sync_threads`` flushes are in flight (a group that finds none free goes with the next
answer). The helper's answer, on a pipe the loop watches, resumes the requests that flush
made durable (an append whose group is due polls the pipe itself, only when every flush slot
is taken). Bookkeeping is per group (last lsn, futures, bytes), not per record.

Why: logging costs the loop far more per flush than per record (about 80 us of its CPU per
flush at concurrency 8, though it does no disk work), so groups grow as large as the traffic
allows without delaying a lone request; writes and flushes run in the helper so that neither
ext4's buffered-write path nor threads retaking the GIL land on the loop. Overwriting
preallocated blocks keeps ``fdatasync`` from committing the filesystem journal. The README's
serving section has the measurements behind each choice. On open the log scans the segments
up to the first torn or corrupt frame of each and starts a fresh segment.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

from mlops_assets.core.inference_log import LogRecord
from mlops_assets.serving.wal_segments import (
    WalError,
    WalStats,
    load_app_id,
    lock_folder,
    recover_segments,
    unlock_folder,
)
from mlops_assets.serving.wal_syncer import FAILED, SyncHelper
from mlops_assets.serving.wal_writer import SegmentWriter

__all__ = ["WalError", "WalStats", "WriteAheadLog"]
logger = logging.getLogger(__name__)


class WriteAheadLog:
    """Durable, segmented, group-committed record log in one folder (one process at a time)."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        segment_bytes: int = 8 << 20,
        on_durable: Callable[[int, int, int], None] | None = None,
        sync_threads: int = 4,
        max_group_delay_s: float = 0.002,
    ) -> None:
        """Prepare the log; nothing touches the disk before :meth:`open`.

        Args:
            directory: Folder of the segments (created if missing).
            segment_bytes: Preallocated size of a segment.
            on_durable: Called on the event loop with ``(first lsn, last lsn, payload bytes)``
                of each group once it is durable.
            sync_threads: Flushes that may run at the same time (threads of the helper).
            max_group_delay_s: Age of the oldest queued record after which its group is
                flushed, whether or not the group (or the pass) is still growing.
        """
        self.directory = Path(directory)
        self.segment_bytes = segment_bytes
        self.app_id = ""
        self.sync_threads = sync_threads
        self._on_durable = on_durable
        self._files: SegmentWriter | None = None
        self._helper: SyncHelper | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queued: list[bytes] = []  # not handed to the helper yet
        self._waiters: list[asyncio.Future] = []  # one per queued record
        self._awaiting: deque[tuple[int, list[asyncio.Future], int]] = deque()
        # ^ handed to the helper, not durable yet: (last lsn, futures, payload bytes) per group
        self._pending_bytes = 0
        self._in_flight = 0
        self._end_scheduled = False
        self._seen = 0  # records queued when the end-of-pass callback last looked
        self._queued_at = 0.0
        self.max_group_delay_s = max_group_delay_s
        self._closing = False
        self._failed: str | None = None
        self._fsyncs = self._records = 0
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
        """Open a fresh segment and start the sync helper.

        Args:
            min_next_lsn: Lower bound for the next sequence number (one past the last
                sequence number already committed downstream), so numbers are never reused.
        """
        assert self._files is not None, "open() first"
        self._files.next_lsn = max(self._files.next_lsn, min_next_lsn)
        self._files.start()
        self._helper = SyncHelper(self.directory, self.sync_threads)
        self._helper.start()

    def _check_open(self) -> None:
        if self._failed is not None:
            raise WalError(f"write-ahead log failed earlier: {self._failed}")
        if self._closing or self._helper is None:
            raise WalError("write-ahead log is closed")

    async def append(self, payload: bytes) -> int:
        """Write ``payload`` now and return its sequence number once it is durable.

        Raises:
            WalError: When the log is closed or failed (after a failure every append fails).
        """
        self._check_open()
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # first append, or a new loop (tests)
            self._watch(loop)
        future = loop.create_future()
        now = time.perf_counter()
        if not self._queued:
            self._queued_at = now
        self._queued.append(payload)
        self._waiters.append(future)
        self._pending_bytes += len(payload)
        if now - self._queued_at >= self.max_group_delay_s:  # a long pass: flush what it queued
            if self._in_flight >= self.sync_threads:  # a flush may have finished meanwhile
                self._take(self._helper.answers() or [], flush_queue=False)
            if self._in_flight < self.sync_threads:
                self._write_and_flush()
        if self._queued and not self._end_scheduled:  # flush the group after this pass
            self._end_scheduled = True
            self._seen = len(self._queued)
            loop.call_soon(self._flush_queued)
        return await future

    def _flush_queued(self) -> None:
        """End of a loop pass: flush the group, or wait one more pass while it still grows."""
        self._end_scheduled = False
        if not self._queued:
            return
        if (
            len(self._queued) > self._seen
            and time.perf_counter() - self._queued_at < self.max_group_delay_s
        ):  # requests answered together came back together: let the rest of them join
            self._seen = len(self._queued)
            self._end_scheduled = True
            assert self._loop is not None
            self._loop.call_soon(self._flush_queued)
        elif self._in_flight < self.sync_threads:
            self._write_and_flush()

    def _write_and_flush(self) -> None:
        """Hand every queued record to the helper, which writes and flushes them."""
        group, futures = self._queued, self._waiters
        self._queued, self._waiters = [], []
        files = self._files
        assert files is not None and self._helper is not None
        try:
            with files.lock:  # the helper gets the pieces in sequence-number order
                first, pieces = files.place(group)
                last = first + len(group) - 1
                self._helper.request(last, pieces)
        except BaseException as error:  # noqa: BLE001 - every waiter must hear about it
            if isinstance(error, BrokenPipeError):
                error = WalError("the WAL sync helper process exited")
            self._fail(error, futures)
            return
        self._awaiting.append((last, futures, sum(map(len, group))))
        self._in_flight += 1

    def _watch(self, loop: asyncio.AbstractEventLoop) -> None:
        assert self._helper is not None
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(self._helper.response_fd)
        self._loop = loop
        loop.add_reader(self._helper.response_fd, self._on_answers)

    def _on_answers(self) -> None:
        """Read the helper's answers (event loop, when its pipe is readable)."""
        assert self._helper is not None
        answers = self._helper.answers()
        if answers is None:
            if self._loop is not None:
                self._loop.remove_reader(self._helper.response_fd)
            if not self._closing:
                self._fail(WalError("the WAL sync helper process exited"), None)
            return
        self._take(answers)

    def _take(self, answers: list[tuple[int, int]], flush_queue: bool = True) -> None:
        """Resume the requests the flushes made durable; flush the queue if a slot is free."""
        target = 0
        for lsn, detail in answers:
            self._in_flight -= 1
            if lsn == FAILED:
                self._fail(OSError(detail, f"write or flush failed: {os.strerror(detail)}"), None)
                return
            target = max(target, lsn)
        self._fsyncs += len(answers)
        if target:
            self._resolve(target)
        if (  # a group still collecting is left to its end-of-pass callback
            flush_queue
            and self._queued
            and not self._end_scheduled
            and self._in_flight < self.sync_threads
        ):
            self._write_and_flush()

    def _resolve(self, target: int) -> None:
        """Resume every request whose record is durable (event loop)."""
        while self._awaiting and self._awaiting[0][0] <= target:
            last, futures, size = self._awaiting.popleft()
            first = last - len(futures) + 1
            for lsn, future in enumerate(futures, first):
                if not future.done():  # a client that went away does not matter here
                    future.set_result(lsn)
            self._pending_bytes -= size
            self._records += len(futures)
            if self._on_durable is not None:
                self._on_durable(first, last, size)

    def _fail(self, error: BaseException, futures: list | None) -> None:
        logger.error("WAL write failed; the log stops accepting records: %s", error)
        self._failed = f"{type(error).__name__}: {error}"
        waiting = futures if futures is not None else []
        waiting += [future for _, futures, _ in self._awaiting for future in futures]
        waiting += self._waiters
        self._awaiting.clear()
        self._queued, self._waiters = [], []
        self._pending_bytes = 0
        for future in waiting:
            if not future.done():
                future.set_exception(WalError(f"write-ahead log write failed: {error}"))

    def append_blocking(self, payload: bytes) -> int:
        """:meth:`append` from a thread without a running event loop (one runs for the call)."""
        return asyncio.run(self.append(payload))

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
            pending_records=len(self._queued) + sum(len(group[1]) for group in self._awaiting),
            pending_bytes=self._pending_bytes,
            fsyncs=self._fsyncs,
            records=self._records,
            segments=len(files.segments) if files else 0,
            failed=self._failed,
        )

    def close(self) -> None:
        """Hand the queue to the helper, let it write and sync everything, unlock (any thread)."""
        self._closing = True
        helper, loop, files = self._helper, self._loop, self._files
        written = 0
        if files is not None:
            with files.lock:
                if self._queued and helper is not None and self._failed is None:
                    # only when the loop stopped before an answer handed them over
                    group, futures = self._queued, self._waiters
                    self._queued, self._waiters = [], []
                    first, pieces = files.place(group)
                    last = first + len(group) - 1
                    try:
                        helper.request(last, pieces)
                    except OSError:  # the helper is gone: these fail below, on the loop
                        pass
                    self._awaiting.append((last, futures, sum(map(len, group))))
                written = files.next_lsn - 1
        if helper is not None:
            helper.close()  # it writes and syncs everything asked, then exits
            if helper.process is not None and helper.process.returncode != 0:
                written = 0  # it died: only the answers it sent count
        if files is not None:
            files.close()
        if helper is not None:
            if loop is None or loop.is_closed():
                helper.close_responses()
            else:  # the loop owns the reader: let it resume the last waiters and let go
                try:
                    loop.call_soon_threadsafe(self._last_answers, helper, written)
                except RuntimeError:  # closed meanwhile
                    helper.close_responses()
        if self._lock_fd >= 0:
            unlock_folder(self._lock_fd)
            self._lock_fd = -1

    def _last_answers(self, helper: SyncHelper, written: int) -> None:
        assert self._loop is not None
        self._loop.remove_reader(helper.response_fd)
        answers = helper.answers() or []
        helper.close_responses()
        if self._failed is None:
            self._take(answers, flush_queue=False)
        if self._failed is None:
            self._resolve(written)
        if self._awaiting and self._failed is None:
            self._fail(WalError("the WAL sync helper process exited"), None)
