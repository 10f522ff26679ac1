"""Frozen settings of the serving process (built by ``mlops serve`` from flags and env vars)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from mlops_assets.constants import (
    CHAMPION_ALIAS,
    FEEDBACK_TABLE,
    INFERENCE_LOG_TABLE,
    REGISTERED_MODEL_NAME,
)


@dataclass(frozen=True)
class ServeSettings:
    """Everything the server needs; validated on construction.

    Attributes:
        delta_root: Lakehouse root holding the ``inference_log`` and ``feedback`` tables.
        tracking_uri: MLflow tracking URI.
        wal_dir: Folder of the write-ahead log (one server per folder).
        host: Interface to bind (loopback by default).
        port: TCP port.
        model_name: The only registered model this server loads.
        alias: Alias of the primary version.
        canary_alias: Optional alias of a canary version.
        canary_fraction: Share of requests the canary answers (0..1).
        registry_uri: MLflow registry URI (the tracking URI when None).
        admin_token: Bearer token for ``/admin/*``; admin is disabled when None. Never logged.
        poll_interval_s: Seconds between registry polls for moved aliases.
        max_rows: Most rows in one request.
        max_body_bytes: Largest request body.
        unexpected_columns: ``reject`` or ``ignore`` columns outside the contract.
        log_enabled: Write the inference log (off only for benchmarks).
        log_flush_interval_s: Longest time a durable record waits before going to Delta.
        log_batch_records: Records that trigger a Delta commit before the interval ends.
        log_max_backlog_bytes: Bytes not yet in Delta above which requests get 503.
        wal_segment_bytes: Preallocated size of one write-ahead-log segment.
        log_mover_nice: Niceness added to the process that moves the log into Delta (0..19:
            under load the server and its clients come first; it still gets CPU when idle).
        model_threads: Threads the classifier may use per prediction.
        drain_timeout_s: How long shutdown keeps trying to move the log into Delta.
        predictions_table: Delta table of logged predictions.
        feedback_table: Delta table of feedback labels.
    """

    delta_root: str
    tracking_uri: str
    wal_dir: str
    host: str = "127.0.0.1"
    port: int = 8080
    model_name: str = REGISTERED_MODEL_NAME
    alias: str = CHAMPION_ALIAS
    canary_alias: str | None = None
    canary_fraction: float = 0.0
    registry_uri: str | None = None
    admin_token: str | None = field(default=None, repr=False)
    poll_interval_s: float = 10.0
    max_rows: int = 1000
    max_body_bytes: int = 1 << 20
    unexpected_columns: Literal["reject", "ignore"] = "reject"
    log_enabled: bool = True
    log_flush_interval_s: float = 1.0
    log_batch_records: int = 5000
    log_max_backlog_bytes: int = 64 << 20
    wal_segment_bytes: int = 8 << 20
    log_mover_nice: int = 10
    model_threads: int = 1
    drain_timeout_s: float = 60.0
    predictions_table: str = INFERENCE_LOG_TABLE
    feedback_table: str = FEEDBACK_TABLE

    def __post_init__(self) -> None:
        """Refuse impossible values, naming the setting."""
        problems = []
        if not 0 <= self.port <= 65535:
            problems.append(f"port {self.port} is outside 0..65535")
        if not 0.0 <= self.canary_fraction <= 1.0:
            problems.append(f"canary_fraction {self.canary_fraction} is outside [0, 1]")
        if self.canary_fraction > 0 and not self.canary_alias:
            problems.append("canary_fraction > 0 needs a canary_alias")
        if self.canary_alias and self.canary_alias == self.alias:
            problems.append(f"canary_alias equals alias {self.alias!r}")
        if self.unexpected_columns not in ("reject", "ignore"):
            problems.append(f"unexpected_columns {self.unexpected_columns!r} is not reject|ignore")
        if self.admin_token is not None and len(self.admin_token) < 16:
            problems.append("admin_token must be at least 16 characters")
        for name in ("poll_interval_s", "log_flush_interval_s", "drain_timeout_s"):
            if getattr(self, name) <= 0:
                problems.append(f"{name} must be > 0")
        for name in ("max_rows", "max_body_bytes", "log_batch_records", "model_threads"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1")
        if self.wal_segment_bytes < 64 << 10:
            problems.append("wal_segment_bytes must be at least 64 KiB")
        if not 0 <= self.log_mover_nice <= 19:
            problems.append(f"log_mover_nice {self.log_mover_nice} is outside 0..19")
        if self.log_max_backlog_bytes < 1:
            problems.append("log_max_backlog_bytes must be >= 1")
        for name in ("delta_root", "tracking_uri", "wal_dir", "model_name", "alias"):
            if not getattr(self, name):
                problems.append(f"{name} is empty")
        if problems:
            raise ValueError("invalid serving settings: " + "; ".join(problems))

    def describe(self) -> dict[str, Any]:
        """All settings for the startup log, the admin token replaced by whether it is set."""
        facts = asdict(self)
        facts["admin_token"] = "set" if self.admin_token else "not set (admin disabled)"
        return facts
