"""Where the write-ahead log's records go: frame them, place them in segments, roll segments.

The server does not write segment files itself: :meth:`SegmentWriter.place` frames a group of
records and returns the pieces (segment, offset, bytes) that the sync helper process
(:mod:`~mlops_assets.serving.wal_syncer`) writes in order and flushes. When a group does not
fit, the next segment, zero-filled ahead of time by a helper thread, takes over (the helper
syncs the full one before it writes into the next). Every attribute is guarded by
:attr:`lock`, which is also held while the pieces are handed to the helper, so the helper
receives them in sequence-number order.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from mlops_assets.serving.wal_segments import HEADER, frame, fsync_dir, segment_name, zero_file
from mlops_assets.serving.wal_syncer import Piece

logger = logging.getLogger(__name__)
SPARE_NAME = "spare.tmp"


class SegmentWriter:
    """Frames records and places them in segment files (one writer per folder)."""

    def __init__(
        self, directory: Path, segment_bytes: int, segments: list[tuple[int, Path]], next_lsn: int
    ) -> None:
        """Continue after the recovered ``segments``; :meth:`start` opens a fresh segment."""
        self.directory = directory
        self.segment_bytes = segment_bytes
        self.segments = list(segments)
        self.next_lsn = next_lsn
        self.lock = threading.Lock()
        self.offset = 0
        self.size = 0
        self._spare: threading.Thread | None = None

    def start(self) -> None:
        """Create a fresh segment (old ones are never appended to after a restart)."""
        (self.directory / SPARE_NAME).unlink(missing_ok=True)
        self._open_segment(0)

    def _open_segment(self, needed: int) -> None:
        path = self.directory / segment_name(self.next_lsn)
        size = max(self.segment_bytes, needed)
        spare = self._take_spare() if needed <= self.segment_bytes else None
        if spare is not None:
            spare.replace(path)
        else:
            zero_file(path, size)
        fsync_dir(self.directory)
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

    def place(self, payloads: list[bytes]) -> tuple[int, list[Piece]]:
        """Frame ``payloads`` as consecutive records; return the first lsn and the pieces."""
        first, pieces, chunk, chunk_bytes = self.next_lsn, [], [], 0
        for payload in payloads:
            encoded = frame(self.next_lsn, payload)
            if self.offset + chunk_bytes + len(encoded) > self.size:
                self._add_piece(pieces, chunk)
                chunk, chunk_bytes = [], 0
                self._open_segment(len(encoded) + HEADER.size)
            chunk.append(encoded)
            chunk_bytes += len(encoded)
            self.next_lsn += 1
        self._add_piece(pieces, chunk)
        if self.offset > self.size // 2 and self._spare is None:
            self._spare = threading.Thread(target=self._make_spare, daemon=True)
            self._spare.start()
        return first, pieces

    def _add_piece(self, pieces: list[Piece], chunk: list[bytes]) -> None:
        if chunk:
            data = b"".join(chunk)  # one chunk: the same object, no copy
            pieces.append((self.segments[-1][0], self.offset, data))
            self.offset += len(data)

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
        """Wait for the spare segment being prepared."""
        if self._spare is not None:
            self._spare.join()
