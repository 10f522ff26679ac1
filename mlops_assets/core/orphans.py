"""Reap MLflow runs left RUNNING by a training process that died (SIGKILL, OOM, power loss).

A process killed with SIGKILL runs no ``finally`` block, so the parent run of its search (and
a trial child run it was writing) stays RUNNING forever. :func:`owner_tags` are set on every
parent run: the host, the pid and the pid's start time (so a recycled pid is not mistaken for
the owner). :func:`reap_orphans`, called before every search, ends as ``KILLED`` the RUNNING
runs of the experiment whose owner is provably gone:

* the owner ran on this host and its pid no longer exists (or now belongs to another
  process, told apart by its start time);
* or the run's Dagster run is known and finished (``is_run_over``), whatever the host;
* a child run (``mlflow.parentRunId``) is reaped with its parent, or when its parent is no
  longer RUNNING.

Runs of a live owner, runs of another host whose Dagster run is unknown or still going, and
runs without owner tags (not written by this code) are left alone and counted.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlflow.entities import RunStatus
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME

logger = logging.getLogger(__name__)

OWNER_HOST_TAG = "mlops.owner.host"
OWNER_PID_TAG = "mlops.owner.pid"
OWNER_START_TAG = "mlops.owner.pid_start"
DAGSTER_RUN_TAG = "lineage.dagster_run_id"
REAPED_TAG = "mlops.reaped"


def process_start(pid: int) -> str:
    """Start time of ``pid`` in clock ticks since boot (``/proc``); empty when unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    # the command name (field 2) may hold spaces and parentheses: split after its last ')'
    return stat[stat.rindex(")") + 2 :].split()[19]


def owner_tags() -> dict[str, str]:
    """Tags naming this process as the owner of a run: host, pid, pid start time."""
    pid = os.getpid()
    return {
        OWNER_HOST_TAG: socket.gethostname(),
        OWNER_PID_TAG: str(pid),
        OWNER_START_TAG: process_start(pid),
    }


def pid_alive(pid: int, start: str = "") -> bool:
    """Whether process ``pid`` exists and, when ``start`` is known, started at ``start``."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        pass
    if start:
        now = process_start(pid)
        return not now or now == start  # "" (no /proc): cannot tell, assume alive
    return True


@dataclass(frozen=True)
class ReapedRun:
    """A run ended as KILLED by :func:`reap_orphans`.

    Attributes:
        run_id: The MLflow run.
        run_name: Its name (``tuned_model``, ``trial-007``, ...).
        reason: Why its owner is known to be gone.
    """

    run_id: str
    run_name: str
    reason: str


@dataclass(frozen=True)
class ReapReport:
    """What :func:`reap_orphans` found.

    Attributes:
        reaped: Runs ended as KILLED.
        running: RUNNING runs inspected.
        left_running: RUNNING runs left alone, with why (owner alive or unknown).
    """

    reaped: tuple[ReapedRun, ...]
    running: int
    left_running: tuple[str, ...]

    def describe(self) -> str:
        """One line: counts and the reaped runs."""
        names = ", ".join(f"{run.run_name} {run.run_id} ({run.reason})" for run in self.reaped)
        text = f"{len(self.reaped)} of {self.running} RUNNING run(s) reaped as KILLED"
        return f"{text}: {names}" if names else text


def _owner_gone(
    tags: dict[str, str],
    host: str,
    is_alive: Callable[[int, str], bool],
    is_run_over: Callable[[str], bool | None] | None,
) -> str | None:
    """Why the owner of a run with ``tags`` is gone, or None when it may be alive."""
    owner_host, pid = tags.get(OWNER_HOST_TAG), tags.get(OWNER_PID_TAG, "")
    if owner_host == host and pid.isdigit():
        if not is_alive(int(pid), tags.get(OWNER_START_TAG, "")):
            return f"owner pid {pid} on {host} is gone"
        return None  # a live process on this host: never reap
    dagster_run = tags.get(DAGSTER_RUN_TAG, "")
    if is_run_over is not None and dagster_run and dagster_run != "unknown":
        if is_run_over(dagster_run):
            return f"Dagster run {dagster_run} is over"
    return None


def reap_orphans(
    client: Any,
    experiment_id: str,
    is_run_over: Callable[[str], bool | None] | None = None,
    is_alive: Callable[[int, str], bool] = pid_alive,
    host: str | None = None,
) -> ReapReport:
    """End as KILLED the RUNNING runs of ``experiment_id`` whose owner is provably gone.

    Args:
        client: ``MlflowClient`` of the tracking store.
        experiment_id: Experiment to inspect.
        is_run_over: Given a Dagster run id, True when that run is finished (success,
            failure, cancelled), False when it is not, None when unknown.
        is_alive: ``(pid, start) -> bool`` for owners on this host (injectable for tests).
        host: This host's name (default ``socket.gethostname()``).

    Returns:
        The reaped runs and the RUNNING runs left alone.
    """
    host = host or socket.gethostname()
    running = _running_runs(client, experiment_id)
    by_id = {run.info.run_id: run for run in running}
    reaped: dict[str, ReapedRun] = {}
    left: list[str] = []
    parents = [run for run in running if MLFLOW_PARENT_RUN_ID not in run.data.tags]
    children = [run for run in running if MLFLOW_PARENT_RUN_ID in run.data.tags]
    for run in parents + children:
        tags = run.data.tags
        parent_id = tags.get(MLFLOW_PARENT_RUN_ID)
        if parent_id is None:
            reason = _owner_gone(tags, host, is_alive, is_run_over)
        elif parent_id in reaped:
            reason = f"its parent run {parent_id} was reaped"
        elif parent_id not in by_id:
            reason = f"its parent run {parent_id} is not RUNNING"
        else:
            reason = None
        name = tags.get(MLFLOW_RUN_NAME, run.info.run_name or "")
        if reason is None:
            owner = tags.get(OWNER_PID_TAG)
            left.append(f"{name} {run.info.run_id}: " + (f"owner pid {owner}" if owner else "?"))
            continue
        client.set_tag(run.info.run_id, REAPED_TAG, reason)
        client.set_terminated(run.info.run_id, RunStatus.to_string(RunStatus.KILLED))
        run_id = run.info.run_id
        logger.warning("ended orphaned MLflow run %s (%s) as KILLED: %s", run_id, name, reason)
        reaped[run.info.run_id] = ReapedRun(run.info.run_id, name, reason)
    return ReapReport(tuple(reaped.values()), len(running), tuple(left))


def _running_runs(client: Any, experiment_id: str) -> list[Any]:
    """Every RUNNING run of the experiment (all pages)."""
    found, token = [], None
    while True:
        page = client.search_runs(
            [experiment_id],
            filter_string="attributes.status = 'RUNNING'",
            max_results=1000,
            page_token=token,
        )
        found.extend(page)
        token = page.token
        if not token:
            return found
