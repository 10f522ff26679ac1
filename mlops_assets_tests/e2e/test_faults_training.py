"""Fault: a training run killed with SIGKILL mid-search, then re-run.

The killed process cannot end its MLflow runs (SIGKILL runs no handler), so its parent run is
left RUNNING and its Dagster run STARTED. The re-run must complete and leave no run RUNNING:
it reaps the orphan (its owner pid is gone) before its own search.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import dagster as dg
import pytest
from mlflow import MlflowClient

from mlops_assets.core.orphans import REAPED_TAG
from mlops_assets_tests.e2e.training_run import EXPERIMENT, materialize_training, tracking_uri
from mlops_assets_tests.serving.registry import fast_model_logging

pytestmark = pytest.mark.e2e


def runs(client: MlflowClient) -> list:
    experiment = client.get_experiment_by_name(EXPERIMENT)
    return [] if experiment is None else client.search_runs([experiment.experiment_id])


def wait_for_trials(client: MlflowClient, child: subprocess.Popen, log, timeout_s=120.0) -> list:
    """Wait until the child has written at least one finished trial run; return all runs."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert child.poll() is None, f"training exited early:\n{log.read_text()[-3000:]}"
        try:
            found = runs(client)
        except Exception:  # noqa: BLE001 - the store is being created by the child
            found = []
        if any("mlflow.parentRunId" in run.data.tags for run in found):
            return found
        time.sleep(0.2)
    raise TimeoutError(f"no trial run after {timeout_s} s:\n{log.read_text()[-3000:]}")


def test_sigkill_mid_search_then_rerun_leaves_no_run_running(tmp_path) -> None:
    client = MlflowClient(tracking_uri=tracking_uri(tmp_path))
    log = tmp_path / "killed-run.log"
    module = "mlops_assets_tests.e2e.training_run"
    with open(log, "wb") as sink:  # a budget of 300 trials: minutes, killed after the first
        child = subprocess.Popen(
            [sys.executable, "-m", module, str(tmp_path), "300"],
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        before_kill = wait_for_trials(client, child, log)
    finally:
        if child.poll() is None:
            os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
    after_kill = runs(client)
    stuck = [run for run in after_kill if run.info.status == "RUNNING"]
    trials = [run for run in after_kill if "mlflow.parentRunId" in run.data.tags]
    print(
        f"injected: SIGKILL to training pid {child.pid} after {len(before_kill) - 1} trial run(s); "
        f"left RUNNING: {[run.data.tags.get('mlflow.runName') for run in stuck]}"
    )
    [orphan] = [run for run in stuck if "mlflow.parentRunId" not in run.data.tags]
    assert orphan.data.tags["mlops.owner.pid"] == str(child.pid)
    instance = dg.DagsterInstance.local_temp(tempdir=str(tmp_path / "dagster"))
    killed_run = instance.get_run_by_id(orphan.data.tags["lineage.dagster_run_id"])
    assert killed_run.status == dg.DagsterRunStatus.STARTED  # Dagster never learnt of the kill

    with fast_model_logging():  # skip pip-requirements inference (seconds, not the point)
        rerun = materialize_training(tmp_path, max_evals=2)

    assert rerun.success
    metadata = rerun.asset_materializations_for_node("tuned_model")[0].metadata
    assert metadata["orphans_reaped"].value == len(stuck)
    final = runs(client)
    still_running = [run.info.run_id for run in final if run.info.status == "RUNNING"]
    killed = client.get_run(orphan.info.run_id)
    print(
        f"checked: re-run {rerun.run_id} succeeded, reaped {metadata['orphans_reaped'].value}; "
        f"{len(final)} MLflow runs ({len(trials)} trials of the killed run), "
        f"RUNNING now: {len(still_running)}; orphan status {killed.info.status}"
    )
    assert still_running == []
    assert killed.info.status == "KILLED"
    assert killed.data.tags[REAPED_TAG].startswith(f"owner pid {child.pid} on ")
    new_parent = client.get_run(rerun.output_for_node("tuned_model").run_id)
    assert new_parent.info.status == "FINISHED"
    assert new_parent.data.tags["mlops.owner.pid"] == str(os.getpid())
