"""Write-and-sync helper process of the write-ahead log: the disk work runs outside the server.

The server frames records and decides where they go (segment, offset); this small process
writes them and makes them durable. Over one pipe the server sends requests
``(target lsn, segment, offset, length)`` followed by ``length`` bytes of frames. One thread
here reads them in order and ``pwrite``s each at its offset, then hands ``(target lsn,
segment)`` to a worker thread, which runs ``fdatasync`` and answers ``(target lsn, segment)``
over a second pipe that the server's event loop watches like a socket. Because the writes
happen in request order, a flush covers every record written before it, so an answer for
``target`` makes every record up to ``target`` durable. When the records move on to a new
segment, the previous one is synced first, for the same reason. A request with target 0
asks for the write only (the part of a group that fills a segment before it rolls).

Why a process, and why it writes: sync threads inside the server had to take the GIL back
after every flush, which forced the event loop into extra context switches (27 us more
event-loop CPU per record in a side-by-side micro-benchmark on the loaded 2-core machine).
``pwrite`` on the event loop cost another ~13 us of its CPU per request at concurrency 8:
after every flush the page written next is clean again, so each write went through ext4's
full buffered-write path. Here it costs the server one pipe write per group. The helper exits
when the server closes the request pipe (after writing and syncing what was asked) or dies
(end of file). A failed write or flush is answered with ``FAILED`` and the errno; the server
then stops logging.

Run by :class:`SyncHelper` as ``python -S wal_syncer.py REQUEST_FD RESPONSE_FD FOLDER THREADS``.
"""

from __future__ import annotations

import fcntl
import os
import queue
import struct
import subprocess
import sys
import threading
from pathlib import Path

REQUEST = struct.Struct("<QQQQ")  # target lsn (0: write only), segment, offset, data length
MESSAGE = struct.Struct("<QQ")  # answer: target lsn, first lsn of the segment (or FAILED, errno)
FAILED = (1 << 64) - 1
PIPE_BYTES = 1 << 20  # request pipe capacity asked for (a full pipe makes the server wait)
Piece = tuple[int, int, bytes]  # segment (its first lsn), offset, framed records


class SyncHelper:
    """The server's side of the helper: start it, ask for flushes, read the answers."""

    def __init__(self, directory: Path, threads: int) -> None:
        """Prepare a helper for the segments in ``directory`` with ``threads`` workers."""
        self.directory = directory
        self.threads = threads
        self.process: subprocess.Popen | None = None
        self.request_fd = self.response_fd = -1
        self._partial = b""

    def start(self) -> None:
        """Start the process (its pipes are inherited by it alone)."""
        request_read, self.request_fd = os.pipe()
        self.response_fd, response_write = os.pipe()
        command = [sys.executable, "-S", __file__, str(request_read), str(response_write)]
        command += [str(self.directory), str(self.threads)]
        try:
            self.process = subprocess.Popen(
                command, pass_fds=(request_read, response_write), stdin=subprocess.DEVNULL
            )
        finally:
            os.close(request_read)
            os.close(response_write)
        os.set_blocking(self.response_fd, False)
        try:
            fcntl.fcntl(self.request_fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        except OSError:  # over the system's pipe limit: the default size works, with more waits
            pass

    def request(self, target: int, pieces: list[Piece]) -> None:
        """Ask for ``pieces`` to be written in order, then a flush covering lsn ``target``."""
        last = len(pieces) - 1
        message = b"".join(
            REQUEST.pack(target if index == last else 0, segment, offset, len(data)) + data
            for index, (segment, offset, data) in enumerate(pieces)
        )
        view = memoryview(message)
        while view:  # a message larger than the pipe is written in parts
            view = view[os.write(self.request_fd, view) :]

    def answers(self) -> list[tuple[int, int]] | None:
        """Every answer available now (without blocking); None once the helper is gone."""
        try:
            data = os.read(self.response_fd, 1 << 16)
        except BlockingIOError:
            return []
        if not data:
            return None
        data, self._partial = self._partial + data, b""
        whole = len(data) - len(data) % MESSAGE.size
        self._partial = data[whole:]
        return [MESSAGE.unpack_from(data, offset) for offset in range(0, whole, MESSAGE.size)]

    def close(self, timeout_s: float = 30.0) -> None:
        """Close the request pipe (the helper finishes its flushes and exits) and reap it."""
        if self.request_fd >= 0:
            os.close(self.request_fd)
            self.request_fd = -1
        if self.process is not None:
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def close_responses(self) -> None:
        """Close the answer pipe (after the event loop stopped watching it)."""
        if self.response_fd >= 0:
            os.close(self.response_fd)
            self.response_fd = -1


def _read_exact(fd: int, size: int) -> bytes | None:
    """``size`` bytes from ``fd``; None at end of file."""
    parts, missing = [], size
    while missing:
        data = os.read(fd, missing)
        if not data:
            return None
        parts.append(data)
        missing -= len(data)
    return b"".join(parts)


def serve(request_fd: int, response_fd: int, folder: str, threads: int) -> int:
    """The helper's main: write and flush what is asked until the request pipe closes.

    Returns:
        The exit status: 0 once everything asked is written and flushed, 1 after a failed
        write (the flushes already asked still run and answer).
    """
    handles: dict[int, list[int]] = {}  # segment -> [fd, flushes queued or running]
    lock = threading.Lock()
    flushes: queue.SimpleQueue[tuple[int, int] | None] = queue.SimpleQueue()

    def answer(message: bytes) -> None:
        try:
            os.write(response_fd, message)
        except OSError:  # the server is gone
            pass

    def worker() -> None:
        while (job := flushes.get()) is not None:
            target, segment = job
            handle = handles[segment]
            try:
                os.fdatasync(handle[0])
                message = MESSAGE.pack(target, segment)
            except OSError as error:
                message = MESSAGE.pack(FAILED, error.errno or 0)
            with lock:
                handle[1] -= 1
                newest = max(handles)
                idle = [s for s, (_, busy) in handles.items() if s < newest and not busy]
                for old in idle:  # segments the writes have moved on from
                    os.close(handles.pop(old)[0])
            answer(message)

    workers = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for thread in workers:
        thread.start()
    try:
        while (header := _read_exact(request_fd, REQUEST.size)) is not None:
            target, segment, offset, length = REQUEST.unpack(header)
            data = _read_exact(request_fd, length)
            if data is None:
                break
            try:
                if segment not in handles:
                    with lock:
                        previous = handles[max(handles)][0] if handles else -1
                    if previous >= 0:  # the full segment is durable before the next one is used
                        os.fdatasync(previous)
                    path = os.path.join(folder, f"wal-{segment:020d}.seg")
                    with lock:
                        handles[segment] = [os.open(path, os.O_WRONLY), 0]
                fd, view = handles[segment][0], memoryview(data)
                while view:
                    written = os.pwrite(fd, view, offset)
                    view, offset = view[written:], offset + written
            except OSError as error:
                answer(MESSAGE.pack(FAILED, error.errno or 0))
                return 1
            if target:
                with lock:
                    handles[segment][1] += 1
                flushes.put((target, segment))
    finally:
        for _ in workers:
            flushes.put(None)
        for thread in workers:
            thread.join()
    return 0


if __name__ == "__main__":
    sys.exit(serve(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])))
