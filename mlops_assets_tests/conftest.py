"""Shared fixtures: every test gets its own state folder (Delta, MLflow, DAGSTER_HOME)."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlops_assets.core.paths import PROJECT_ROOT, StatePaths, state_paths

SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"
# session fixtures `postgres` (throwaway cluster) and `mlflow_server` (PostgreSQL-backed)
pytest_plugins = ["mlops_assets_tests.postgres_fixtures"]


@pytest.fixture()
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> StatePaths:
    """A fresh project-local state folder under ``tmp_path``, exported to the environment."""
    paths = state_paths(tmp_path / "state").ensure()
    monkeypatch.setenv("MLOPS_STATE_DIR", str(paths.root))
    monkeypatch.setenv("DAGSTER_HOME", str(paths.dagster_home))
    return paths


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The read-only public datasets beside the project (``../shared/data``)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared datasets not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """One Delta-enabled local Spark session for the whole run (Delta jars in the state cache)."""
    if shutil.which("java") is None:
        pytest.skip("Spark tests need Java 17+ on PATH: no `java` found")
    from mlops_assets.core.spark import spark_session

    session = spark_session(
        master="local[2]",
        app_name="mlops_assets_tests",
        driver_memory="1g",
        # C1-only JIT and a serial GC halve the warm-up of a short JVM on a small machine.
        extra_conf={"spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"},
    )
    yield session
    session.stop()


def _forget_mlflow_globals() -> None:
    """Drop the tracking/registry URIs and experiment MLflow keeps process-wide.

    ``TrackingTarget.activate`` sets them (and exports them to the environment); left over,
    they send a later test's registrations to an earlier test's store.
    """
    mlflow = sys.modules.get("mlflow")
    if mlflow is not None:
        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)
        mlflow.tracking.fluent._active_experiment_id = None
    for name in ("MLFLOW_REGISTRY_URI", "MLFLOW_EXPERIMENT_ID"):
        os.environ.pop(name, None)


@pytest.fixture(autouse=True)
def _no_home_writes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Keep libraries that default to $HOME (MLflow, Ivy, sklearn) out of the real home."""
    _forget_mlflow_globals()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'default-mlflow.db'}")
    os.environ.setdefault("PYTHONHASHSEED", "0")
    yield
    _forget_mlflow_globals()  # before module/session fixtures of the next test register


# What the e2e tests print (faults injected, requests fuzzed, rows checked) is evidence a
# reviewer wants in the CI log, but pytest hides the output of passing tests: collect it and
# print it once, at the end of the run.
_EVIDENCE: list[tuple[str, list[str]]] = []
_EVIDENCE_LINES, _EVIDENCE_WIDTH = 12, 400
_MLFLOW_RUN_LINKS = ("\N{RUNNER}", "\N{TEST TUBE}")  # MLflow's "View run/experiment at" lines


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Keep the printed lines of each passing end-to-end test."""
    if report.when == "call" and report.passed and "/e2e/" in report.nodeid.replace("::", "/"):
        lines = [
            line[:_EVIDENCE_WIDTH]
            for line in report.capstdout.splitlines()
            if line.strip() and not line.lstrip().startswith(_MLFLOW_RUN_LINKS)
        ]
        if lines:
            _EVIDENCE.append((report.nodeid, lines[-_EVIDENCE_LINES:]))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the kept lines under one heading."""
    if _EVIDENCE:
        terminalreporter.section("evidence printed by the end-to-end tests")
        for nodeid, lines in _EVIDENCE:
            terminalreporter.write_line(nodeid)
            for line in lines:
                terminalreporter.write_line(f"    {line}")
