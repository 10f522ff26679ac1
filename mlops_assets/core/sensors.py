"""Decisions of the automation sensors, as pure functions over plain values: the drift sensor.

Each sensor keeps a cursor (a frozen dataclass stored as JSON by Dagster) and asks one
function here what to do on a tick. The answer, :class:`SensorDecision`, is either a run
request (with a run key that deduplicates it) or a human-readable skip reason, and always
the cursor to store. Because the cursor records exactly what was evaluated, a restarted
daemon neither misses a signal that arrived while it was down nor repeats a trigger.

* Drift: a new ``drift_report`` / ``model_performance`` materialization whose drift share,
  domain-classifier AUC or performance drop crosses its threshold requests a retraining
  run keyed by that materialization's storage id, unless one is in progress or the last
  trigger is within the cooldown. Suppressed signals are consumed, not deferred: they
  describe the model being replaced, and the next report after the cooldown decides again.

The inference-log and source-data sensors decide in :mod:`mlops_assets.core.watchers`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any, TypeVar

Cursor = TypeVar("Cursor", bound="JsonCursor")


class JsonCursor:
    """JSON (de)serialisation shared by the cursor dataclasses."""

    def to_json(self) -> str:
        """Serialise for ``context.update_cursor``."""
        return json.dumps(asdict(self), sort_keys=True)  # type: ignore[call-overload]

    @classmethod
    def from_json(cls: type[Cursor], text: str | None) -> Cursor:
        """Parse a stored cursor; None or empty gives the initial cursor.

        Raises:
            ValueError: Naming the cursor type and what is wrong with the text.
        """
        if not text:
            return cls()
        try:
            payload = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"{cls.__name__}: stored cursor {text!r} is not JSON") from error
        if not isinstance(payload, dict):
            raise ValueError(f"{cls.__name__}: stored cursor {text!r} is not a JSON object")
        known = {field.name for field in fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(payload) - known)
        if unknown:
            raise ValueError(f"{cls.__name__}: stored cursor has unknown fields {unknown}")
        return cls(**payload)


@dataclass(frozen=True)
class SensorDecision:
    """What a sensor tick does.

    Attributes:
        run_key: Key of the run to request; None to skip.
        reason: Why (the skip reason shown on the tick, or what triggered the run).
        cursor: The cursor to store, as JSON.
    """

    run_key: str | None
    reason: str
    cursor: str

    @property
    def requested(self) -> bool:
        """Whether a run is requested."""
        return self.run_key is not None


def active_runs_text(runs: Sequence[str], job: str) -> str:
    """``a <job> run is already queued or running (<ids>)`` for a skip reason."""
    shown = ", ".join(runs[:3]) + (" ..." if len(runs) > 3 else "")
    return f"a {job} run is already queued or running ({shown})"


# --- drift -> retraining --------------------------------------------------------------


@dataclass(frozen=True)
class MonitoringSignal:
    """The figures of one monitoring materialization the drift sensor evaluates.

    Attributes:
        asset: ``drift_report`` or ``model_performance``.
        storage_id: The materialization's event storage id (increasing).
        timestamp: When it was recorded (seconds since the epoch).
        enough_data: Whether the report reached a verdict.
        drift_share: Share of drifted columns (drift reports).
        domain_auc: Domain-classifier ROC AUC (drift reports).
        performance_drop: Test metric minus online metric (performance reports).
        model_version: The model version the report was about.
    """

    asset: str
    storage_id: int
    timestamp: float
    enough_data: bool
    drift_share: float | None = None
    domain_auc: float | None = None
    performance_drop: float | None = None
    model_version: int | None = None

    @classmethod
    def from_metadata(
        cls, asset: str, storage_id: int, timestamp: float, metadata: Mapping[str, Any]
    ) -> MonitoringSignal:
        """Build a signal from a materialization's metadata values (absent figures: None)."""

        def number(key: str) -> float | None:
            value = metadata.get(key)
            return float(value) if isinstance(value, int | float) else None

        version = metadata.get("champion_version")
        return cls(
            asset=asset,
            storage_id=int(storage_id),
            timestamp=float(timestamp),
            enough_data=bool(metadata.get("enough_data", False)),
            drift_share=number("drift_share"),
            domain_auc=number("domain_auc"),
            performance_drop=number("performance_drop"),
            model_version=int(version) if isinstance(version, int | float) else None,
        )


@dataclass(frozen=True)
class RetrainPolicy:
    """When the drift sensor requests retraining.

    Attributes:
        drift_share: Drift share at or above which to retrain.
        domain_auc: Domain-classifier AUC at or above which to retrain.
        performance_drop: Performance drop at or above which to retrain.
        cooldown_s: Seconds after a trigger during which no new trigger is made.
    """

    drift_share: float = 0.5
    domain_auc: float = 0.8
    performance_drop: float = 0.25
    cooldown_s: float = 600.0


@dataclass(frozen=True)
class DriftCursor(JsonCursor):
    """The drift sensor's cursor.

    Attributes:
        last_storage_id: Newest monitoring materialization evaluated.
        last_trigger_at: When the last retraining was requested (seconds since the epoch).
        last_run_key: Run key of that request.
    """

    last_storage_id: int = 0
    last_trigger_at: float | None = None
    last_run_key: str | None = None


def crossings(signal: MonitoringSignal, policy: RetrainPolicy) -> list[str]:
    """The thresholds ``signal`` crosses, described; empty without a verdict."""
    if not signal.enough_data:
        return []
    checks = (
        ("drift share", signal.drift_share, policy.drift_share),
        ("domain classifier AUC", signal.domain_auc, policy.domain_auc),
        ("performance drop", signal.performance_drop, policy.performance_drop),
    )
    return [
        f"{name} {value:.3f} >= {limit:g}"
        for name, value, limit in checks
        if value is not None and value >= limit
    ]


def decide_retraining(
    signals: Sequence[MonitoringSignal],
    cursor: DriftCursor,
    policy: RetrainPolicy,
    now: float,
    active_runs: Sequence[str] = (),
    job: str = "retraining_job",
) -> SensorDecision:
    """Decide whether the new monitoring signals request a retraining run.

    Args:
        signals: Materializations of the monitoring assets (any order; those at or below
            the cursor's storage id are ignored).
        cursor: The stored cursor.
        policy: Thresholds and cooldown.
        now: Current time (seconds since the epoch).
        active_runs: Ids of queued or running retraining runs.
        job: The retraining job's name, for messages.

    Returns:
        A request keyed ``drift-<storage id>`` by the newest crossing signal, or a skip.
    """
    fresh = sorted(
        (signal for signal in signals if signal.storage_id > cursor.last_storage_id),
        key=lambda signal: signal.storage_id,
    )
    if not fresh:
        return SensorDecision(
            None,
            f"no new drift_report or model_performance materialization after storage id "
            f"{cursor.last_storage_id}",
            cursor.to_json(),
        )
    evaluated = DriftCursor(fresh[-1].storage_id, cursor.last_trigger_at, cursor.last_run_key)
    crossing = [(signal, crossings(signal, policy)) for signal in fresh]
    crossing = [(signal, found) for signal, found in crossing if found]
    if not crossing:
        latest = fresh[-1]
        figures = (
            "no verdict (not enough data)"
            if not latest.enough_data
            else ", ".join(
                f"{name} {value:.3f} < {limit:g}"
                for name, value, limit in (
                    ("drift share", latest.drift_share, policy.drift_share),
                    ("domain AUC", latest.domain_auc, policy.domain_auc),
                    ("performance drop", latest.performance_drop, policy.performance_drop),
                )
                if value is not None
            )
        )
        return SensorDecision(
            None,
            f"{len(fresh)} new report(s) below the thresholds; latest {latest.asset} "
            f"(storage id {latest.storage_id}): {figures}",
            evaluated.to_json(),
        )
    signal, found = crossing[-1]
    what = f"{signal.asset} (storage id {signal.storage_id}): {'; '.join(found)}"
    if active_runs:
        return SensorDecision(
            None, f"{what}, but {active_runs_text(active_runs, job)}", evaluated.to_json()
        )
    if cursor.last_trigger_at is not None and now - cursor.last_trigger_at < policy.cooldown_s:
        left = policy.cooldown_s - (now - cursor.last_trigger_at)
        return SensorDecision(
            None,
            f"{what}, but in cooldown: {cursor.last_run_key} was requested "
            f"{now - cursor.last_trigger_at:.0f} s ago ({left:.0f} s of {policy.cooldown_s:g} s "
            "left)",
            evaluated.to_json(),
        )
    run_key = f"drift-{signal.storage_id}"
    triggered = DriftCursor(fresh[-1].storage_id, now, run_key)
    return SensorDecision(run_key, f"retraining requested: {what}", triggered.to_json())
