"""Shared fixtures: every test gets its own state folder (Delta, MLflow, DAGSTER_HOME)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mlops_assets.core.paths import PROJECT_ROOT, StatePaths, state_paths

SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"


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


@pytest.fixture(autouse=True)
def _no_home_writes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Keep libraries that default to $HOME (MLflow, Ivy, sklearn) out of the real home."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'default-mlflow.db'}")
    os.environ.setdefault("PYTHONHASHSEED", "0")
