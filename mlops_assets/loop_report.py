"""What the closed loop did: the step timings and facts of ``mlops demo``, and how to read them.

The facts come from where the system records them (Dagster materializations and run records,
the server's ``/model``, the traffic summaries), never from the demo's own guesses.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mlops_assets.core.traffic_report import TrafficSummary

SCALARS = (int, float, str, bool)
# Metadata each part of the summary shows, per asset.
DRIFT_KEYS = (
    "enough_data",
    "drift_share",
    "drifted_columns",
    "domain_auc",
    "domain_top_features",
    "current_rows",
    "champion_version",
)
PERFORMANCE_KEYS = (
    "enough_data",
    "labeled_rows",
    "positives",
    "online_kappa",
    "test_kappa",
    "performance_drop",
)
DECISION_KEYS = (
    "decision",
    "reason",
    "challenger_version",
    "champion_before",
    "champion_version",
    "champion_training_rows",
)
DEPLOY_KEYS = ("status", "reason", "version", "previous_version", "serving_version")
MODEL_KEYS = ("version", "test_kappa", "test_f1", "test_pr_auc", "test_roc_auc")


@dataclass(frozen=True)
class Step:
    """One step of the loop.

    Attributes:
        name: What the step did.
        seconds: How long it took.
        detail: The facts it produced, one line.
    """

    name: str
    seconds: float
    detail: str = ""


@dataclass(frozen=True)
class AssetFacts:
    """A materialization's scalar metadata and where it came from.

    Attributes:
        asset: Asset key.
        run_id: Dagster run that materialized it.
        timestamp: Epoch seconds of the materialization.
        storage_id: Event storage id.
        metadata: Scalar metadata values (numbers, strings, flat lists and dicts of them).
    """

    asset: str
    run_id: str
    timestamp: float
    storage_id: int
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def get(self, *keys: str, default: Any = None) -> Any:
        """The first of ``keys`` present in the metadata."""
        for key in keys:
            if key in self.metadata:
                return self.metadata[key]
        return default


def pick(facts: AssetFacts | None, keys: tuple[str, ...]) -> dict[str, Any]:
    """The ``keys`` present in ``facts`` (none for no facts), in the order of ``keys``."""
    if facts is None:
        return {}
    return {key: facts.metadata[key] for key in keys if key in facts.metadata}


def facts_of(record: Any) -> AssetFacts:
    """:class:`AssetFacts` of a Dagster ``EventLogRecord`` holding a materialization."""
    materialization = record.asset_materialization
    metadata = {}
    for key, entry in materialization.metadata.items():
        value = entry.value
        if isinstance(value, dict) and all(isinstance(item, SCALARS) for item in value.values()):
            metadata[key] = dict(value)
        elif isinstance(value, SCALARS) or (
            isinstance(value, list | tuple) and all(isinstance(item, SCALARS) for item in value)
        ):
            metadata[key] = value
    return AssetFacts(
        asset=materialization.asset_key.to_user_string(),
        run_id=record.run_id,
        timestamp=record.timestamp,
        storage_id=record.storage_id,
        metadata=metadata,
    )


@dataclass(frozen=True)
class LoopSummary:
    """The outcome of one closed loop (what ``mlops demo`` prints).

    Attributes:
        completed: Whether the loop went all the way (a retraining run launched by the
            drift sensor finished and its decision was recorded).
        reason: One sentence: how it ended, or what stopped it.
        source: Where the training data came from (says so when synthetic).
        steps: Every step with its time and facts.
        initial: The model main_job trained: version, test metrics, decision, the
            champion after it, deployment.
        normal_traffic: Traffic before the drift.
        clean_report: The drift report on the normal traffic.
        drifted_traffic: Drifted traffic.
        drift_report: The last drift report before the retraining run was created.
        performance: The last online performance before the retraining run was created.
        retraining_run_id: The sensor-launched run, or None.
        retraining_status: Its final status.
        decision: The champion decision of that run (promote / keep + reason + versions).
        deployment: Its deployment record (status, version).
        serving_version: The version answering requests at the end.
        timings: Seconds from the drift onset to each later event.
        trigger: Why the drift sensor asked for retraining (the run's ``mlops/trigger`` tag).
        processes: The child processes (pid and log file) by name.
    """

    completed: bool
    reason: str
    source: str = ""
    steps: tuple[Step, ...] = ()
    initial: Mapping[str, Any] = field(default_factory=dict)
    normal_traffic: TrafficSummary | None = None
    clean_report: Mapping[str, Any] = field(default_factory=dict)
    drifted_traffic: TrafficSummary | None = None
    drift_report: Mapping[str, Any] = field(default_factory=dict)
    performance: Mapping[str, Any] = field(default_factory=dict)
    retraining_run_id: str | None = None
    retraining_status: str | None = None
    decision: Mapping[str, Any] = field(default_factory=dict)
    deployment: Mapping[str, Any] = field(default_factory=dict)
    serving_version: int | None = None
    timings: Mapping[str, float] = field(default_factory=dict)
    trigger: str = ""
    processes: Mapping[str, str] = field(default_factory=dict)

    def lines(self) -> list[str]:
        """The printed summary."""
        lines = [f"closed loop {'completed' if self.completed else 'INCOMPLETE'}: {self.reason}"]
        if self.source:
            lines.append(f"  data: {self.source}")
        lines.append("  steps:")
        lines += [f"    {s.name:<34} {s.seconds:7.1f} s  {s.detail}" for s in self.steps]
        for title, facts in (
            ("main_job model", self.initial),
            ("report on normal traffic", self.clean_report),
            ("drift report before retraining", self.drift_report),
            ("online performance before retraining", self.performance),
            ("decision", self.decision),
            ("deployment", self.deployment),
        ):
            if facts:
                lines.append(f"  {title}: {describe(facts)}")
        for title, traffic in (("normal", self.normal_traffic), ("drifted", self.drifted_traffic)):
            if traffic is not None:
                lines.append(f"  {title} traffic: " + "; ".join(traffic.lines()[:5]))
        if self.retraining_run_id:
            lines.append(f"  retraining run: {self.retraining_run_id} ({self.retraining_status})")
        if self.trigger:
            lines.append(f"  drift sensor trigger: {self.trigger}")
        lines.append(f"  version answering now: {self.serving_version}")
        if self.timings:
            lines.append("  from drift onset:")
            lines += [f"    {name:<34} {seconds:7.1f} s" for name, seconds in self.timings.items()]
        lines += [f"  {name}: {facts}" for name, facts in self.processes.items()]
        return lines

    def to_json(self) -> str:
        """The summary as JSON."""
        return json.dumps(dataclasses.asdict(self), indent=2, default=str)


def describe(facts: Mapping[str, Any]) -> str:
    """``key=value, ...`` with short numbers and the top entries of dicts."""
    return ", ".join(f"{key}={_short(value)}" for key, value in facts.items())


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        top = sorted(
            value.items(), key=lambda item: -abs(item[1]) if isinstance(item[1], float) else 0
        )
        text = "{" + ", ".join(f"{key}: {_short(item)}" for key, item in top[:5]) + "}"
    else:
        text = str(value)
    return text if len(text) <= 120 else text[:117] + "..."


class InstanceReader:
    """Reads what the Dagster instance recorded: materializations and run records."""

    def __init__(self, instance: Any) -> None:
        """Bind to a ``DagsterInstance``."""
        self.instance = instance

    def latest_storage_id(self, asset: str) -> int:
        """Storage id of the newest materialization of ``asset`` (0: none)."""
        records = self.materializations(asset, limit=1)
        return records[0].storage_id if records else 0

    def materializations(self, asset: str, limit: int = 50) -> list[Any]:
        """The newest materialization records of ``asset``, newest first."""
        import dagster as dg

        return list(self.instance.fetch_materializations(dg.AssetKey(asset), limit=limit).records)

    def newest(self, asset: str, after: int = 0, run_id: str | None = None) -> AssetFacts | None:
        """The newest materialization of ``asset`` after storage id ``after`` (of a run)."""
        for record in self.materializations(asset):
            if record.storage_id > after and (run_id is None or record.run_id == run_id):
                return facts_of(record)
        return None

    def newest_before(
        self, asset: str, timestamp: float, with_verdict: bool = False
    ) -> AssetFacts | None:
        """The newest materialization of ``asset`` written at or before ``timestamp``.

        Args:
            asset: Asset key.
            timestamp: Epoch seconds.
            with_verdict: Skip reports that said "not enough data" (``enough_data`` false):
                a trailing window with no new rows says nothing about the drift before it.
        """
        for record in self.materializations(asset, limit=20):
            if record.timestamp > timestamp:
                continue
            facts = facts_of(record)
            if not with_verdict or facts.get("enough_data", default=True):
                return facts
        return None

    def sensor_run(self, job: str, sensor_tag: str, created_after: float) -> Any:
        """The first run of ``job`` a sensor created after ``created_after`` (a RunRecord)."""
        from datetime import UTC, datetime

        import dagster as dg

        after = datetime.fromtimestamp(created_after, tz=UTC)
        records = self.instance.get_run_records(
            dg.RunsFilter(job_name=job, created_after=after), limit=5
        )
        launched = [record for record in records if sensor_tag in record.dagster_run.tags]
        if not launched:
            return None
        return self.instance.get_run_record_by_id(launched[-1].dagster_run.run_id)

    def daemon_alive(self, since: float, daemon_type: str = "SENSOR") -> bool:
        """Whether the daemon of ``daemon_type`` sent a heartbeat after ``since`` (epoch s).

        Heartbeats of an earlier daemon on the same instance stay in storage; only a newer
        one shows that the daemon just started is running.
        """
        beat = self.instance.get_daemon_heartbeats().get(daemon_type)
        return beat is not None and beat.timestamp >= since
