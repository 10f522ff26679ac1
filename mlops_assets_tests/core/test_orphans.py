"""Orphan reaping against a real MLflow store: which RUNNING runs end as KILLED, and which not."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
from mlflow import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME

from mlops_assets.core.orphans import (
    OWNER_HOST_TAG,
    OWNER_PID_TAG,
    OWNER_START_TAG,
    REAPED_TAG,
    owner_tags,
    pid_alive,
    process_start,
    reap_orphans,
)
from mlops_assets.core.tracking import TrackingTarget
from mlops_assets.core.training import SearchSettings, train_and_log
from mlops_assets_tests.core.training_fixtures import TINY_SPACE, bank_splits, lineage
from mlops_assets_tests.serving.registry import fast_model_logging

HOST = socket.gethostname()


@pytest.fixture(scope="module")
def store_uri(tmp_path_factory) -> str:
    """One SQLite store per module (creating one costs seconds); one experiment per test."""
    return f"sqlite:///{tmp_path_factory.mktemp('orphans') / 'mlflow.db'}"


@pytest.fixture()
def store(store_uri, tmp_path, request) -> tuple[MlflowClient, str]:
    client = MlflowClient(tracking_uri=store_uri, registry_uri=store_uri)
    experiment = client.create_experiment(request.node.name, (tmp_path / "artifacts").as_uri())
    return client, experiment


@pytest.fixture(scope="module")
def dead_pid() -> int:
    """The pid of a process that has exited (and been waited for)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait(30)
    assert not pid_alive(child.pid)
    return child.pid


def parent_run(client, experiment, name="tuned_model", **tags) -> str:
    run = client.create_run(experiment, tags={MLFLOW_RUN_NAME: name, **tags})
    return run.info.run_id


def child_run(client, experiment, parent: str, name: str = "trial-001") -> str:
    tags = {MLFLOW_RUN_NAME: name, MLFLOW_PARENT_RUN_ID: parent}
    return client.create_run(experiment, tags=tags).info.run_id


def status(client, run_id: str) -> str:
    return client.get_run(run_id).info.status


def owner(pid: int, host: str = HOST, start: str = "", dagster_run: str = "") -> dict:
    tags = {OWNER_HOST_TAG: host, OWNER_PID_TAG: str(pid), OWNER_START_TAG: start}
    if dagster_run:
        tags["lineage.dagster_run_id"] = dagster_run
    return tags


def test_owner_tags_name_this_process() -> None:
    tags = owner_tags()
    assert tags[OWNER_HOST_TAG] == HOST and tags[OWNER_PID_TAG] == str(os.getpid())
    assert tags[OWNER_START_TAG] == process_start(os.getpid()) != ""
    assert pid_alive(os.getpid(), tags[OWNER_START_TAG])
    assert not pid_alive(os.getpid(), "1")  # same pid, other start time: a recycled pid


def test_runs_of_a_dead_owner_end_killed_with_their_running_children(store, dead_pid) -> None:
    client, experiment = store
    orphan = parent_run(client, experiment, **owner(dead_pid))
    stuck_child = child_run(client, experiment, orphan, "trial-002")
    done_child = child_run(client, experiment, orphan, "trial-001")
    client.set_terminated(done_child, "FINISHED")

    report = reap_orphans(client, experiment)

    print(f"injected: parent owned by dead pid {dead_pid}; checked: {report.describe()}")
    assert {run.run_id for run in report.reaped} == {orphan, stuck_child}
    assert (report.running, report.left_running) == (2, ())
    assert status(client, orphan) == status(client, stuck_child) == "KILLED"
    assert status(client, done_child) == "FINISHED"
    assert client.get_run(orphan).data.tags[REAPED_TAG] == f"owner pid {dead_pid} on {HOST} is gone"
    assert "was reaped" in client.get_run(stuck_child).data.tags[REAPED_TAG]
    assert reap_orphans(client, experiment).running == 0  # nothing left to reap


def test_live_unknown_and_foreign_runs_are_left_alone(store) -> None:
    client, experiment = store
    mine = parent_run(client, experiment, **owner_tags())
    my_trial = child_run(client, experiment, mine)
    remote = parent_run(client, experiment, **owner(1, host="other-host", dagster_run="r-live"))
    untagged = parent_run(client, experiment, name="someone_elses_run")

    report = reap_orphans(client, experiment, is_run_over=lambda run_id: False)

    assert report.reaped == () and report.running == 4 and len(report.left_running) == 4
    for run_id in (mine, my_trial, remote, untagged):
        assert status(client, run_id) == "RUNNING"


def test_recycled_pid_and_finished_dagster_run_mean_dead(store) -> None:
    client, experiment = store
    recycled = parent_run(client, experiment, **owner(os.getpid(), start="1"))
    remote_over = parent_run(client, experiment, **owner(7, host="other", dagster_run="r-over"))
    remote_unknown = parent_run(client, experiment, **owner(8, host="other", dagster_run="r-gone"))
    over = {"r-over": True, "r-gone": None}

    report = reap_orphans(client, experiment, is_run_over=over.get)

    reasons = {run.run_id: run.reason for run in report.reaped}
    assert set(reasons) == {recycled, remote_over}
    assert reasons[remote_over] == "Dagster run r-over is over"
    assert status(client, remote_unknown) == "RUNNING"


def test_running_child_of_a_finished_parent_is_reaped(store) -> None:
    client, experiment = store
    parent = parent_run(client, experiment, **owner_tags())
    child = child_run(client, experiment, parent)
    client.set_terminated(parent, "FINISHED")

    report = reap_orphans(client, experiment, is_alive=lambda pid, start: True)

    assert [run.run_id for run in report.reaped] == [child]
    assert status(client, child) == "KILLED"


def test_train_and_log_reaps_before_its_search_and_tags_its_owner(
    shared_data, store, dead_pid
) -> None:
    client, experiment = store
    name = client.get_experiment(experiment).name
    target = TrackingTarget(client.tracking_uri, name)
    orphan = parent_run(client, experiment, **owner(dead_pid))
    with fast_model_logging():
        report = train_and_log(
            target, bank_splits(shared_data, 600), lineage(), SearchSettings(1), space=TINY_SPACE
        )
    assert [run.run_id for run in report.reaped.reaped] == [orphan]
    assert status(client, orphan) == "KILLED"
    parent = client.get_run(report.model.run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags[OWNER_PID_TAG] == str(os.getpid())
    assert parent.data.tags[OWNER_HOST_TAG] == HOST
