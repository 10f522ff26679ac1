r"""The scale-out Delta engine: Spark + delta-spark, on ``local[*]``, a cluster or Spark Connect.

:class:`SparkDeltaEngine` implements the same :class:`~mlops_assets.core.tables.DeltaEngine`
protocol as the embedded delta-rs engine, and both read and write the same tables: a table
written by one is read by the other at the same version with the same rows. Frames cross the
interface as pandas, converted through Arrow exactly as the delta-rs engine converts them
(``pa.Table.from_pandas`` in, ``to_pandas`` out), so both engines return the same dtypes.
Sessions come from :func:`mlops_assets.core.spark.spark_session` (re-exported here).

Choices that keep the two engines interoperable (delta-rs 1.6 and delta-spark 4.4):

* **Table features.** New tables start at protocol (reader 1, writer 2). Deletion vectors,
  column mapping and in-commit timestamps stay off (``spark.databricks.delta.properties.
  defaults.*`` in every session): delta-rs cannot write tables that use them. The only
  feature either engine adds on its own is ``timestampNtz`` (reader 3 / writer 7) for
  time-zone-naive timestamps, which both support.
* **Timestamps.** Naive pandas timestamps become ``TIMESTAMP_NTZ`` on both engines (Spark would
  otherwise store them as local-time ``TIMESTAMP``); time-zone-aware ones become ``TIMESTAMP``
  (UTC instants). The session time zone is pinned to UTC, so those come back as
  ``datetime64[us, UTC]`` from both engines. Nanoseconds are truncated to microseconds.
* **Types.** Integer widths are kept (int32 stays ``integer``); strings, large strings and
  pandas categoricals all become ``string``; every column is nullable. Types Spark or Delta
  cannot hold (unsigned integers, ...) are refused with the column named.
* **Names.** Spark creates a table whose column names contain any of `` ,;{}()\n\t=`` only
  with column mapping, so it refuses them (the error names the columns); delta-rs writes such
  names without column mapping, and Spark reads and appends to those tables.
* **Schema changes.** Appends may add columns on both engines (schema merge). A column whose
  type changes (int -> double) is refused by Spark with the column and both types named;
  note that delta-rs instead casts the new values to the table's type.
* **Versions.** Every Spark commit carries a unique ``userMetadata`` token, so the version a
  write created is found exactly even when other writers commit at the same time.
* **Row order** is not part of a Delta table; compare tables as sets of rows.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa

from mlops_assets.core.spark import spark_session
from mlops_assets.core.tables import TableCommit, TableNotFoundError, TableRef, WriteMode

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

__all__ = ["SparkDeltaEngine", "spark_session"]

INVALID_NAME_CHARS = " ,;{}()\n\t="
_TOKEN_PREFIX = "mlops_assets-commit:"
_CONFLICTS = ("CONCURRENT", "METADATA_CHANGED", "PROTOCOL_CHANGED")
_MISSING = (
    "PATH_NOT_FOUND",
    "DELTA_MISSING_DELTA_TABLE",
    "DELTA_TABLE_NOT_FOUND",
    "DELTA_TABLE_ONLY_OPERATION",
)


def _condition(error: Exception) -> str:
    getter = getattr(error, "getCondition", None)
    return f"{getter() if callable(getter) else ''} {type(error).__name__} {error}".upper()


def _to_arrow(name: str, frame: pd.DataFrame) -> tuple[pa.Table, Any]:
    """Convert ``frame`` as the delta-rs engine does and derive the Spark schema."""
    from pyspark.sql.pandas.types import from_arrow_type
    from pyspark.sql.types import StructField, StructType

    columns = [str(column) for column in frame.columns]
    duplicates = sorted({column for column in columns if columns.count(column) > 1})
    if duplicates:
        raise ValueError(f"table {name!r}: duplicate column names {duplicates}")
    if "" in columns:
        raise ValueError(f"table {name!r}: a column has an empty name")
    try:
        data = pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
        raise ValueError(f"table {name!r}: {error}") from error
    fields = []
    for field in data.schema:
        arrow_type = field.type.value_type if pa.types.is_dictionary(field.type) else field.type
        try:
            spark_type = from_arrow_type(arrow_type, prefer_timestamp_ntz=True)
        except Exception as error:
            raise ValueError(
                f"table {name!r}: column {field.name!r} has type {field.type}, which a Delta "
                f"table cannot hold: {error}"
            ) from error
        if arrow_type != field.type:  # categoricals are stored as their values
            index = data.schema.get_field_index(field.name)
            data = data.set_column(index, field.name, data[field.name].cast(arrow_type))
        fields.append(StructField(field.name, spark_type, nullable=True))
    return data, StructType(fields)


@dataclass(frozen=True)
class SparkDeltaEngine:
    """Delta tables through Spark + delta-spark (classic or Spark Connect session).

    Attributes:
        root: Folder or URI Spark can reach, holding one sub-folder per table.
        spark: The session, usually from :func:`spark_session`.
        max_commit_attempts: Attempts for a commit that loses an optimistic-concurrency race.
    """

    root: str
    spark: Any
    max_commit_attempts: int = 8

    def uri(self, name: str) -> str:
        """Return the URI of table ``name`` under the lakehouse root."""
        if not name or "/" in name:
            raise ValueError(f"table name must be a non-empty folder name, got {name!r}")
        return f"{self.root.rstrip('/')}/{name}"

    def _quoted(self, name: str) -> str:
        return "delta.`" + self.uri(name).replace("`", "``") + "`"

    def _not_found(self, name: str, error: Exception, version: int | None = None) -> None:
        """Raise :class:`TableNotFoundError` when ``error`` says the table or version is absent."""
        condition = _condition(error)
        if version is not None and "VERSION_NOT_FOUND" in condition:
            detail = str(error).strip().splitlines()[0]  # Connect appends the JVM stack
            raise TableNotFoundError(
                f"Delta table {self.uri(name)!r} has no version {version}: {detail}"
            ) from error
        if any(marker in condition for marker in _MISSING):
            raise TableNotFoundError(f"Delta table {self.uri(name)!r} does not exist") from error

    def write(self, name: str, frame: pd.DataFrame, mode: WriteMode = "append") -> TableRef:
        """Write ``frame`` as a new version of table ``name``; retries lost commit races."""
        if mode not in ("append", "overwrite"):
            raise ValueError(
                f"table {name!r}: write mode must be append or overwrite, not {mode!r}"
            )
        data, schema = _to_arrow(name, frame)
        token = _TOKEN_PREFIX + uuid.uuid4().hex
        frame_df: DataFrame = self.spark.createDataFrame(data, schema=schema)
        writer = frame_df.write.format("delta").mode(mode).option("userMetadata", token)
        schema_option = "mergeSchema" if mode == "append" else "overwriteSchema"
        writer = writer.option(schema_option, "true")
        for attempt in range(1, self.max_commit_attempts + 1):
            try:
                writer.save(self.uri(name))
                break
            except Exception as error:
                conflict = any(marker in _condition(error) for marker in _CONFLICTS)
                if not conflict or attempt == self.max_commit_attempts:
                    self._schema_error(name, schema, error)
                    raise
                time.sleep(0.05 * attempt)
        return TableRef(name=name, uri=self.uri(name), version=self._version_of(name, token))

    def _schema_error(self, name: str, schema: Any, error: Exception) -> None:
        """Raise a ValueError naming the columns when ``error`` is a schema problem."""
        condition = _condition(error)
        if "INVALID_CHARACTERS_IN_COLUMN_NAMES" in condition:
            bad = [col for col in schema.fieldNames() if set(col) & set(INVALID_NAME_CHARS)]
            raise ValueError(
                f"table {name!r}: column names {bad} contain one of {INVALID_NAME_CHARS!r}; "
                "Spark creates such tables only with column mapping, which delta-rs cannot "
                "write, so rename the columns"
            ) from error
        if "FAILED_TO_MERGE_FIELDS" in condition or "SCHEMA_MISMATCH" in condition:
            current = self.spark.read.format("delta").load(self.uri(name)).schema
            clashes = [
                f"{field.name!r} is {current[field.name].dataType.simpleString()} in the table "
                f"but {field.dataType.simpleString()} in the frame"
                for field in schema
                if field.name in current.fieldNames()
                and current[field.name].dataType != field.dataType
            ]
            detail = "; ".join(clashes) or str(error).strip().splitlines()[0]
            raise ValueError(
                f"table {name!r}: the frame does not fit the table: {detail}"
            ) from error

    def _version_of(self, name: str, token: str) -> int:
        for limit in (16, None):
            rows = self._history_rows(name, limit)
            found = [row["version"] for row in rows if row["userMetadata"] == token]
            if found:
                return int(found[0])
        raise RuntimeError(f"Delta table {self.uri(name)!r}: commit {token} not in its history")

    def _history_rows(self, name: str, limit: int | None = None) -> list[dict[str, Any]]:
        statement = f"DESCRIBE HISTORY {self._quoted(name)}"
        if limit is not None:
            statement += f" LIMIT {int(limit)}"
        try:
            history = self.spark.sql(statement).selectExpr(
                "version", "unix_millis(timestamp) AS timestamp_ms", "operation", "userMetadata"
            )
            return history.toArrow().to_pylist()
        except Exception as error:
            self._not_found(name, error)
            raise

    def read(self, name: str, version: int | None = None) -> pd.DataFrame:
        """Read table ``name`` at ``version`` (latest when None) into pandas."""
        if version is not None and version < 0:
            raise TableNotFoundError(f"Delta table {self.uri(name)!r} has no version {version}")
        reader = self.spark.read.format("delta")
        if version is not None:
            reader = reader.option("versionAsOf", int(version))
        try:
            table = reader.load(self.uri(name)).toArrow()
        except Exception as error:
            self._not_found(name, error, version)
            raise
        return table.to_pandas()

    def latest_version(self, name: str) -> int | None:
        """Return the latest version of ``name``, or None when the table does not exist."""
        try:
            rows = self._history_rows(name, 1)
        except TableNotFoundError:
            return None
        return int(rows[0]["version"]) if rows else None

    def history(self, name: str) -> list[TableCommit]:
        """Return the commits of ``name``, newest first."""
        return [
            TableCommit(
                version=int(row["version"]),
                timestamp_ms=int(row["timestamp_ms"] or 0),
                operation=str(row["operation"] or ""),
            )
            for row in sorted(self._history_rows(name), key=lambda row: -int(row["version"]))
        ]
