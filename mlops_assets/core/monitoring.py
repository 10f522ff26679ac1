"""Inference-log windows by Delta version, and graded thresholds for the monitoring checks.

Windows are defined by Delta versions of ``inference_log``. "Rows added after version v"
is read with :meth:`DeltaRsEngine.read_since <mlops_assets.core.tables.DeltaRsEngine.read_since>`
when the engine has it: the data files present at the newer version but not at ``v``, which on
the append-only log are exactly the added rows, so a window costs the size of the window, not
of the table. Engines without it (Spark), or a table rewritten in between (overwrite,
compaction), fall back to an anti-join on ``request_id`` between the two versions, which is
correct in every case and costs two full reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import pandas as pd

from mlops_assets.constants import INFERENCE_LOG_TABLE
from mlops_assets.core.inference_log import LOG_COLUMNS
from mlops_assets.core.tables import DeltaEngine

WindowMode = Literal["since_last_report", "last_rows"]
REQUEST_ID = "request_id"


class MonitoringError(ValueError):
    """Monitoring cannot run as asked; the message names the table, version or column."""


def feature_names(log: pd.DataFrame) -> list[str]:
    """The feature columns of an inference-log frame (every column the server did not add)."""
    return [str(name) for name in log.columns if name not in LOG_COLUMNS]


def table_rows(engine: DeltaEngine, name: str, version: int | None = None) -> int:
    """Rows of ``name`` at ``version`` (delta-rs: from file statistics, no data read)."""
    counter = getattr(engine, "row_count", None)
    if counter is not None:
        return int(counter(name, version))
    return len(engine.read(name, version))


def rows_since(
    engine: DeltaEngine, name: str, after_version: int, version: int, key: str = REQUEST_ID
) -> pd.DataFrame:
    """Rows of ``name`` added after ``after_version`` up to ``version`` (see module docs).

    Args:
        engine: Delta engine.
        name: Table name (append-only, with a unique ``key`` column).
        after_version: Rows at this version are excluded; -1 reads every row.
        version: Newest version read.
        key: Unique row id for the anti-join fallback.

    Returns:
        The added rows.
    """
    if after_version >= version:
        return engine.read(name, version).iloc[0:0]
    fast = getattr(engine, "read_since", None)
    if fast is not None:
        added = fast(name, after_version, version)
        if added is not None:
            return added
    current = engine.read(name, version)
    if after_version < 0:
        return current
    before = engine.read(name, after_version)
    if key not in current.columns:
        raise MonitoringError(f"table {name!r} has no {key!r} column to find rows added")
    return current[~current[key].isin(before[key])].reset_index(drop=True)


@dataclass(frozen=True)
class Window:
    """Inference-log rows a monitoring asset looked at.

    Attributes:
        frame: The rows.
        mode: ``since_last_report`` or ``last_rows``.
        after_version: Rows added after this version (-1: from the first version).
        to_version: Newest version read (-1: the table does not exist yet).
    """

    frame: pd.DataFrame = field(repr=False)
    mode: WindowMode
    after_version: int
    to_version: int

    @property
    def rows(self) -> int:
        """Rows in the window."""
        return len(self.frame)


def read_window(
    engine: DeltaEngine,
    mode: WindowMode,
    after_version: int = -1,
    last_rows: int = 5000,
    table: str = INFERENCE_LOG_TABLE,
) -> Window:
    """Read the current window of the inference log.

    Args:
        engine: Delta engine.
        mode: ``since_last_report``: rows added after ``after_version``; ``last_rows``: the
            newest ``last_rows`` rows by timestamp.
        after_version: Start of a ``since_last_report`` window (exclusive).
        last_rows: Size of a ``last_rows`` window.
        table: The inference-log table.

    Returns:
        The window (empty when the table does not exist yet).
    """
    if mode not in ("since_last_report", "last_rows"):
        raise MonitoringError(f"window mode {mode!r} is not since_last_report or last_rows")
    if last_rows < 1:
        raise MonitoringError(f"last_rows must be at least 1, got {last_rows}")
    latest = engine.latest_version(table)
    if latest is None:
        return Window(pd.DataFrame(), mode, after_version, -1)
    if mode == "last_rows":
        frame = engine.read(table, latest)
        if "timestamp" in frame.columns:
            frame = frame.sort_values("timestamp", kind="stable")
        return Window(frame.tail(last_rows).reset_index(drop=True), mode, -1, latest)
    return Window(rows_since(engine, table, after_version, latest), mode, after_version, latest)


def next_window_start(previous: Mapping[str, object] | None) -> int:
    """Where the next ``since_last_report`` window starts, from the previous report's metadata.

    A report with a verdict consumed its rows (the next window starts after its newest
    version); a "not enough data" report did not, so its rows stay in the next window.
    """
    if not previous or "inference_log_version" not in previous:
        return -1
    if previous.get("window_mode") == "last_rows":
        return int(previous["inference_log_version"])  # type: ignore[arg-type]
    if previous.get("enough_data", True):
        return int(previous["inference_log_version"])  # type: ignore[arg-type]
    return int(previous.get("inference_log_from_version", -1))  # type: ignore[arg-type]


Grade = Literal["pass", "warn", "error"]


def grade(value: float, warn_at: float, error_at: float) -> Grade:
    """``error`` at or above ``error_at``, ``warn`` at or above ``warn_at``, else ``pass``."""
    if warn_at > error_at:
        raise MonitoringError(f"warn threshold {warn_at} is above error threshold {error_at}")
    if value >= error_at:
        return "error"
    return "warn" if value >= warn_at else "pass"
