"""Delta tables on either engine: one small interface, two implementations.

The embedded default is :class:`DeltaRsEngine` (delta-rs, no JVM). The Spark engine lives
in :mod:`mlops_assets.core.spark_tables` so that importing this module never starts a JVM.
Both read and write the same table format, so a table written by one is read by the other
at the same version.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

import pandas as pd
import pyarrow as pa

WriteMode = Literal["append", "overwrite"]


class TableNotFoundError(LookupError):
    """Raised when a Delta table (or the requested version of it) does not exist."""


@dataclass(frozen=True)
class TableRef:
    """A Delta table pinned to one version: what assets hand to each other.

    Attributes:
        name: Logical table name (folder name under the lakehouse root).
        uri: Full table URI or path.
        version: Delta version number this reference points at.
    """

    name: str
    uri: str
    version: int

    def describe(self) -> str:
        """Short human-readable form, e.g. ``transactions@v3``."""
        return f"{self.name}@v{self.version}"


@dataclass(frozen=True)
class TableCommit:
    """One entry of a table's history.

    Attributes:
        version: Delta version.
        timestamp_ms: Commit time in milliseconds since the epoch.
        operation: Delta operation name (WRITE, MERGE, ...).
    """

    version: int
    timestamp_ms: int
    operation: str


@runtime_checkable
class DeltaEngine(Protocol):
    """What every Delta engine offers. Frames cross the interface as pandas."""

    root: str

    def uri(self, name: str) -> str:
        """Return the URI of table ``name`` under the lakehouse root."""
        ...

    def write(self, name: str, frame: pd.DataFrame, mode: WriteMode = "append") -> TableRef:
        """Write ``frame`` as a new version of table ``name`` and return that version."""
        ...

    def read(self, name: str, version: int | None = None) -> pd.DataFrame:
        """Read table ``name`` at ``version`` (latest when None)."""
        ...

    def latest_version(self, name: str) -> int | None:
        """Return the latest version of ``name``, or None when the table does not exist."""
        ...

    def history(self, name: str) -> list[TableCommit]:
        """Return the commits of ``name``, newest first."""
        ...


def _is_conflict(error: Exception) -> bool:
    return type(error).__name__ in {"CommitFailedError", "ConcurrentAppendException"} or (
        "conflict" in str(error).lower()
    )


@dataclass(frozen=True)
class DeltaRsEngine:
    """Delta tables through delta-rs (the ``deltalake`` package), in-process, no JVM.

    Attributes:
        root: Folder or object-store URI holding one sub-folder per table.
        max_commit_attempts: Attempts for a commit that loses an optimistic-concurrency race.
    """

    root: str
    max_commit_attempts: int = 8

    def uri(self, name: str) -> str:
        """Return the URI of table ``name`` under the lakehouse root."""
        return f"{self.root.rstrip('/')}/{name}"

    def _table(self, name: str, version: int | None = None):
        from deltalake import DeltaTable
        from deltalake.exceptions import TableNotFoundError as RsTableNotFound

        try:
            table = DeltaTable(self.uri(name))
            if version is not None:
                table.load_as_version(version)
            return table
        except RsTableNotFound as error:
            raise TableNotFoundError(f"Delta table {self.uri(name)!r} does not exist") from error
        except Exception as error:
            if version is not None and "version" in str(error).lower():
                raise TableNotFoundError(
                    f"Delta table {self.uri(name)!r} has no version {version}: {error}"
                ) from error
            raise

    def write(self, name: str, frame: pd.DataFrame, mode: WriteMode = "append") -> TableRef:
        """Write ``frame`` as a new version of table ``name``; retries lost commit races."""
        from deltalake import write_deltalake

        if not self.root.startswith(("s3://", "gs://", "az://", "abfss://")):
            Path(self.root).mkdir(parents=True, exist_ok=True)
        data = pa.Table.from_pandas(frame, preserve_index=False)
        for attempt in range(1, self.max_commit_attempts + 1):
            try:
                write_deltalake(
                    self.uri(name),
                    data,
                    mode=mode,
                    schema_mode="merge" if mode == "append" else "overwrite",
                )
                break
            except Exception as error:
                if not _is_conflict(error) or attempt == self.max_commit_attempts:
                    raise
                time.sleep(0.05 * attempt)
        return TableRef(name=name, uri=self.uri(name), version=self._table(name).version())

    def read(self, name: str, version: int | None = None) -> pd.DataFrame:
        """Read table ``name`` at ``version`` (latest when None) into pandas."""
        return self._table(name, version).to_pyarrow_table().to_pandas()

    def latest_version(self, name: str) -> int | None:
        """Return the latest version of ``name``, or None when the table does not exist."""
        try:
            return self._table(name).version()
        except TableNotFoundError:
            return None

    def history(self, name: str) -> list[TableCommit]:
        """Return the commits of ``name``, newest first."""
        return [
            TableCommit(
                version=int(entry["version"]),
                timestamp_ms=int(entry.get("timestamp", 0)),
                operation=str(entry.get("operation", "")),
            )
            for entry in self._table(name).history()
        ]
