"""How a traffic run goes: its settings, the pacing of requests and the late labels.

Free of I/O: :mod:`mlops_assets.simulation` does the HTTP; counting, progress and the
summary are in :mod:`mlops_assets.core.traffic_report`.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

ERROR_SAMPLES = 5


@dataclass(frozen=True)
class TrafficSettings:
    """How fast and how traffic is sent, and how feedback follows it.

    Attributes:
        rate: Target rows per second.
        batch_rows: Rows per ``/predict`` request.
        concurrency: Requests in flight at most.
        feedback_share: Share of answered rows whose true label is sent to ``/feedback``.
        feedback_delay_s: Seconds between an answer and its label (labels arrive late).
        duration_s: Stop sending after this many seconds (None: when the rows run out).
        timeout_s: HTTP timeout of one request.
        seed: Seed of the feedback sampling.
        progress_interval_s: Seconds between progress reports.
    """

    rate: float = 200.0
    batch_rows: int = 20
    concurrency: int = 4
    feedback_share: float = 1.0
    feedback_delay_s: float = 2.0
    duration_s: float | None = None
    timeout_s: float = 30.0
    seed: int = 0
    progress_interval_s: float = 2.0

    def __post_init__(self) -> None:
        problems = [
            f"{name} must be > 0, got {getattr(self, name)}"
            for name in ("rate", "timeout_s", "progress_interval_s")
            if not getattr(self, name) > 0
        ]
        problems += [
            f"{name} must be >= 1, got {getattr(self, name)}"
            for name in ("batch_rows", "concurrency")
            if getattr(self, name) < 1
        ]
        if not 0.0 <= self.feedback_share <= 1.0:
            problems.append(f"feedback_share must be in [0, 1], got {self.feedback_share}")
        if self.feedback_delay_s < 0:
            problems.append(f"feedback_delay_s must be >= 0, got {self.feedback_delay_s}")
        if self.duration_s is not None and not self.duration_s > 0:
            problems.append(f"duration_s must be > 0 when set, got {self.duration_s}")
        if problems:
            raise ValueError("invalid traffic settings: " + "; ".join(problems))

    def planned_rows(self, available: int) -> int:
        """Rows a run sends: all available, or what the duration allows at the rate."""
        if self.duration_s is None:
            return available
        return min(available, max(1, int(self.rate * self.duration_s)))


def batch_due_s(index: int, batch_rows: int, rate: float) -> float:
    """Seconds after the start at which batch ``index`` (0-based) of ``batch_rows`` is due.

    Pacing is by rows: at ``rate`` rows per second batch ``i`` leaves at
    ``i * batch_rows / rate``, so the achieved rate matches the target whatever the batch size.
    """
    if rate <= 0:
        raise ValueError(f"rate must be > 0 rows/s, got {rate}")
    return index * batch_rows / rate


def feedback_mask(rows: int, share: float, seed: int) -> np.ndarray:
    """Which rows get a feedback label: a seeded ``share`` of them."""
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"feedback share {share} must be in [0, 1]")
    return np.random.default_rng(seed).random(rows) < share


@dataclass
class FeedbackQueue:
    """Labels waiting for their delay to pass before they go to ``/feedback``."""

    _heap: list[tuple[float, int, dict[str, Any]]] = field(default_factory=list)
    _order: Any = field(default_factory=itertools.count)

    def add(self, ready_at: float, items: list[dict[str, Any]]) -> None:
        """Queue ``{"request_id", "label"}`` items that become due at ``ready_at``."""
        for item in items:
            heapq.heappush(self._heap, (ready_at, next(self._order), item))

    def due(self, now: float, limit: int) -> list[dict[str, Any]]:
        """Pop up to ``limit`` items due at ``now``, oldest first."""
        items = []
        while self._heap and self._heap[0][0] <= now and len(items) < limit:
            items.append(heapq.heappop(self._heap)[2])
        return items

    def next_due(self) -> float | None:
        """When the next item becomes due, or None when empty."""
        return self._heap[0][0] if self._heap else None

    def __len__(self) -> int:
        return len(self._heap)
