"""Lineage of a trained model: which data, which code, which orchestration run.

The same tags go on the MLflow parent run and on the registered model version, so a
version can be traced back to the Delta table versions it was trained on, the Dagster run
and asset that produced it, and the git commit and package version of the code.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, fields
from importlib import metadata
from pathlib import Path

from mlops_assets.core.paths import PROJECT_ROOT

TAG_PREFIX = "lineage."
GIT_COMMIT_ENV = "MLOPS_GIT_COMMIT"
PACKAGE_NAME = "mlops_assets"
UNKNOWN = "unknown"


@dataclass(frozen=True)
class Lineage:
    """Where a model came from.

    Attributes:
        transactions_uri: URI of the ``transactions`` Delta table the splits were cut from.
        transactions_version: Its Delta version (-1 when unknown).
        splits_uri: URI of the ``training_splits`` Delta table.
        splits_version: Its Delta version.
        train_uri: URI of the table the model was fitted on (``resampled_train``).
        train_version: Its Delta version.
        resampling_method: How the train rows were resampled (``adasyn``, ``none``, ...).
        dagster_run_id: The Dagster run that trained the model.
        asset_key: The asset that trained it.
        git_commit: Commit of the code (``-dirty`` suffix when the tree had changes).
        package_version: Version of the ``mlops_assets`` package.
    """

    transactions_uri: str
    transactions_version: int
    splits_uri: str
    splits_version: int
    train_uri: str
    train_version: int
    resampling_method: str
    dagster_run_id: str = UNKNOWN
    asset_key: str = UNKNOWN
    git_commit: str = UNKNOWN
    package_version: str = UNKNOWN

    def tags(self) -> dict[str, str]:
        """Return the lineage as MLflow tags, keys ``lineage.<field>``."""
        return {
            f"{TAG_PREFIX}{field.name}": str(getattr(self, field.name)) for field in fields(self)
        }

    @classmethod
    def from_tags(cls, tags: dict[str, str]) -> Lineage:
        """Rebuild a lineage from tags written by :meth:`tags`.

        Raises:
            KeyError: Naming the first missing tag.
        """
        values = {}
        for field in fields(cls):
            key = f"{TAG_PREFIX}{field.name}"
            if key not in tags:
                raise KeyError(f"lineage tag {key!r} is missing")
            raw = tags[key]
            values[field.name] = int(raw) if field.type in ("int", int) else raw
        return cls(**values)


def git_commit(folder: str | os.PathLike[str] | None = None) -> str:
    """Return the commit of the code in ``folder`` (default: the project root).

    ``MLOPS_GIT_COMMIT`` wins when set (for images built without ``.git``). A tree with
    uncommitted changes to tracked files gets a ``-dirty`` suffix. ``unknown`` when git or
    the repository is unavailable.
    """
    explicit = os.environ.get(GIT_COMMIT_ENV)
    if explicit:
        return explicit
    where = Path(folder) if folder else PROJECT_ROOT
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=where,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        changes = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=where,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return UNKNOWN
    return f"{commit}-dirty" if changes else commit


def package_version() -> str:
    """Return the installed version of the ``mlops_assets`` package (``unknown`` if none)."""
    try:
        return metadata.version(PACKAGE_NAME)
    except metadata.PackageNotFoundError:
        return UNKNOWN
