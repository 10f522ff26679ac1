"""The durable inference log: write-ahead log in the server, a mover process behind it.

:class:`InferenceLog` is what the app talks to: ``await log.append(payload)`` returns once the
record is on local disk. A child process (:mod:`~mlops_assets.serving.log_mover`) reads the
durable records from the segment files and appends them to the ``inference_log`` and
``feedback`` Delta tables in batches, exactly once; the server only publishes how far the log
is durable (a write into shared memory per flushed group) and, on a small thread, reads the
mover's reports to release moved segments. A mover that dies is restarted. Backlog is bounded:
once the bytes not yet in Delta exceed ``max_backlog_bytes`` the log reports itself saturated
and the app answers 503.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import orjson

from mlops_assets.core.delta_log_sink import DeltaLogSink
from mlops_assets.core.inference_log import FEEDBACK_KIND, LogRecord
from mlops_assets.serving.log_mover import DRAIN, DurablePointer
from mlops_assets.serving.wal import WalError, WriteAheadLog

logger = logging.getLogger(__name__)


class LogSaturatedError(WalError):
    """Raised when the backlog of records not yet in Delta is over its limit."""


@dataclass(frozen=True)
class LogStats:
    """Counters of the inference log for metrics and ``/model``.

    Attributes:
        backlog_records: Records written and not yet in Delta.
        backlog_bytes: Their payload bytes.
        committed_lsn: Highest sequence number known to be in Delta.
        delta_commits: Delta commits made by the current mover.
        delta_failures: Failed Delta commit attempts of the current mover.
        last_error: Message of the last failed attempt, if any.
        fsyncs: Group flushes of the write-ahead log.
        durable_records: Records made durable since start.
        saturated: Whether new records are refused right now.
        wal_failed: The write-ahead-log error that stopped logging (answers are 503), if any.
        mover_restarts: Times the mover process had to be restarted.
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
    mover_restarts: int = 0


class InferenceLog:
    """Write-ahead log + Delta mover process, with bounded backlog."""

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
        mover_nice: int = 10,
    ) -> None:
        """Configure the log; :meth:`open` recovers and starts it."""
        self.wal = WriteAheadLog(wal_dir, segment_bytes=segment_bytes, on_durable=self._durable)
        self.delta_root = delta_root
        self.tables = (predictions_table, feedback_table)
        self.flush_interval_s = flush_interval_s
        self.batch_records = batch_records
        self.max_backlog_bytes = max_backlog_bytes
        self.mover_nice = mover_nice
        self._pointer: DurablePointer | None = None
        self._marks: deque[tuple[int, int]] = deque()  # (last lsn of a group, bytes through it)
        self._durable_bytes = self._committed_bytes = 0
        self._through = 0
        self._report: dict = {"commits": 0, "failures": 0, "error": None}
        self._restarts = 0
        self._stopping = False
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._process: subprocess.Popen | None = None
        self._control = -1
        self._watcher: threading.Thread | None = None
        self._exit_code: int | None = None

    def open(self) -> int:
        """Recover the write-ahead log, start it and the mover process.

        Returns:
            How many recovered records still had to go to Delta.
        """
        recovered = self.wal.open()
        sink = DeltaLogSink(self.delta_root, self.wal.app_id, *self.tables)
        predictions, feedback = (sink.committed_lsn(table) for table in self.tables)
        self._through = min(predictions, feedback)
        pending = [r for r in recovered if self._uncommitted(r, predictions, feedback)]
        self.wal.start(min_next_lsn=max(predictions, feedback) + 1)
        self._pointer = DurablePointer(self.wal.directory, writable=True)
        if pending:
            size = sum(len(record.payload) for record in pending)
            self._durable(pending[0].lsn, pending[-1].lsn, size)
        self._pointer.set(self.wal.stats().next_lsn - 1)  # recovered records are on disk
        self._start_mover()
        self._watcher = threading.Thread(target=self._watch, name="log-mover-watch", daemon=True)
        self._watcher.start()
        logger.info("inference log open: %d recovered records to move", len(pending))
        return len(pending)

    def _uncommitted(self, record: LogRecord, predictions: int, feedback: int) -> bool:
        """Whether a recovered record is missing from its table."""
        if record.lsn <= min(predictions, feedback):
            return False
        try:
            kind = orjson.loads(record.payload).get("k") if record.payload[:1] == b"{" else "p"
        except (orjson.JSONDecodeError, AttributeError):
            return True  # quarantined by the mover
        return record.lsn > (feedback if kind == FEEDBACK_KIND else predictions)

    def _start_mover(self) -> None:
        status_read, status_write = os.pipe()
        control_read, self._control = os.pipe()
        command = [sys.executable, "-m", "mlops_assets.serving.log_mover"]
        command += ["--wal", str(self.wal.directory), "--root", self.delta_root]
        command += ["--app-id", self.wal.app_id, "--predictions", self.tables[0]]
        command += ["--feedback", self.tables[1], "--interval", str(self.flush_interval_s)]
        command += ["--batch", str(self.batch_records), "--nice", str(self.mover_nice)]
        command += ["--status-fd", str(status_write), "--control-fd", str(control_read)]
        command += ["--log-level", logging.getLevelName(logging.getLogger().getEffectiveLevel())]
        # the same package as this server's, whatever the working folder
        path = [str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH", "")]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, path))}
        try:
            self._process = subprocess.Popen(
                command, pass_fds=(status_write, control_read), stdin=subprocess.DEVNULL, env=env
            )
        finally:
            os.close(status_write)
            os.close(control_read)
        self._status = os.fdopen(status_read, "rb")

    def _watch(self) -> None:
        """Read the mover's reports; restart it if it dies while the log is open."""
        while True:
            for line in self._status:
                self._on_report(orjson.loads(line))
            self._status.close()
            assert self._process is not None
            self._exit_code = self._process.wait()
            with self._lock:
                if self._stopping:
                    return
                logger.error("inference log: mover exited with %s; restarting", self._exit_code)
                os.close(self._control)
                self._control = -1
            if self._stopped.wait(1.0):
                return
            with self._lock:
                if self._stopping:
                    return
                self._restarts += 1
                self._start_mover()

    def _on_report(self, report: dict) -> None:
        self._report = report
        through = report["committed"]
        if through > self._through:
            self._through = through
        while self._marks and self._marks[0][0] <= self._through:
            self._committed_bytes = self._marks.popleft()[1]
        self.wal.release_through(self._through)

    def _durable(self, first: int, last: int, size: int) -> None:
        """Records ``first..last`` are durable (event loop): account their bytes, tell the mover."""
        self._durable_bytes += size
        self._marks.append((last, self._durable_bytes))
        if self._pointer is not None:
            self._pointer.set(last)

    @property
    def saturated(self) -> bool:
        """True when the backlog is over ``max_backlog_bytes`` (answer 503)."""
        backlog = self._durable_bytes - self._committed_bytes + self.wal.pending_bytes
        return backlog >= self.max_backlog_bytes

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

    def stats(self) -> LogStats:
        """Return the current counters."""
        wal = self.wal.stats()
        report = self._report
        return LogStats(
            backlog_records=max(0, wal.next_lsn - 1 - self._through) if wal.next_lsn else 0,
            backlog_bytes=self._durable_bytes - self._committed_bytes + wal.pending_bytes,
            committed_lsn=self._through,
            delta_commits=report["commits"],
            delta_failures=report["failures"],
            last_error=report["error"],
            fsyncs=wal.fsyncs,
            durable_records=wal.records,
            saturated=self.saturated,
            wal_failed=wal.failed,
            mover_restarts=self._restarts,
        )

    def close(self, drain_timeout_s: float = 60.0) -> bool:
        """Flush the write-ahead log, let the mover move everything to Delta, stop it.

        Args:
            drain_timeout_s: How long the mover keeps trying Delta before giving up (what is
                not moved stays in the write-ahead log for the next start).

        Returns:
            True when every record reached Delta.
        """
        try:
            self.wal.close()
        except OSError:  # a failed disk: what is durable stays in the WAL for the next start
            logger.exception("inference log: closing the write-ahead log failed")
        if self._pointer is not None:
            self._pointer.set(self.wal.stats().next_lsn - 1)  # close() synced every write
        with self._lock:
            self._stopping = True
            self._stopped.set()
            if self._control >= 0:
                try:
                    os.write(self._control, DRAIN.pack(b"D", drain_timeout_s))
                except OSError:  # the mover is gone (it will not be restarted now)
                    pass
        if self._watcher is not None:
            self._watcher.join(drain_timeout_s + 30.0)
        if self._process is not None and self._process.poll() is None:
            logger.error("inference log: the mover did not stop; killing it")
            self._process.kill()
            self._process.wait()
        if self._control >= 0:
            os.close(self._control)
            self._control = -1
        drained = self._exit_code == 0 and self._through >= self.wal.stats().next_lsn - 1
        logger.info("inference log closed (%s)", "drained" if drained else "NOT drained")
        return drained
