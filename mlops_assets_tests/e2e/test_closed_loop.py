"""The closed loop on real processes: a sensor-launched retraining deploys a new version.

``run_loop`` starts the real ``mlops serve`` process and the real ``dagster-daemon``, trains
the first model in-process, replays normal then drifted traffic through the simulator
(HTTP, with late feedback labels) and waits for the drift sensor's ``retraining_job``. The
drift is strong and real: the fraud signature moves to other columns (and frauds become
more frequent, with two features shifted), so a model retrained on the labeled feedback
legitimately beats the champion on test rows that include drifted rows; the promotion
policy is the default one. Everything is then checked from what the system recorded: the
run and its sensor tag, the decision, the registry alias, the deployments table, and the
version the server answered with.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from mlops_assets.cli import prepare_dagster_home
from mlops_assets.core.paths import StatePaths
from mlops_assets.loop import LoopSettings, run_loop

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(420)]

TINY = LoopSettings(
    source="synthetic",
    rows=4000,
    positive_rate=0.03,
    max_evals=1,
    retrain_max_evals=1,
    normal_rows=1000,
    drifted_rows=2500,
    rate=2000.0,
    drift_positive_rate=0.08,
    feedback_delay_s=0.5,
    report_timeout_s=180.0,
    retrain_timeout_s=240.0,
    cooldown_s=60.0,
    monitor_max_wait_s=5.0,
)


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_drift_triggers_a_retraining_that_deploys_a_new_version(state: StatePaths) -> None:
    import dagster as dg
    from deltalake import DeltaTable
    from mlflow import MlflowClient

    prepare_dagster_home(state)
    handler_before = signal.getsignal(signal.SIGTERM)
    lines: list[str] = []
    summary = run_loop(state, TINY, lines.append)
    log = "\n".join(lines + summary.lines())
    print(log)  # shown when an assertion fails

    # the loop went round, and stopped its processes by PID on the way out
    assert summary.completed, log
    assert signal.getsignal(signal.SIGTERM) is handler_before
    pids = [int(facts.split(",")[0].removeprefix("pid ")) for facts in summary.processes.values()]
    assert sorted(summary.processes) == ["dagster-daemon", "server"] and all(map(_gone, pids))
    assert "MLOPS_ADMIN_TOKEN" not in os.environ  # the loop's environment was restored

    # traffic: normal rows answered by v1 without drift, then drifted rows, all labelled
    assert summary.initial["version"] == 1 and summary.initial["deployment"] == "deployed"
    assert summary.normal_traffic.rows_answered == 1000 and not summary.normal_traffic.errors
    assert summary.clean_report["enough_data"] and summary.clean_report["drift_share"] < 0.5
    drifted = summary.drifted_traffic
    assert drifted.rows_answered == 2500 and drifted.versions == {1: 2500}
    assert drifted.feedback_sent == 2500 and drifted.drift_onset_at is not None

    # the last drift report with a verdict names the shifted columns; the sensor's trigger is
    # either that report or the performance drop of the same traffic (whichever it saw first)
    assert {"V3", "V14"} <= set(summary.drift_report["drifted_columns"]), log
    assert summary.trigger.startswith("retraining requested"), log
    assert "drift_report" in summary.trigger or "performance drop" in summary.trigger, log
    assert summary.performance["enough_data"], log

    # the sensor launched the retraining run, which learned from the labeled feedback
    with dg.DagsterInstance.get() as instance:
        record = instance.get_run_record_by_id(summary.retraining_run_id)
        run = record.dagster_run
        assert run.job_name == "retraining_job" and run.status == dg.DagsterRunStatus.SUCCESS
        assert run.tags["dagster/sensor_name"] == "drift_sensor"
        events = [event.asset_materialization for event in instance.all_logs(run.run_id)]
        materialized = {
            event.asset_key.to_user_string(): event.metadata for event in events if event
        }
    assert materialized["labeled_feedback"]["appended_rows"].value >= 3000
    assert materialized["transactions"]["feedback_rows"].value >= 3000

    # it promoted version 2 on the default policy and deployed it; v2 answers requests
    assert summary.decision["decision"] == "promote", log
    assert summary.decision["champion_version"] == 2
    # the row-stable split kept v1's training rows out of the test rows both were scored on
    assert summary.decision["champion_training_rows"].startswith("0 of "), summary.decision
    assert summary.deployment["status"] == "deployed" and summary.deployment["version"] == 2
    assert summary.serving_version == 2
    client = MlflowClient(tracking_uri=state.mlflow_tracking_uri)
    assert int(client.get_model_version_by_alias("fraud_detector", "champion").version) == 2
    assert (
        int(client.get_model_version_by_alias("fraud_detector", "previous_champion").version) == 1
    )
    deployments = DeltaTable(str(Path(state.lakehouse) / "deployments")).to_pandas()
    row = deployments[deployments["dagster_run_id"] == run.run_id].iloc[-1]
    assert (row["version"], row["status"]) == (2, "deployed")

    # and the timings from the drift onset are in order
    timings = summary.timings
    assert 0 < timings["monitoring report after drift"] <= timings["retraining run created"]
    assert timings["retraining run created"] < timings["new version answering"]
