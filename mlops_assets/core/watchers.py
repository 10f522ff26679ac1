"""Decisions of the inference-log and source-data sensors (see :mod:`mlops_assets.core.sensors`).

* Inference log: a new Delta version with enough new rows (or any new row once a maximum
  wait has passed since the last request) requests the monitoring run keyed by that version.
* Source data: a changed file fingerprint (size + modification time, or a SHA-256 of the
  content) requests the full training run keyed by the fingerprint. The first look only
  records the fingerprint: the data already trained on is not "new".
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from mlops_assets.core.sensors import JsonCursor, SensorDecision, active_runs_text

FingerprintMethod = Literal["stat", "sha256"]

# --- inference log -> monitoring -----------------------------------------------------


@dataclass(frozen=True)
class LogCursor(JsonCursor):
    """The inference-log sensor's cursor.

    Attributes:
        version: The ``inference_log`` version the last monitoring run was requested for
            (-1: none yet).
        rows: Rows of the table at that version.
        requested_at: When that run was requested (seconds since the epoch).
        pending_since: Before the first request: when new rows were first seen.
    """

    version: int = -1
    rows: int = 0
    requested_at: float | None = None
    pending_since: float | None = None


def decide_monitoring(
    latest_version: int | None,
    rows: int,
    cursor: LogCursor,
    min_new_rows: int,
    max_wait_s: float,
    now: float,
    active_runs: Sequence[str] = (),
    job: str = "monitoring_job",
) -> SensorDecision:
    """Decide whether the inference log grew enough to request a monitoring run.

    Args:
        latest_version: The table's latest version (None: no table yet).
        rows: Rows of the table at ``latest_version``.
        cursor: The stored cursor.
        min_new_rows: New rows that request a run at once.
        max_wait_s: After this long since the last request (before the first one: since
            new rows were first seen), any new row requests a run.
        now: Current time (seconds since the epoch).
        active_runs: Ids of queued or running monitoring runs.
        job: The monitoring job's name, for messages.

    Returns:
        A request keyed ``inference_log-v<version>``, or a skip (the cursor only records
        when new rows were first seen).
    """
    if latest_version is None:
        return SensorDecision(None, "inference_log does not exist yet", cursor.to_json())
    if latest_version <= cursor.version:
        return SensorDecision(
            None, f"inference_log still at version {latest_version}", cursor.to_json()
        )
    new_rows = rows - cursor.rows if rows >= cursor.rows else rows  # rewritten: count all
    since = cursor.requested_at if cursor.requested_at is not None else cursor.pending_since
    waited = now - since if since is not None else 0.0
    enough = new_rows >= min_new_rows
    overdue = new_rows > 0 and waited >= max_wait_s
    progress = f"{new_rows} new row(s) since version {cursor.version} (now v{latest_version})"
    if not (enough or overdue):
        pending = cursor if since is not None else replace(cursor, pending_since=now)
        return SensorDecision(
            None,
            f"{progress}: waiting for {min_new_rows}, or {max_wait_s - waited:.0f} s more",
            pending.to_json(),
        )
    if active_runs:
        return SensorDecision(
            None, f"{progress}, but {active_runs_text(active_runs, job)}", cursor.to_json()
        )
    requested = LogCursor(latest_version, rows, now)
    return SensorDecision(
        f"inference_log-v{latest_version}", f"monitoring requested: {progress}", requested.to_json()
    )


# --- source data -> training ---------------------------------------------------------


@dataclass(frozen=True)
class SourceCursor(JsonCursor):
    """The source-data sensor's cursor.

    Attributes:
        fingerprint: Fingerprint of the source last seen (None: never looked).
        source: What was fingerprinted (path).
    """

    fingerprint: str | None = None
    source: str | None = None


def file_fingerprint(path: str | Path, method: FingerprintMethod = "stat") -> str | None:
    """Fingerprint of a file: ``<size>-<mtime ns>`` or ``sha256:<hex>``; None when missing."""
    target = Path(path)
    if not target.is_file():
        return None
    if method == "sha256":
        digest = hashlib.sha256()
        with target.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        return f"sha256:{digest.hexdigest()}"
    if method != "stat":
        raise ValueError(f"fingerprint method {method!r} is not stat or sha256")
    stat = target.stat()
    return f"{stat.st_size}-{stat.st_mtime_ns}"


def decide_source(
    source: str, fingerprint: str | None, cursor: SourceCursor, job: str = "main_job"
) -> SensorDecision:
    """Decide whether the source changed since the cursor.

    The first look only records the fingerprint (the data already trained on is not "new").

    Args:
        source: What is watched (a file path), for messages.
        fingerprint: Its current fingerprint (None: missing).
        cursor: The stored cursor.
        job: The training job's name, for messages.

    Returns:
        A request keyed ``source-<fingerprint>``, or a skip.
    """
    if fingerprint is None:
        return SensorDecision(None, f"source {source} does not exist", cursor.to_json())
    seen = SourceCursor(fingerprint, source)
    if cursor.fingerprint is None or cursor.source != source:
        return SensorDecision(
            None, f"first look at source {source}: recorded {fingerprint}", seen.to_json()
        )
    if cursor.fingerprint == fingerprint:
        return SensorDecision(None, f"source {source} unchanged ({fingerprint})", cursor.to_json())
    return SensorDecision(
        f"source-{fingerprint}",
        f"source {source} changed ({cursor.fingerprint} -> {fingerprint}): {job} requested",
        seen.to_json(),
    )
