"""The automation sensors through ``build_sensor_context``: run requests, run keys, cursors."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from mlops_assets.constants import INFERENCE_LOG_TABLE
from mlops_assets.core.tables import DeltaRsEngine
from mlops_assets.definitions import AUTOMATION_ENV, automation_settings
from mlops_assets.defs import automation
from mlops_assets.defs.automation import SENSORS, build_sensors
from mlops_assets.resources import AutomationSettings, DataSource, Lakehouse
from mlops_assets_tests.core.monitoring_fixtures import served_rows
from mlops_assets_tests.serving.registry import feature_frame

SENSOR = {sensor.name: sensor for sensor in SENSORS}
SETTINGS = AutomationSettings(
    drift_share_threshold=0.5,
    domain_auc_threshold=0.8,
    performance_drop_threshold=0.2,
    cooldown_s=3600,
    min_new_rows=100,
    max_wait_s=3600,
    retrain_max_evals=3,
    monitoring_min_rows=50,
)


def tick(name: str, instance: dg.DagsterInstance, cursor: str | None, **resources):
    """Evaluate one tick of sensor ``name``; return (run requests, skip reason, new cursor)."""
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"automation": SETTINGS, **resources}
    )
    data = SENSOR[name].evaluate_tick(context)
    return data.run_requests, data.skip_message, data.cursor


def report(instance: dg.DagsterInstance, asset: str, **metadata) -> int:
    """Record a monitoring materialization (as a monitoring run would) and return its storage id."""
    instance.report_runless_asset_event(dg.AssetMaterialization(asset, metadata=metadata))
    record = instance.fetch_materializations(dg.AssetKey(asset), limit=1).records[0]
    return record.storage_id


def test_sensors_are_running_by_default_and_target_their_jobs() -> None:
    assert {name: s.default_status for name, s in SENSOR.items()} == {
        "drift_sensor": dg.DefaultSensorStatus.RUNNING,
        "inference_log_sensor": dg.DefaultSensorStatus.RUNNING,
        "source_data_sensor": dg.DefaultSensorStatus.RUNNING,
    }
    assert SENSOR["drift_sensor"].job_name == "retraining_job"
    assert SENSOR["inference_log_sensor"].job_name == "monitoring_job"
    assert SENSOR["source_data_sensor"].job_name == "main_job"
    assert [s.minimum_interval_seconds for s in build_sensors(5)] == [5, 5, 15]
    assert {job.name for job in automation.JOBS} == {"monitoring_job", "retraining_job"}


def test_drift_sensor_requests_dedups_cools_down_and_survives_restart() -> None:
    instance = dg.DagsterInstance.ephemeral()
    requests, skip, cursor = tick("drift_sensor", instance, None)
    assert not requests and "no new drift_report or model_performance" in skip

    calm = report(instance, "drift_report", enough_data=True, drift_share=0.2, domain_auc=0.55)
    requests, skip, cursor = tick("drift_sensor", instance, cursor)
    assert not requests and "below the thresholds" in skip and "drift share 0.200 < 0.5" in skip
    assert json.loads(cursor)["last_storage_id"] == calm

    drifted = report(instance, "drift_report", enough_data=True, drift_share=0.6, domain_auc=0.9)
    requests, skip, cursor = tick("drift_sensor", instance, cursor)
    assert [r.run_key for r in requests] == [f"drift-{drifted}"] and skip is None
    assert requests[0].run_config == {"ops": {"tuned_model": {"config": {"max_evals": 3}}}}
    assert "drift share 0.600 >= 0.5" in requests[0].tags["mlops/trigger"]
    stored = json.loads(cursor)
    assert stored["last_storage_id"] == drifted and stored["last_run_key"] == f"drift-{drifted}"

    # Restart: a fresh context with the stored cursor does not repeat the trigger ...
    requests, skip, same = tick("drift_sensor", instance, cursor)
    assert not requests and f"after storage id {drifted}" in skip and same == cursor
    # ... and a new crossing within the cooldown is suppressed and consumed, with the reason.
    dropped = report(instance, "model_performance", enough_data=True, performance_drop=0.4)
    requests, skip, cursor = tick("drift_sensor", instance, cursor)
    assert not requests and "performance drop 0.400 >= 0.2" in skip and "in cooldown" in skip
    assert json.loads(cursor)["last_storage_id"] == dropped


def test_drift_sensor_holds_off_while_a_retraining_run_is_in_progress() -> None:
    instance = dg.DagsterInstance.ephemeral()
    run = dg.DagsterRun(job_name="retraining_job", status=dg.DagsterRunStatus.STARTED)
    instance.add_run(run)
    signal = report(instance, "drift_report", enough_data=True, drift_share=0.9, domain_auc=0.6)
    requests, skip, cursor = tick("drift_sensor", instance, None)
    assert (
        not requests and f"a retraining_job run is already queued or running ({run.run_id})" in skip
    )
    assert json.loads(cursor)["last_storage_id"] == signal
    instance.report_run_failed(run)  # the run ended: the next crossing signal requests again
    again = report(instance, "drift_report", enough_data=True, drift_share=0.7, domain_auc=0.6)
    requests, _, cursor = tick("drift_sensor", instance, cursor)
    assert [r.run_key for r in requests] == [f"drift-{again}"]


def test_drift_sensor_ignores_reports_without_a_verdict() -> None:
    instance = dg.DagsterInstance.ephemeral()
    report(instance, "drift_report", enough_data=False, drift_share=0.0, reason="not enough data")
    requests, skip, _ = tick("drift_sensor", instance, None)
    assert not requests and "no verdict (not enough data)" in skip


def test_inference_log_sensor_batches_rows_and_keys_runs_by_version(tmp_path: Path) -> None:
    instance = dg.DagsterInstance.ephemeral()
    lakehouse = Lakehouse(root=str(tmp_path))
    engine = DeltaRsEngine(str(tmp_path))
    requests, skip, cursor = tick("inference_log_sensor", instance, None, lakehouse=lakehouse)
    assert not requests and skip == "inference_log does not exist yet"

    engine.write(INFERENCE_LOG_TABLE, served_rows(feature_frame(60, 0)[0], "a"))
    requests, skip, cursor = tick("inference_log_sensor", instance, cursor, lakehouse=lakehouse)
    assert not requests and "60 new row(s) since version -1 (now v0): waiting for 100" in skip
    assert json.loads(cursor)["pending_since"] is not None

    v1 = engine.write(INFERENCE_LOG_TABLE, served_rows(feature_frame(50, 1)[0], "b")).version
    requests, skip, cursor = tick("inference_log_sensor", instance, cursor, lakehouse=lakehouse)
    assert [r.run_key for r in requests] == [f"inference_log-v{v1}"]
    assert requests[0].run_config["ops"]["drift_report"] == {"config": {"min_rows": 50}}
    assert (json.loads(cursor)["version"], json.loads(cursor)["rows"]) == (v1, 110)
    context = dg.build_sensor_context(
        instance=instance, cursor=None, resources={"automation": SETTINGS, "lakehouse": lakehouse}
    )
    (observed,) = SENSOR["inference_log_sensor"].evaluate_tick(context).asset_events
    assert observed.asset_key == dg.AssetKey(INFERENCE_LOG_TABLE)
    assert observed.metadata["rows"].value == 110 and observed.metadata["delta_version"].value == v1

    requests, skip, after = tick("inference_log_sensor", instance, cursor, lakehouse=lakehouse)
    assert not requests and skip == f"inference_log still at version {v1}" and after == cursor


def test_source_data_sensor_watches_file_sources_only(tmp_path: Path) -> None:
    instance = dg.DagsterInstance.ephemeral()
    synthetic = DataSource(kind="synthetic")
    requests, skip, _ = tick("source_data_sensor", instance, None, data_source=synthetic)
    assert not requests and skip == "source kind 'synthetic' has no file to watch"

    path = tmp_path / "transactions.csv"
    pd.DataFrame({"V1": [0.1], "Class": [0]}).to_csv(path, index=False)
    source = DataSource(kind="file", path=str(path))
    requests, skip, cursor = tick("source_data_sensor", instance, None, data_source=source)
    assert not requests and "first look" in skip
    requests, skip, cursor = tick("source_data_sensor", instance, cursor, data_source=source)
    assert not requests and "unchanged" in skip
    pd.DataFrame({"V1": [0.1, 0.2], "Class": [0, 1]}).to_csv(path, index=False)
    os.utime(path, (time.time() + 5, time.time() + 5))
    requests, skip, cursor = tick("source_data_sensor", instance, cursor, data_source=source)
    assert len(requests) == 1 and requests[0].run_key.startswith("source-")
    assert json.loads(cursor)["fingerprint"] == requests[0].run_key.removeprefix("source-")


def test_automation_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(AUTOMATION_ENV["retrain_max_evals"], "2")
    monkeypatch.setenv(AUTOMATION_ENV["cooldown_s"], "30")
    settings = automation_settings()
    assert settings.retrain_max_evals == 2 and settings.cooldown_s == 30.0
    assert automation.retraining_run_config(settings) == {
        "ops": {"tuned_model": {"config": {"max_evals": 2}}}
    }
    monkeypatch.setenv(AUTOMATION_ENV["min_new_rows"], "many")
    with pytest.raises(ValueError, match="MLOPS_MONITOR_MIN_NEW_ROWS"):
        automation_settings()


def test_drift_sensor_reads_a_backlog_in_order_without_skipping(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(automation, "SIGNAL_LIMIT", 2)
    instance = dg.DagsterInstance.ephemeral()
    calm = [report(instance, "drift_report", enough_data=True, drift_share=0.1) for _ in range(3)]
    dropped = report(instance, "model_performance", enough_data=True, performance_drop=0.5)
    requests, skip, cursor = tick("drift_sensor", instance, None)
    assert not requests and json.loads(cursor)["last_storage_id"] == calm[1]  # backlog first
    requests, skip, cursor = tick("drift_sensor", instance, cursor)
    assert [r.run_key for r in requests] == [f"drift-{dropped}"]
