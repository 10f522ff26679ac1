"""The log mover: a child process that moves durable WAL records into Delta, exactly once.

It used to be a thread of the server; decoding records, building Arrow tables and writing
parquet held the server's GIL for tens of milliseconds a second, time the event loop could
not answer requests. Here it runs in its own process (niced, so under load the server and its
clients come first): it reads the records the server made durable straight from the segment
files (:class:`~mlops_assets.serving.wal_reader.SegmentReader`), bounded by the durable
sequence number the server publishes in a shared 16-byte map (:class:`DurablePointer`, no
syscall on the server's side), and appends them to ``inference_log`` and ``feedback`` in
batches, each commit tagged ``(app id, last lsn)`` (see
:class:`~mlops_assets.core.delta_log_sink.DeltaLogSink`). After every attempt it reports one
JSON line on its status pipe (``committed`` lsn, ``commits``, ``failures``, ``error``); the
server releases the segments behind ``committed`` and bounds its backlog with it.

Control pipe from the server: ``D`` + a float64 (seconds) asks for a drain (move everything
durable, then exit 0; exit 3 if the time runs out); end of file means the server is gone (it
was killed): exit at once, the next server recovers from the WAL. SIGINT and SIGTERM are
ignored (sent to the whole process group, they are the server's cue to drain).
``mover.lock`` in the WAL folder keeps a mover of a dead server from committing next to its
successor's.

Run by :class:`~mlops_assets.serving.log_writer.InferenceLog` as
``python -m mlops_assets.serving.log_mover --wal DIR --root ROOT --app-id ID ...``.
"""

from __future__ import annotations

import argparse
import fcntl
import logging
import mmap
import os
import select
import signal
import struct
import sys
import time
from pathlib import Path

import orjson

from mlops_assets.core.inference_log import LogRecord, LogRecordError, decode_batch
from mlops_assets.serving.wal_reader import SegmentReader

logger = logging.getLogger("mlops_assets.serving.log_mover")
POINTER_NAME, MOVER_LOCK = "durable.lsn", "mover.lock"
DRAIN = struct.Struct("<cd")  # b"D", seconds the drain may take
MAX_BATCH = 50_000
_POINTER = struct.Struct("<QQ")  # the value twice: a reader retries until both halves agree


class DurablePointer:
    """Highest durable sequence number, shared through a small memory-mapped file."""

    def __init__(self, directory: Path, writable: bool) -> None:
        """Map ``durable.lsn`` in ``directory`` (the server creates it, the mover reads it)."""
        path = directory / POINTER_NAME
        if writable and (not path.is_file() or path.stat().st_size != _POINTER.size):
            path.write_bytes(bytes(_POINTER.size))
        fd = os.open(path, os.O_RDWR if writable else os.O_RDONLY)
        try:
            access = mmap.ACCESS_WRITE if writable else mmap.ACCESS_READ
            self._map = mmap.mmap(fd, _POINTER.size, access=access)
        finally:
            os.close(fd)

    def set(self, lsn: int) -> None:
        """Publish ``lsn`` (server, after the flush that made it durable)."""
        _POINTER.pack_into(self._map, 0, lsn, lsn)

    def get(self) -> int:
        """The last published sequence number."""
        while True:
            first, second = _POINTER.unpack_from(self._map, 0)
            if first == second:
                return first

    def close(self) -> None:
        """Unmap."""
        self._map.close()


class Mover:
    """Batches records from the reader and commits them (the child's state)."""

    def __init__(self, options: argparse.Namespace, status_fd: int) -> None:
        """Bind to the tables; the committed sequence numbers are read in :meth:`start`."""
        from mlops_assets.core.delta_log_sink import DeltaLogSink

        self.options = options
        self.folder = Path(options.wal)
        tables = (options.predictions, options.feedback)
        self.sink = DeltaLogSink(options.root, options.app_id, *tables)
        self.status_fd = status_fd
        self.committed = {"predictions": 0, "feedback": 0}
        self.through = 0
        self.commits = self.failures = 0
        self.error: str | None = None
        self.verify = True  # re-read Delta before the first commit and after any failure

    def start(self) -> SegmentReader:
        """Read what Delta holds already and return a reader positioned after it."""
        tables = (self.options.predictions, self.options.feedback)
        predictions, feedback = (self.sink.committed_lsn(table) for table in tables)
        self.committed = {"predictions": predictions, "feedback": feedback}
        self.through = min(predictions, feedback)
        self.report()
        return SegmentReader(self.folder, self.through + 1)

    def report(self) -> None:
        """One status line for the server."""
        line = {"committed": self.through, "commits": self.commits}
        line.update(failures=self.failures, error=self.error)
        try:
            os.write(self.status_fd, orjson.dumps(line) + b"\n")
        except OSError:  # the server is gone: the control pipe says so next
            pass

    def commit(self, batch: list[LogRecord]) -> None:
        """Append ``batch`` to the tables (skipping what they hold); raise on failure."""
        try:
            decoded = decode_batch(batch, self.committed["predictions"], self.committed["feedback"])
        except (LogRecordError, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            good = self.quarantine(batch)
            decoded = (
                decode_batch(good, self.committed["predictions"], self.committed["feedback"])
                if good
                else None
            )
        if decoded is not None:
            lsn, verify, sink = decoded.last_lsn, self.verify, self.sink
            if decoded.feedback is not None:
                self.commits += sink.append(sink.feedback_table, decoded.feedback, lsn, verify)
            self.committed["feedback"] = lsn
            if decoded.predictions is not None:
                rows = decoded.predictions
                self.commits += sink.append(sink.predictions_table, rows, lsn, verify)
            self.committed["predictions"] = lsn
        self.through = batch[-1].lsn
        self.verify = False

    def quarantine(self, batch: list[LogRecord]) -> list[LogRecord]:
        """Set aside records that cannot be decoded (named in the log) and return the rest."""
        good = []
        folder = self.folder / "quarantine"
        for record in batch:
            try:
                decode_batch([record])
                good.append(record)
            except Exception as error:  # noqa: BLE001
                folder.mkdir(exist_ok=True)
                (folder / f"{record.lsn:020d}.json").write_bytes(record.payload)
                logger.error("inference log: record %d quarantined: %s", record.lsn, error)
        return good


def _lock(folder: Path) -> int:
    fd = os.open(folder / MOVER_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        logger.warning("log mover: waiting for the mover of a previous server to exit")
        fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def run(options: argparse.Namespace) -> int:
    """The mover's main loop; returns the exit code (0 drained or told to go, 3 not drained)."""
    folder, control = Path(options.wal), options.control_fd
    lock = _lock(folder)
    pointer = DurablePointer(folder, writable=False)
    mover = Mover(options, options.status_fd)
    reader: SegmentReader | None = None
    pending: list[LogRecord] = []
    poll = min(options.interval, 0.1)
    next_commit = time.monotonic() + options.interval
    retry_at, backoff, deadline = 0.0, 0.0, float("inf")
    while True:
        now = time.monotonic()
        wait = poll if deadline == float("inf") else max(0.0, min(poll, retry_at - now))
        if select.select([control], [], [], wait)[0]:
            message = os.read(control, DRAIN.size)
            if not message:  # the server is gone; the next one recovers from the WAL
                os.close(lock)
                return 0
            deadline = time.monotonic() + DRAIN.unpack(message)[1]
        now = time.monotonic()
        if now > deadline:
            logger.error("inference log: drain deadline passed; the rest stays in the WAL")
            return 3
        if now < retry_at:
            continue
        try:
            if reader is None:
                reader = mover.start()
            pending += reader.read(pointer.get(), MAX_BATCH - len(pending))
            due = len(pending) >= options.batch or now >= next_commit or deadline < float("inf")
            if pending and due:
                mover.commit(pending)
                pending, backoff = [], 0.0
                next_commit = time.monotonic() + options.interval
                mover.report()
            elif not pending and reader.next_lsn - 1 > mover.through:  # skipped, or a gap
                mover.through = reader.next_lsn - 1
                mover.report()
        except Exception as error:  # noqa: BLE001 - retried; the WAL keeps the records
            mover.verify = True  # the failed attempt may have committed
            mover.failures += 1
            mover.error = f"{type(error).__name__}: {error}"
            backoff = min(max(2 * backoff, 0.5), 30.0)
            retry_at = time.monotonic() + backoff
            logger.exception("inference log: Delta commit failed, retrying in %.1f s", backoff)
            mover.report()
        if deadline < float("inf") and reader is not None and not pending:
            if reader.next_lsn > pointer.get():
                return 0


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments the server passes and run."""
    parser = argparse.ArgumentParser(description="inference-log mover (started by the server)")
    parser.add_argument("--wal", required=True)
    parser.add_argument("--root", required=True)
    parser.add_argument("--app-id", required=True)
    parser.add_argument("--predictions", default="inference_log")
    parser.add_argument("--feedback", default="feedback")
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--status-fd", type=int, required=True)
    parser.add_argument("--control-fd", type=int, required=True)
    parser.add_argument("--nice", type=int, default=10)
    parser.add_argument("--log-level", default="INFO")
    options = parser.parse_args(argv)
    logging.basicConfig(
        level=options.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Ctrl-C or a SIGTERM to the whole process group is for the server, which then asks for
    # a drain; the mover ends on that request or when the server is gone.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if options.nice:
        os.nice(options.nice)
    return run(options)


if __name__ == "__main__":
    sys.exit(main())
