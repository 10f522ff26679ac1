"""Delta tables on either engine: one small interface, two implementations.

The embedded default is :class:`DeltaRsEngine` (delta-rs, no JVM). The Spark engine lives
in :mod:`mlops_assets.core.spark_tables` so that importing this module never starts a JVM.
Both read and write the same table format, so a table written by one is read by the other
at the same version.
"""

from __future__ import annotations

import time
import uuid
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


COMMIT_ID_KEY = "mlops_commit_id"


def _cast_to_table(data: pa.Table, schema: pa.Schema, name: str) -> pa.Table:
    """Cast the columns ``data`` shares with the table to the table's types, losslessly."""
    columns = []
    for field in data.schema:
        column = data.column(field.name)
        target = schema.field(field.name).type if field.name in schema.names else None
        if target is not None and target != field.type:
            # Delta stores timestamps in microseconds: truncating pandas' nanoseconds is
            # the format's own precision, not a lossy append, so it is the one unsafe cast.
            both_timestamps = pa.types.is_timestamp(target) and pa.types.is_timestamp(field.type)
            try:
                column = column.cast(target, safe=not both_timestamps)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
                raise ValueError(
                    f"cannot append to Delta table {name!r}: column {field.name!r} is "
                    f"{target} in the table but {field.type} in the frame ({error})"
                ) from error
        columns.append(column)
    return pa.Table.from_arrays(columns, names=data.column_names)


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
        """Write ``frame`` as a new version of table ``name``; retries lost commit races.

        An append is cast to the table's column types first and refused when that would
        lose information (1.5 into an integer column), naming the column; new columns are
        merged into the schema. The returned version is the one this write committed
        (found by a commit id in the commit metadata), even with concurrent writers.

        Raises:
            ValueError: When an appended column cannot be stored in the table's type.
        """
        from deltalake import CommitProperties, write_deltalake

        if not self.root.startswith(("s3://", "gs://", "az://", "abfss://")):
            Path(self.root).mkdir(parents=True, exist_ok=True)
        data = pa.Table.from_pandas(frame, preserve_index=False)
        if mode == "append" and self.latest_version(name) is not None:
            data = _cast_to_table(data, pa.schema(self._table(name).schema().to_arrow()), name)
        commit_id = uuid.uuid4().hex
        for attempt in range(1, self.max_commit_attempts + 1):
            try:
                write_deltalake(
                    self.uri(name),
                    data,
                    mode=mode,
                    schema_mode="merge" if mode == "append" else "overwrite",
                    commit_properties=CommitProperties(custom_metadata={COMMIT_ID_KEY: commit_id}),
                )
                break
            except Exception as error:
                if not _is_conflict(error) or attempt == self.max_commit_attempts:
                    raise
                time.sleep(0.05 * attempt)
        return TableRef(name=name, uri=self.uri(name), version=self._version_of(name, commit_id))

    def _commit_id_at(self, name: str, version: int) -> str | None:
        """The commit id in the commit file of ``version`` (read directly: see below)."""
        import json

        from pyarrow import fs

        if "://" in self.root:
            filesystem, path = fs.FileSystem.from_uri(self.uri(name))
        else:
            filesystem, path = fs.LocalFileSystem(), str(Path(self.uri(name)).resolve())
        try:
            with filesystem.open_input_stream(f"{path}/_delta_log/{version:020d}.json") as stream:
                lines = stream.read().decode().splitlines()
        except FileNotFoundError:
            return None
        for line in lines:
            action = json.loads(line) if line.strip() else {}
            if "commitInfo" in action:
                return action["commitInfo"].get(COMMIT_ID_KEY)
        return None

    def _version_of(self, name: str, commit_id: str) -> int:
        """The version whose commit carries ``commit_id``.

        delta-rs' ``history()`` numbers its entries from the snapshot's version while it lists
        the log afresh, so with other writers committing meanwhile those numbers can be off
        (seen: two concurrent writes reported as the same version, and -1). Its guess is
        therefore checked against the commit file itself, then the newest commits are scanned.
        """
        for attempt in range(1, 6):
            table = self._table(name)
            latest = table.version()
            guesses = [
                int(entry["version"])
                for entry in table.history(256)
                if entry.get(COMMIT_ID_KEY) == commit_id
            ]
            nearby = [
                v for g in guesses for v in sorted(range(g - 3, g + 4), key=lambda v: abs(v - g))
            ]
            for version in [*nearby, *range(latest + 3, max(latest - 256, -1), -1)]:
                try:
                    found = version >= 0 and self._commit_id_at(name, version) == commit_id
                except (pa.ArrowException, OSError, ValueError):  # a store pyarrow cannot open
                    return guesses[0] if guesses else latest
                if found:
                    return version
            time.sleep(0.05 * attempt)
        raise RuntimeError(
            f"Delta table {self.uri(name)!r}: commit {commit_id} was written but is not in the "
            "latest 256 commits of its history"
        )

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

    def row_count(self, name: str, version: int | None = None) -> int:
        """Rows of ``name`` at ``version`` from the Delta log's file statistics (no data read)."""
        table = self._table(name, version)
        counts = pa.table(table.get_add_actions(flatten=True)).column("num_records").to_pylist()
        if any(count is None for count in counts):  # a writer left out the statistics
            return table.to_pyarrow_dataset().count_rows()
        return int(sum(counts))

    def read_since(
        self, name: str, after_version: int, version: int | None = None
    ) -> pd.DataFrame | None:
        """Rows added to ``name`` after ``after_version`` up to ``version`` (latest when None).

        Reads only the data files present at ``version`` but not at ``after_version``: on an
        append-only table these hold exactly the added rows. Returns None when a file of
        ``after_version`` is gone at ``version`` (an overwrite, delete or compaction happened
        in between), so the caller can fall back to comparing rows.
        """
        import pyarrow.dataset as ds

        table = self._table(name, version)
        if after_version < 0:
            return table.to_pyarrow_table().to_pandas()
        previous = self._table(name, after_version).get_add_actions()
        before = set(pa.table(previous).column("path").to_pylist())
        dataset = table.to_pyarrow_dataset()
        fragments = {fragment.path: fragment for fragment in dataset.get_fragments()}
        if not before <= set(fragments):
            return None
        added = [fragment for path, fragment in fragments.items() if path not in before]
        subset = ds.FileSystemDataset(added, dataset.schema, dataset.format, dataset.filesystem)
        return subset.to_table().to_pandas()
