"""Sync helper process of the write-ahead log: ``fdatasync`` runs outside the server's GIL.

The server writes records itself (``pwrite`` into the page cache); making them durable is
this small process's job. Over one pipe the server sends ``(target lsn, segment)`` requests,
each worker thread here runs ``fdatasync`` on that segment and answers ``(target lsn,
segment)`` over a second pipe, which the server's event loop watches like a socket. So a
flush costs the server two small pipe syscalls and no thread hand-off: sync threads inside the
server had to take the GIL back after every flush, which forced the event loop into extra
context switches (27 us more event-loop CPU per record than with this helper in a side-by-side
micro-benchmark on the loaded 2-core machine). A request is made only after the records it
covers were written, so its flush makes them durable. The helper exits when the server closes
the request pipe or dies (end of file). A failed flush is answered with ``FAILED`` and the
errno; the server then stops logging.

Run by :class:`SyncHelper` as ``python -S wal_syncer.py REQUEST_FD RESPONSE_FD FOLDER THREADS``.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import threading
from pathlib import Path

MESSAGE = struct.Struct("<QQ")  # target lsn, first lsn of the segment (or errno after FAILED)
FAILED = (1 << 64) - 1


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

    def request(self, target: int, segment: int) -> None:
        """Ask for a flush of ``segment`` covering every record up to ``target``."""
        os.write(self.request_fd, MESSAGE.pack(target, segment))

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


def serve(request_fd: int, response_fd: int, folder: str, threads: int) -> None:
    """The helper's main: flush what is asked until the request pipe closes."""
    handles: dict[int, list[int]] = {}  # segment -> [fd, flushes in flight]
    lock = threading.Lock()

    def worker() -> None:
        while True:
            data = os.read(request_fd, MESSAGE.size)  # writes of 16 bytes arrive whole
            if len(data) < MESSAGE.size:
                return
            target, segment = MESSAGE.unpack(data)
            try:
                with lock:
                    if segment not in handles:
                        name = f"wal-{segment:020d}.seg"
                        handles[segment] = [os.open(os.path.join(folder, name), os.O_RDONLY), 0]
                    handle = handles[segment]
                    handle[1] += 1
                try:
                    os.fdatasync(handle[0])
                finally:
                    with lock:
                        handle[1] -= 1
                        newest = max(handles)
                        idle = [s for s, (_, busy) in handles.items() if s < newest and not busy]
                        for old in idle:  # segments the server has moved on from
                            os.close(handles.pop(old)[0])
                answer = MESSAGE.pack(target, segment)
            except OSError as error:
                answer = MESSAGE.pack(FAILED, error.errno or 0)
            try:
                os.write(response_fd, answer)
            except OSError:  # the server is gone
                return

    workers = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()


if __name__ == "__main__":
    serve(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4]))
