"""The durable inference log: write-ahead log in front, a background mover into Delta behind.

:class:`InferenceLog` is what the app talks to: ``await log.append(payload)`` returns once the
record is on local disk. A mover thread takes durable records in order and appends them to
the ``inference_log`` and ``feedback`` Delta tables in batches, each commit tagged with the
batch's last sequence number (see :class:`~mlops_assets.core.inference_log.DeltaLogSink`),
then deletes the segments it no longer needs. Memory is bounded: once the records not yet in
Delta exceed ``max_backlog_bytes`` the log reports itself saturated and the app answers 503.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import orjson

from mlops_assets.core.delta_log_sink import DeltaLogSink
from mlops_assets.core.inference_log import FEEDBACK_KIND, LogRecord, LogRecordError, decode_batch
from mlops_assets.serving.wal import WalError, WriteAheadLog

logger = logging.getLogger(__name__)


class LogSaturatedError(WalError):
    """Raised when the backlog of records not yet in Delta is over its limit."""


@dataclass(frozen=True)
class LogStats:
    """Counters of the inference log for metrics and ``/model``.

    Attributes:
        backlog_records: Durable records not yet in Delta.
        backlog_bytes: Their bytes plus the bytes waiting for the disk.
        committed_lsn: Highest sequence number known to be in Delta.
        delta_commits: Delta commits made since start.
        delta_failures: Failed Delta commit attempts since start.
        last_error: Message of the last failed attempt, if any.
        fsyncs: Group flushes of the write-ahead log.
        durable_records: Records made durable since start.
        saturated: Whether new records are refused right now.
        wal_failed: The write-ahead-log error that stopped logging (answers are 503), if any.
    """

    backlog_records: int
    backlog_bytes: int
    committed_lsn: int
    delta_commits: int
    delta_failures: int
    last_error: str | None
    fsyncs: int
    durable_records: int
    saturated: bool
    wal_failed: str | None = None


class InferenceLog:
    """Write-ahead log + background Delta mover, with bounded backlog."""

    def __init__(
        self,
        wal_dir: str | Path,
        delta_root: str,
        predictions_table: str = "inference_log",
        feedback_table: str = "feedback",
        segment_bytes: int = 8 << 20,
        flush_interval_s: float = 1.0,
        batch_records: int = 5000,
        max_backlog_bytes: int = 64 << 20,
    ) -> None:
        """Configure the log; :meth:`open` recovers and starts it."""
        self.wal = WriteAheadLog(wal_dir, segment_bytes=segment_bytes, on_durable=self._add)
        self.delta_root = delta_root
        self.tables = (predictions_table, feedback_table)
        self.flush_interval_s = flush_interval_s
        self.batch_records = batch_records
        self.max_backlog_bytes = max_backlog_bytes
        self.sink: DeltaLogSink | None = None
        self._cond = threading.Condition()
        self._buffer: deque[LogRecord] = deque()
        self._buffer_bytes = 0
        self._committed = {"predictions": 0, "feedback": 0}
        self._through = 0
        self._commits = 0
        self._failures = 0
        self._last_error: str | None = None
        self._verify = True  # re-read Delta before the first commit and after any failure
        self._stopping = False
        self._deadline = float("inf")
        self._thread: threading.Thread | None = None

    def open(self) -> int:
        """Recover the write-ahead log, skip what Delta already holds, start both threads.

        Returns:
            How many recovered records still had to go to Delta.
        """
        recovered = self.wal.open()
        self.sink = DeltaLogSink(self.delta_root, self.wal.app_id, *self.tables)
        predictions, feedback = (self.sink.committed_lsn(table) for table in self.tables)
        self._committed = {"predictions": predictions, "feedback": feedback}
        self._through = min(predictions, feedback)
        pending = [record for record in recovered if self._uncommitted(record)]
        self._add(pending)
        self.wal.start(min_next_lsn=max(predictions, feedback) + 1)
        self._thread = threading.Thread(target=self._run, name="delta-log-mover", daemon=True)
        self._thread.start()
        logger.info("inference log open: %d recovered records to move", len(pending))
        return len(pending)

    def _uncommitted(self, record: LogRecord) -> bool:
        """Whether a recovered record is missing from its table."""
        if record.lsn <= self._through:
            return False
        try:
            kind = orjson.loads(record.payload).get("k") if record.payload[:1] == b"{" else "p"
        except (orjson.JSONDecodeError, AttributeError):
            return True  # quarantined by the mover
        table = "feedback" if kind == FEEDBACK_KIND else "predictions"
        return record.lsn > self._committed[table]

    @property
    def saturated(self) -> bool:
        """True when the backlog is over ``max_backlog_bytes`` (answer 503)."""
        return self._buffer_bytes + self.wal.pending_bytes >= self.max_backlog_bytes

    async def append(self, payload: bytes) -> int:
        """Make ``payload`` durable and return its sequence number.

        Raises:
            LogSaturatedError: When the backlog is full.
            WalError: When the write-ahead log cannot write.
        """
        if self.saturated:
            raise LogSaturatedError(
                f"inference log backlog is full ({self.max_backlog_bytes} bytes not yet in Delta)"
            )
        return await self.wal.append(payload)

    def _add(self, records: list[LogRecord]) -> None:
        if not records:
            return
        with self._cond:
            self._buffer.extend(records)
            self._buffer_bytes += sum(len(record.payload) for record in records)
            if len(self._buffer) >= self.batch_records:
                self._cond.notify()

    def _run(self) -> None:
        backoff = 0.0
        while True:
            with self._cond:
                wait_until = time.monotonic() + max(self.flush_interval_s, backoff)
                while not self._stopping and len(self._buffer) < self.batch_records:
                    remaining = wait_until - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
                if not self._buffer and self._stopping:
                    return
                if self._stopping and time.monotonic() > self._deadline:
                    logger.error("inference log: drain deadline passed; rest stays in the WAL")
                    return
                batch = [self._buffer[index] for index in range(min(len(self._buffer), 50_000))]
            if not batch:
                continue
            try:
                self._commit(batch)
                backoff, self._verify = 0.0, False
            except Exception as error:  # noqa: BLE001 - retried; the WAL keeps the records
                self._verify = True  # the failed attempt may have committed
                self._failures += 1
                self._last_error = f"{type(error).__name__}: {error}"
                backoff = min(max(2 * backoff, 0.5), 30.0)
                logger.exception("inference log: Delta commit failed, retrying in %.1f s", backoff)
                if self._stopping:
                    time.sleep(min(backoff, 1.0))
                continue
            with self._cond:
                for _ in batch:
                    self._buffer_bytes -= len(self._buffer.popleft().payload)
            self._through = batch[-1].lsn
            self.wal.release_through(self._through)

    def _commit(self, batch: list[LogRecord]) -> None:
        assert self.sink is not None
        try:
            decoded = decode_batch(
                batch, self._committed["predictions"], self._committed["feedback"]
            )
        except (LogRecordError, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            batch = self._quarantine(batch)
            if not batch:
                return
            decoded = decode_batch(
                batch, self._committed["predictions"], self._committed["feedback"]
            )
        predictions_table, feedback_table = self.tables
        lsn, verify = decoded.last_lsn, self._verify
        if decoded.feedback is not None:
            self._commits += self.sink.append(feedback_table, decoded.feedback, lsn, verify)
        self._committed["feedback"] = decoded.last_lsn
        if decoded.predictions is not None:
            self._commits += self.sink.append(predictions_table, decoded.predictions, lsn, verify)
        self._committed["predictions"] = decoded.last_lsn

    def _quarantine(self, batch: list[LogRecord]) -> list[LogRecord]:
        """Set aside records that cannot be decoded (named in the log) and return the rest."""
        good = []
        folder = self.wal.directory / "quarantine"
        for record in batch:
            try:
                decode_batch([record])
                good.append(record)
            except Exception as error:  # noqa: BLE001
                folder.mkdir(exist_ok=True)
                (folder / f"{record.lsn:020d}.json").write_bytes(record.payload)
                logger.error("inference log: record %d quarantined: %s", record.lsn, error)
        return good

    def stats(self) -> LogStats:
        """Return the current counters."""
        wal = self.wal.stats()
        with self._cond:
            records, size = len(self._buffer), self._buffer_bytes
        return LogStats(
            backlog_records=records + wal.pending_records,
            backlog_bytes=size + wal.pending_bytes,
            committed_lsn=self._through,
            delta_commits=self._commits,
            delta_failures=self._failures,
            last_error=self._last_error,
            fsyncs=wal.fsyncs,
            durable_records=wal.records,
            saturated=self.saturated,
            wal_failed=wal.failed,
        )

    def close(self, drain_timeout_s: float = 60.0) -> bool:
        """Flush the write-ahead log, move everything to Delta, stop the threads.

        Args:
            drain_timeout_s: How long to keep retrying Delta before giving up (what is not
                moved stays in the write-ahead log for the next start).

        Returns:
            True when every record reached Delta.
        """
        try:
            self.wal.close()
        except OSError:  # a failed disk: what is durable stays in the WAL for the next start
            logger.exception("inference log: closing the write-ahead log failed")
        with self._cond:
            self._stopping = True
            self._deadline = time.monotonic() + drain_timeout_s
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join()
        drained = not self._buffer
        logger.info("inference log closed (%s)", "drained" if drained else "NOT drained")
        return drained
