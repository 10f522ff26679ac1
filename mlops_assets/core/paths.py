"""Project-local state folder: Dagster home, MLflow store, Delta tables and caches.

Everything the system writes lives under one folder (``.state`` in the project root by
default, or ``MLOPS_STATE_DIR``), created on first use. Nothing goes to the user's home.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
STATE_DIR_ENV = "MLOPS_STATE_DIR"


@dataclass(frozen=True)
class StatePaths:
    """Where each component keeps its state.

    Attributes:
        root: The state folder itself.
    """

    root: Path

    @property
    def dagster_home(self) -> Path:
        """Dagster instance folder (DAGSTER_HOME)."""
        return self.root / "dagster_home"

    @property
    def mlflow_dir(self) -> Path:
        """Folder of the embedded MLflow store."""
        return self.root / "mlflow"

    @property
    def mlflow_tracking_uri(self) -> str:
        """SQLite tracking and registry URI of the embedded MLflow store."""
        return f"sqlite:///{self.mlflow_dir / 'mlflow.db'}"

    @property
    def mlflow_artifact_root(self) -> Path:
        """Artifact root of the embedded MLflow store."""
        return self.mlflow_dir / "artifacts"

    @property
    def lakehouse(self) -> Path:
        """Root folder of the Delta tables."""
        return self.root / "lakehouse"

    @property
    def cache(self) -> Path:
        """Download caches (OpenML, Ivy jars for Spark)."""
        return self.root / "cache"

    @property
    def serving(self) -> Path:
        """Serving state: write-ahead log, server pid and port files."""
        return self.root / "serving"

    def ensure(self) -> StatePaths:
        """Create every folder if missing and return self."""
        for path in (
            self.dagster_home,
            self.mlflow_dir,
            self.mlflow_artifact_root,
            self.lakehouse,
            self.cache,
            self.serving,
        ):
            path.mkdir(parents=True, exist_ok=True)
        return self


def state_paths(root: str | os.PathLike[str] | None = None) -> StatePaths:
    """Resolve the state folder: explicit argument, then ``MLOPS_STATE_DIR``, then ``.state``.

    Args:
        root: Optional explicit state folder.

    Returns:
        The resolved paths (folders are not created; call ``ensure``).
    """
    chosen = root or os.environ.get(STATE_DIR_ENV) or PROJECT_ROOT / ".state"
    return StatePaths(Path(chosen).resolve())
