"""Pieces of the closed loop that need no daemon: process control, settings, the summary."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from mlops_assets.core.traffic_report import TrafficTally
from mlops_assets.loop import LoopSettings
from mlops_assets.loop_report import LoopSummary, Step, facts_of
from mlops_assets.processes import (
    LoopInterrupted,
    ProcessError,
    scoped_environment,
    sigterm_as_interrupt,
    start,
    wait_http,
)

# Ignores SIGTERM, starts a grandchild that also ignores it, prints both PIDs, then sleeps.
STUBBORN = """
import os, signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen([sys.executable, "-c",
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(120)"])
print(os.getpid(), child.pid, flush=True)
time.sleep(120)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_stop_kills_a_child_that_ignores_sigterm_and_its_group(tmp_path: Path) -> None:
    log = tmp_path / "stubborn.log"
    child = start("stubborn", [sys.executable, "-c", STUBBORN], log, {})
    deadline = time.monotonic() + 30
    while not log.read_text().strip() and time.monotonic() < deadline:
        time.sleep(0.05)
    parent, grandchild = map(int, log.read_text().split())
    assert parent == child.pid and _alive(grandchild)
    began = time.monotonic()
    assert child.stop(timeout_s=1.0) == -signal.SIGKILL
    assert time.monotonic() - began < 15
    deadline = time.monotonic() + 10
    while _alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)  # killed, then reaped by init
    assert not child.running() and not _alive(grandchild)


def test_a_child_that_exits_is_reported_with_its_output(tmp_path: Path) -> None:
    code = "import sys; print('port already in use'); sys.exit(3)"
    child = start("server", [sys.executable, "-c", code], tmp_path / "server.log", {})
    with pytest.raises(ProcessError, match=r"server \(pid \d+\) exited with 3(.|\n)*port already"):
        wait_http("http://127.0.0.1:9/health", child, timeout_s=30)
    assert child.stop() == 3


def test_scoped_environment_restores_what_was_there(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOOP_TEST_KEPT", "before")
    monkeypatch.setenv("LOOP_TEST_GONE", "before")
    monkeypatch.delenv("LOOP_TEST_NEW", raising=False)
    monkeypatch.delenv("LOOP_TEST_EXPORTED", raising=False)
    values = {"LOOP_TEST_KEPT": "during", "LOOP_TEST_NEW": "x"}
    with scoped_environment(values, unset=("LOOP_TEST_GONE", "LOOP_TEST_EXPORTED")):
        assert os.environ["LOOP_TEST_KEPT"] == "during" and os.environ["LOOP_TEST_NEW"] == "x"
        assert "LOOP_TEST_GONE" not in os.environ
        os.environ["LOOP_TEST_EXPORTED"] = "set by a library inside the block"
    assert os.environ["LOOP_TEST_KEPT"] == "before" and "LOOP_TEST_NEW" not in os.environ
    assert os.environ["LOOP_TEST_GONE"] == "before" and "LOOP_TEST_EXPORTED" not in os.environ


def test_sigterm_becomes_an_interrupt_and_the_handler_comes_back() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(LoopInterrupted), sigterm_as_interrupt():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises before this ends
    assert signal.getsignal(signal.SIGTERM) is before


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"rows": 0}, "rows must be >= 1"),
        ({"positive_rate": 1.5}, "positive_rate must be in (0, 1)"),
        ({"rate": 0}, "rate must be > 0"),
        ({"drift_shift": {"Nope": 1.0}}, "unknown column(s) ['Nope']"),
        ({"fraud_pattern_change": 2.0}, "fraud_pattern_change=2.0 must be in [0, 1]"),
        ({"feedback_share": -0.1}, "feedback_share must be in [0, 1]"),
    ],
)
def test_loop_settings_name_the_bad_knob(changes: dict, message: str) -> None:
    with pytest.raises(ValueError) as error:
        LoopSettings(**changes)
    assert message in str(error.value)


def test_loop_environment_points_everything_at_the_state(state) -> None:
    settings = LoopSettings(retrain_max_evals=2, cooldown_s=30)
    env = settings.environment(state, "http://127.0.0.1:1234", "t" * 32)
    assert env["MLOPS_STATE_DIR"] == str(state.root)
    assert env["DAGSTER_HOME"] == str(state.dagster_home)
    assert env["MLFLOW_TRACKING_URI"] == env["MLFLOW_REGISTRY_URI"] == state.mlflow_tracking_uri
    assert (env["MLOPS_RETRAIN_MAX_EVALS"], env["MLOPS_RETRAIN_COOLDOWN_S"]) == ("2", "30")
    source = LoopSettings(source="synthetic", rows=500).data_source(state)
    assert (source.kind, source.synthetic_rows) == ("synthetic", 500)


def test_summary_lines_and_json() -> None:
    tally = TrafficTally(rows_planned=2, target_rate=10.0)
    tally.sent(0, np.array([True, True]))
    tally.answered(0, 1, np.array([0, 1]), [0, 0], np.array([True, True]))
    summary = LoopSummary(
        completed=True,
        reason="drift detected, retrained, promoted and now serving",
        steps=(Step("main_job", 12.34, "version 1"),),
        drifted_traffic=tally.summary(unsent=0),
        drift_report={"drift_share": 0.31, "domain_top_features": {"V3": 0.33, "V14": 0.11}},
        decision={"decision": "promote", "challenger_version": 2},
        serving_version=2,
        timings={"new version answering": 63.6},
        processes={"server": "pid 1, log /x"},
    )
    text = "\n".join(summary.lines())
    assert text.startswith("closed loop completed: drift detected")
    assert "main_job" in text and "12.3 s" in text
    assert "drift_share=0.31, domain_top_features={V3: 0.33, V14: 0.11}" in text
    assert "version answering now: 2" in text and "new version answering" in text
    payload = json.loads(summary.to_json())
    assert payload["drifted_traffic"]["rows_answered"] == 2 and payload["serving_version"] == 2


def test_facts_keep_scalars_and_flat_collections() -> None:
    entries = {
        "drift_share": 0.3,
        "drifted_columns": ["V3"],
        "domain_top_features": {"V3": 0.3},
        "table": {"nested": {"no": 1}},
    }
    materialization = SimpleNamespace(
        asset_key=SimpleNamespace(to_user_string=lambda: "drift_report"),
        metadata={key: SimpleNamespace(value=value) for key, value in entries.items()},
    )
    record = SimpleNamespace(
        asset_materialization=materialization, run_id="r1", timestamp=5.0, storage_id=7
    )
    facts = facts_of(record)
    assert facts.asset == "drift_report" and facts.storage_id == 7
    assert set(facts.metadata) == {"drift_share", "drifted_columns", "domain_top_features"}
    assert facts.get("missing", "drift_share") == 0.3


def test_only_a_fresh_heartbeat_counts() -> None:
    from mlops_assets.loop_report import InstanceReader

    beats = {"SENSOR": SimpleNamespace(timestamp=100.0)}
    reader = InstanceReader(SimpleNamespace(get_daemon_heartbeats=lambda: beats))
    assert reader.daemon_alive(since=99.0)
    assert not reader.daemon_alive(since=101.0)  # an earlier daemon's heartbeat
    assert not reader.daemon_alive(since=0.0, daemon_type="QUEUED_RUN_COORDINATOR")


def test_a_second_interrupt_while_stopping_still_stops_every_child(
    state, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlops_assets.loop import ClosedLoop

    loop = ClosedLoop(state, LoopSettings(), lambda line: None)
    sleeper = [sys.executable, "-c", "import time; time.sleep(120)"]
    first = start("server", sleeper, tmp_path / "server.log", {})
    second = start("dagster-daemon", sleeper, tmp_path / "daemon.log", {})
    loop.children += [first, second]

    def interrupted(timeout_s: float = 30.0) -> int:
        raise KeyboardInterrupt  # Ctrl-C again while the daemon is being stopped

    monkeypatch.setattr(second, "stop", interrupted)
    with pytest.raises(KeyboardInterrupt):
        loop.stop_children()
    assert second.process.returncode == -signal.SIGKILL and not first.running()
    assert loop.children == []
