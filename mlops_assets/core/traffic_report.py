"""Counting a traffic run: progress snapshots while it goes and the summary at the end.

:mod:`mlops_assets.simulation` feeds a :class:`TrafficTally` what happened; the tally hands
out frozen :class:`TrafficProgress` snapshots and, at the end, a :class:`TrafficSummary`.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

ERROR_SAMPLES = 5


def version_counts(versions: Mapping[int, int]) -> str:
    """``v1: 800, v2: 200``: rows answered per model version."""
    return ", ".join(f"v{version}: {count}" for version, count in sorted(versions.items()))


@dataclass(frozen=True)
class VersionSeen:
    """When a model version first answered.

    Attributes:
        version: Registry version.
        row: Index of the first traffic row it answered.
        elapsed_s: Seconds after the start of the run.
        wall_time: Epoch seconds.
    """

    version: int
    row: int
    elapsed_s: float
    wall_time: float


@dataclass(frozen=True)
class TrafficProgress:
    """A snapshot while traffic runs (one progress line)."""

    elapsed_s: float
    rows_planned: int
    rows_sent: int
    rows_answered: int
    rows_failed: int
    feedback_sent: int
    feedback_waiting: int
    current_version: int | None
    drifting: bool

    @property
    def rate(self) -> float:
        """Rows answered per second so far."""
        return self.rows_answered / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def line(self) -> str:
        """``traffic 1200/3000 rows, 598 rows/s, 0 errors, feedback 1100 (+100 waiting), v1``."""
        version = f"v{self.current_version}" if self.current_version is not None else "v?"
        return (
            f"traffic {self.rows_answered}/{self.rows_planned} rows, {self.rate:.0f} rows/s, "
            f"{self.rows_failed} errors, feedback {self.feedback_sent} "
            f"(+{self.feedback_waiting} waiting), {version}"
            + (", drifted" if self.drifting else "")
            + f", {self.elapsed_s:.0f} s"
        )


@dataclass(frozen=True)
class TrafficSummary:
    """What a traffic run did.

    Attributes:
        rows_planned: Rows the run meant to send.
        rows_sent: Rows sent in requests.
        rows_answered: Rows scored (HTTP 200).
        rows_failed: Rows in failed requests.
        errors: Failed rows per cause (``HTTP 422``, ``ConnectError``...).
        error_samples: The first few error messages.
        feedback_sent: Labels accepted by ``/feedback``.
        feedback_failed: Labels refused or lost.
        feedback_unsent: Labels still waiting when the run stopped.
        seconds: Wall-clock duration.
        target_rate: Rows per second asked for.
        started_at: Epoch seconds of the first request.
        drift_onset_row: First drifted row, or None.
        drift_onset_at: Epoch seconds when the first drifted row was sent, or None.
        drifted_rows_answered: Drifted rows scored.
        positives_answered: Scored rows whose true label is 1.
        predicted_positives: Scored rows the model labelled 1.
        positives_caught: Scored rows labelled 1 by the model whose true label is 1.
        versions: Rows answered per model version.
        first_seen: When each version first answered, in order.
    """

    rows_planned: int
    rows_sent: int
    rows_answered: int
    rows_failed: int
    errors: Mapping[str, int]
    error_samples: tuple[str, ...]
    feedback_sent: int
    feedback_failed: int
    feedback_unsent: int
    seconds: float
    target_rate: float
    started_at: float
    drift_onset_row: int | None
    drift_onset_at: float | None
    drifted_rows_answered: int
    positives_answered: int
    predicted_positives: int
    positives_caught: int
    versions: Mapping[int, int]
    first_seen: tuple[VersionSeen, ...]

    @property
    def achieved_rate(self) -> float:
        """Rows answered per second over the run."""
        return self.rows_answered / self.seconds if self.seconds > 0 else 0.0

    @property
    def last_version(self) -> int | None:
        """The version that answered last (the newest seen)."""
        return self.first_seen[-1].version if self.first_seen else None

    def lines(self) -> list[str]:
        """Human-readable summary lines."""
        lines = [
            f"rows: {self.rows_answered} answered of {self.rows_sent} sent "
            f"({self.rows_planned} planned) in {self.seconds:.1f} s, "
            f"{self.achieved_rate:.0f} rows/s (target {self.target_rate:g})",
            f"errors: {self.rows_failed} rows" + (f" ({dict(self.errors)})" if self.errors else ""),
            f"feedback: {self.feedback_sent} labels sent, {self.feedback_failed} failed, "
            f"{self.feedback_unsent} unsent",
            f"labels: {self.positives_answered} positives answered, "
            f"{self.predicted_positives} predicted positive, {self.positives_caught} caught"
            + (
                f" (recall {self.positives_caught / self.positives_answered:.2f})"
                if self.positives_answered
                else ""
            ),
            f"versions: {version_counts(self.versions) or 'none'}",
        ]
        if self.drift_onset_row is not None:
            lines.append(
                f"drift: from row {self.drift_onset_row}, {self.drifted_rows_answered} drifted "
                "rows answered"
            )
        lines += [f"error: {sample}" for sample in self.error_samples]
        return lines


@dataclass
class TrafficTally:
    """Counts what happens during a run (mutable; hands out frozen snapshots)."""

    rows_planned: int
    target_rate: float
    started: float = field(default_factory=time.monotonic)
    started_wall: float = field(default_factory=time.time)
    rows_sent: int = 0
    rows_answered: int = 0
    rows_failed: int = 0
    feedback_sent: int = 0
    feedback_failed: int = 0
    drifted_rows_answered: int = 0
    positives_answered: int = 0
    predicted_positives: int = 0
    positives_caught: int = 0
    drift_onset_row: int | None = None
    drift_onset_at: float | None = None
    current_version: int | None = None
    drifting: bool = False
    errors: Counter = field(default_factory=Counter)
    error_samples: list[str] = field(default_factory=list)
    versions: Counter = field(default_factory=Counter)
    first_seen: dict[int, VersionSeen] = field(default_factory=dict)

    def sent(self, first_row: int, drifted: np.ndarray) -> None:
        """Record a request of ``len(drifted)`` rows starting at ``first_row`` leaving now."""
        self.rows_sent += len(drifted)
        if drifted.any() and self.drift_onset_at is None:
            self.drift_onset_row = first_row + int(np.flatnonzero(drifted)[0])
            self.drift_onset_at = time.time()
        self.drifting = self.drifting or bool(drifted.any())

    def answered(
        self, first_row: int, version: int, truth: np.ndarray, predicted: list[int], drifted
    ) -> None:
        """Record a scored request: its version, true labels, predicted labels, drift marks."""
        rows = len(truth)
        self.rows_answered += rows
        self.versions[version] += rows
        self.current_version = version
        self.positives_answered += int(np.sum(truth))
        self.predicted_positives += int(sum(predicted))
        self.positives_caught += int(np.sum(np.asarray(truth) * np.asarray(predicted)))
        self.drifted_rows_answered += int(np.sum(drifted))
        if version not in self.first_seen:
            self.first_seen[version] = VersionSeen(
                version, first_row, round(time.monotonic() - self.started, 3), time.time()
            )

    def failed(self, rows: int, cause: str, message: str) -> None:
        """Record a failed request of ``rows`` rows."""
        self.rows_failed += rows
        self.errors[cause] += rows
        if len(self.error_samples) < ERROR_SAMPLES:
            self.error_samples.append(f"{cause}: {message[:300]}")

    def progress(self, waiting: int) -> TrafficProgress:
        """A snapshot, with ``waiting`` labels not yet due."""
        return TrafficProgress(
            elapsed_s=time.monotonic() - self.started,
            rows_planned=self.rows_planned,
            rows_sent=self.rows_sent,
            rows_answered=self.rows_answered,
            rows_failed=self.rows_failed,
            feedback_sent=self.feedback_sent,
            feedback_waiting=waiting,
            current_version=self.current_version,
            drifting=self.drifting,
        )

    def summary(self, unsent: int) -> TrafficSummary:
        """The final account, with ``unsent`` labels that never went out."""
        return TrafficSummary(
            rows_planned=self.rows_planned,
            rows_sent=self.rows_sent,
            rows_answered=self.rows_answered,
            rows_failed=self.rows_failed,
            errors=dict(self.errors),
            error_samples=tuple(self.error_samples),
            feedback_sent=self.feedback_sent,
            feedback_failed=self.feedback_failed,
            feedback_unsent=unsent,
            seconds=round(time.monotonic() - self.started, 3),
            target_rate=self.target_rate,
            started_at=self.started_wall,
            drift_onset_row=self.drift_onset_row,
            drift_onset_at=self.drift_onset_at,
            drifted_rows_answered=self.drifted_rows_answered,
            positives_answered=self.positives_answered,
            predicted_positives=self.predicted_positives,
            positives_caught=self.positives_caught,
            versions=dict(self.versions),
            first_seen=tuple(sorted(self.first_seen.values(), key=lambda seen: seen.elapsed_s)),
        )
