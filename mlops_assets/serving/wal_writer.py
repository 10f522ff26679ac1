"""The active segment of the write-ahead log: append frames, roll to a preallocated segment.

Writing does not sync: the caller decides when to ``fdatasync`` (the log's sync thread). When a
group does not fit, the full segment is synced right away and its descriptor retired (closed
later by the sync thread, which may still be syncing it), and the next segment, zero-filled
ahead of time by a helper thread, takes over. Every attribute is guarded by :attr:`lock`.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from mlops_assets.serving.wal_segments import HEADER, frame, fsync_dir, segment_name, zero_file

logger = logging.getLogger(__name__)
SPARE_NAME = "spare.tmp"


class SegmentWriter:
    """Frames records into segment files (one writer per folder)."""

    def __init__(
        self, directory: Path, segment_bytes: int, segments: list[tuple[int, Path]], next_lsn: int
    ) -> None:
        """Continue after the recovered ``segments``; the first write opens a fresh segment."""
        self.directory = directory
        self.segment_bytes = segment_bytes
        self.segments = list(segments)
        self.next_lsn = next_lsn
        self.lock = threading.Lock()
        self.fd = -1
        self.offset = 0
        self.size = 0
        self.retired: list[int] = []
        self._spare: threading.Thread | None = None

    def start(self) -> None:
        """Open a fresh segment (old ones are never appended to after a restart)."""
        (self.directory / SPARE_NAME).unlink(missing_ok=True)
        self._open_segment(0)

    def _open_segment(self, needed: int) -> None:
        path = self.directory / segment_name(self.next_lsn)
        size = max(self.segment_bytes, needed)
        spare = self._take_spare() if needed <= self.segment_bytes else None
        if spare is not None:
            os.replace(spare, path)
        else:
            zero_file(path, size)
        fsync_dir(self.directory)
        if self.fd >= 0:
            os.fdatasync(self.fd)  # the full segment is durable before the next one starts
            self.retired.append(self.fd)
        self.fd = os.open(path, os.O_WRONLY)
        self.offset, self.size = 0, size
        self.segments = [entry for entry in self.segments if entry[1] != path]
        self.segments.append((self.next_lsn, path))

    def _make_spare(self) -> None:
        try:
            zero_file(self.directory / SPARE_NAME, self.segment_bytes)
        except OSError:
            logger.exception("WAL: could not preallocate the next segment")

    def _take_spare(self) -> Path | None:
        thread, self._spare = self._spare, None
        if thread is None:
            return None
        thread.join()
        spare = self.directory / SPARE_NAME
        return spare if spare.is_file() else None

    def write(self, payloads: list[bytes]) -> int:
        """Frame and write ``payloads`` (not synced) as consecutive records; return the 1st lsn."""
        first, chunk, chunk_bytes = self.next_lsn, [], 0
        for payload in payloads:
            encoded = frame(self.next_lsn, payload)
            if self.offset + chunk_bytes + len(encoded) > self.size:
                self._pwrite(chunk)
                chunk, chunk_bytes = [], 0
                self._open_segment(len(encoded) + HEADER.size)
            chunk.append(encoded)
            chunk_bytes += len(encoded)
            self.next_lsn += 1
        self._pwrite(chunk)
        if self.offset > self.size // 2 and self._spare is None:
            self._spare = threading.Thread(target=self._make_spare, daemon=True)
            self._spare.start()
        return first

    def _pwrite(self, chunk: list[bytes]) -> None:
        if chunk:
            data = b"".join(chunk)
            os.pwrite(self.fd, data, self.offset)
            self.offset += len(data)

    def close_retired(self, busy: set[int] | frozenset = frozenset()) -> None:
        """Close the descriptors of full segments (synced when retired) not being synced."""
        for fd in [fd for fd in self.retired if fd not in busy]:
            self.retired.remove(fd)
            os.close(fd)

    def release_through(self, lsn: int) -> int:
        """Delete closed segments whose records all have sequence numbers <= ``lsn``."""
        removable = [
            path
            for (_, path), (next_first, _) in zip(self.segments, self.segments[1:], strict=False)
            if next_first - 1 <= lsn
        ]
        self.segments = self.segments[len(removable) :]
        for path in removable:
            path.unlink(missing_ok=True)
        return len(removable)

    def close(self) -> None:
        """Sync and close every descriptor."""
        if self._spare is not None:
            self._spare.join()
        if self.fd >= 0:
            os.fdatasync(self.fd)
            os.close(self.fd)
            self.fd = -1
        self.close_retired()
