"""Automation: the monitoring and retraining jobs, and the sensors that close the loop.

* ``inference_log_sensor``: the inference log grew -> ``monitoring_job`` (drift report and
  online performance, with their checks), keyed by the log's Delta version.
* ``drift_sensor``: a monitoring materialization crossed a threshold -> ``retraining_job``
  (``labeled_feedback`` through ``model_deployment``), keyed by that materialization.
* ``source_data_sensor``: the source file changed -> ``main_job`` (full training).

All three start RUNNING (``default_status``) so the loop runs without a click; each can be
stopped and started in the UI, where every tick shows its skip reason or the run it asked
for. Decisions and cursors live in :mod:`mlops_assets.core.sensors` and
:mod:`mlops_assets.core.watchers`; thresholds and run overrides come from the
``automation`` resource (:class:`~mlops_assets.resources.AutomationSettings`).
"""

import time
from typing import Any

import dagster as dg

from mlops_assets.constants import (
    DATA_GROUP,
    DEPLOYMENT_GROUP,
    INFERENCE_LOG_TABLE,
    TRAINING_GROUP,
)
from mlops_assets.core.monitoring import table_rows
from mlops_assets.core.sensors import (
    DriftCursor,
    MonitoringSignal,
    SensorDecision,
    decide_retraining,
)
from mlops_assets.core.watchers import (
    LogCursor,
    SourceCursor,
    decide_monitoring,
    decide_source,
    file_fingerprint,
)
from mlops_assets.defs.jobs import main_job
from mlops_assets.defs.monitoring import drift_report, labeled_feedback, model_performance
from mlops_assets.resources import AutomationSettings, DataSource, Lakehouse

MONITORING_JOB_NAME = "monitoring_job"
RETRAINING_JOB_NAME = "retraining_job"
DEFAULT_SENSOR_INTERVAL_S = 10
IN_PROGRESS = (
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
)
SIGNAL_LIMIT = 100  # materializations read per asset and tick (the rest on the next tick)

monitoring_job = dg.define_asset_job(
    MONITORING_JOB_NAME,
    selection=dg.AssetSelection.assets(drift_report, model_performance),
    description="Drift report and online performance of the champion, with their checks.",
)
# Everything downstream of labeled_feedback in data/training/deployment (not raw ingestion).
RETRAINING_SELECTION = dg.AssetSelection.assets(labeled_feedback) | (
    dg.AssetSelection.assets(labeled_feedback).downstream()
    & dg.AssetSelection.groups(DATA_GROUP, TRAINING_GROUP, DEPLOYMENT_GROUP)
)
retraining_job = dg.define_asset_job(
    RETRAINING_JOB_NAME,
    selection=RETRAINING_SELECTION,
    description="Labeled feedback into transactions, then split, tune, register, promote, deploy.",
)


def retraining_run_config(settings: AutomationSettings) -> dict[str, Any]:
    """Run config of a sensor-launched retraining run (the overrides that are set)."""
    if settings.retrain_max_evals is None:
        return {}
    return {"ops": {"tuned_model": {"config": {"max_evals": settings.retrain_max_evals}}}}


def monitoring_run_config(settings: AutomationSettings) -> dict[str, Any]:
    """Run config of a sensor-launched monitoring run (the overrides that are set)."""
    if settings.monitoring_min_rows is None:
        return {}
    rows = settings.monitoring_min_rows
    return {
        "ops": {
            "drift_report": {"config": {"min_rows": rows}},
            "model_performance": {"config": {"min_labeled_rows": rows}},
        }
    }


def active_runs(instance: dg.DagsterInstance, job_name: str) -> list[str]:
    """Ids of the queued or running runs of ``job_name``."""
    records = instance.get_run_records(
        dg.RunsFilter(job_name=job_name, statuses=list(IN_PROGRESS)), limit=10
    )
    return [record.dagster_run.run_id for record in records]


def monitoring_signals(
    instance: dg.DagsterInstance, after_storage_id: int
) -> list[MonitoringSignal]:
    """Materializations of the monitoring assets after ``after_storage_id``, as signals.

    At most ``SIGNAL_LIMIT`` per asset; when an asset has more, signals beyond its last one
    read are left for the next tick, so the cursor never skips an unread materialization.
    """
    signals, horizon = [], None
    for key in (drift_report.key, model_performance.key):
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, after_storage_id=after_storage_id),
            limit=SIGNAL_LIMIT,
            ascending=True,
        ).records
        if len(records) == SIGNAL_LIMIT:
            last = records[-1].storage_id
            horizon = last if horizon is None else min(horizon, last)
        for record in records:
            event = record.asset_materialization
            metadata = {
                name: value.value for name, value in (event.metadata if event else {}).items()
            }
            signals.append(
                MonitoringSignal.from_metadata(
                    key.to_user_string(), record.storage_id, record.timestamp, metadata
                )
            )
    return [signal for signal in signals if horizon is None or signal.storage_id <= horizon]


def _result(
    decision: SensorDecision,
    run_config: dict[str, Any] | None = None,
    events: list | None = None,
) -> dg.SensorResult:
    if not decision.requested:
        return dg.SensorResult(skip_reason=dg.SkipReason(decision.reason), cursor=decision.cursor)
    request = dg.RunRequest(
        run_key=decision.run_key,
        run_config=run_config or {},
        tags={"mlops/trigger": decision.reason[:200]},
    )
    return dg.SensorResult(run_requests=[request], cursor=decision.cursor, asset_events=events)


def build_sensors(interval_s: int = DEFAULT_SENSOR_INTERVAL_S) -> list[dg.SensorDefinition]:
    """The three sensors, evaluated at most every ``interval_s`` seconds (source: 3x that)."""
    running = dg.DefaultSensorStatus.RUNNING

    @dg.sensor(job=retraining_job, minimum_interval_seconds=interval_s, default_status=running)
    def drift_sensor(context: dg.SensorEvaluationContext, automation: AutomationSettings):
        """Request retraining when drift or a performance drop crosses its threshold."""
        cursor = DriftCursor.from_json(context.cursor)
        decision = decide_retraining(
            monitoring_signals(context.instance, cursor.last_storage_id),
            cursor,
            automation.policy(),
            time.time(),
            active_runs(context.instance, RETRAINING_JOB_NAME),
            RETRAINING_JOB_NAME,
        )
        return _result(decision, retraining_run_config(automation))

    @dg.sensor(job=monitoring_job, minimum_interval_seconds=interval_s, default_status=running)
    def inference_log_sensor(
        context: dg.SensorEvaluationContext, lakehouse: Lakehouse, automation: AutomationSettings
    ):
        """Request the monitoring job when the inference log grew by enough rows."""
        tables = lakehouse.tables()
        cursor = LogCursor.from_json(context.cursor)
        latest = tables.latest_version(INFERENCE_LOG_TABLE)
        grew = latest is not None and latest > cursor.version
        rows = table_rows(tables, INFERENCE_LOG_TABLE, latest) if grew else cursor.rows
        decision = decide_monitoring(
            latest,
            rows,
            cursor,
            automation.min_new_rows,
            automation.max_wait_s,
            time.time(),
            active_runs(context.instance, MONITORING_JOB_NAME),
            MONITORING_JOB_NAME,
        )
        observed = dg.AssetObservation(
            asset_key=INFERENCE_LOG_TABLE,
            metadata={"delta_version": latest if latest is not None else -1, "rows": rows},
        )
        return _result(decision, monitoring_run_config(automation), [observed])

    @dg.sensor(job=main_job, minimum_interval_seconds=3 * interval_s, default_status=running)
    def source_data_sensor(
        context: dg.SensorEvaluationContext, data_source: DataSource, automation: AutomationSettings
    ):
        """Request full training when the source file changes (file sources only)."""
        if data_source.kind != "file" or not data_source.path:
            return dg.SkipReason(f"source kind {data_source.kind!r} has no file to watch")
        fingerprint = file_fingerprint(data_source.path, automation.source_fingerprint)
        cursor = SourceCursor.from_json(context.cursor)
        return _result(decide_source(data_source.path, fingerprint, cursor, main_job.name))

    return [drift_sensor, inference_log_sensor, source_data_sensor]


JOBS = [monitoring_job, retraining_job]
SENSORS = build_sensors()
