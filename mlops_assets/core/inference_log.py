"""The inference log and feedback Delta tables: record format, schema, exactly-once commits.

The serving endpoint writes one write-ahead-log record per answered request (see
``mlops_assets.serving.wal``); this module turns batches of those records into Arrow tables
with one column per input feature (what the drift monitor reads) and appends them to Delta
exactly once: every commit carries a Delta application transaction ``(app_id, lsn)`` where
``lsn`` is the last log sequence number in the batch, so after a crash the writer reads the
transaction version back and skips what is already in the table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson
import pyarrow as pa

PREDICTION_KIND = "p"
FEEDBACK_KIND = "f"

# Columns of ``inference_log`` besides the features (a feature may not use these names).
LOG_COLUMNS: tuple[str, ...] = (
    "request_id",
    "batch_id",
    "timestamp",
    "model_name",
    "model_version",
    "model_alias",
    "probability",
    "label",
    "latency_ms",
)
RESERVED_COLUMNS = frozenset(LOG_COLUMNS)
TIMESTAMP_TYPE = pa.timestamp("us", tz="UTC")
FEEDBACK_SCHEMA = pa.schema(
    [
        pa.field("request_id", pa.string(), nullable=False),
        pa.field("label", pa.int32(), nullable=False),
        pa.field("timestamp", TIMESTAMP_TYPE, nullable=False),
    ]
)
_LOG_TYPES = {
    "request_id": pa.string(),
    "batch_id": pa.string(),
    "timestamp": TIMESTAMP_TYPE,
    "model_name": pa.string(),
    "model_version": pa.int64(),
    "model_alias": pa.string(),
    "probability": pa.float64(),
    "label": pa.int32(),
    "latency_ms": pa.float64(),
}
# One letter per contract column kind, as stored in a record's "t" field.
KIND_CODES = {"number": "n", "integer": "i", "string": "s", "boolean": "b"}
_ARROW_BY_CODE = {"n": pa.float64(), "i": pa.int64(), "s": pa.string(), "b": pa.bool_()}


class LogRecordError(ValueError):
    """Raised when a write-ahead-log record cannot be turned into table rows."""


@dataclass(frozen=True)
class LogRecord:
    """One durable write-ahead-log record.

    Attributes:
        lsn: Log sequence number (strictly increasing, never reused).
        payload: The record as written (orjson bytes).
    """

    lsn: int
    payload: bytes


@dataclass(frozen=True)
class LogBatch:
    """Rows of both tables decoded from a run of consecutive records.

    Attributes:
        last_lsn: Highest sequence number in the batch.
        predictions: ``inference_log`` rows (None when the batch holds none).
        feedback: ``feedback`` rows (None when the batch holds none).
    """

    last_lsn: int
    predictions: pa.Table | None
    feedback: pa.Table | None


def row_ids(batch_id: str, rows: int) -> list[str]:
    """Per-row request ids: the batch id for a single row, ``<batch id>-<i>`` otherwise."""
    return [batch_id] if rows == 1 else [f"{batch_id}-{index}" for index in range(rows)]


def _prediction_columns(record: dict, lsn: int) -> dict[str, list]:
    try:
        names, codes, features = record["c"], record["t"], record["x"]
        rows = len(record["p"])
        columns: dict[str, list] = {
            "request_id": row_ids(record["id"], rows),
            "batch_id": [record["id"]] * rows,
            "timestamp": [record["ts"]] * rows,
            "model_name": [record["m"]] * rows,
            "model_version": [record["v"]] * rows,
            "model_alias": [record["a"]] * rows,
            "probability": record["p"],
            "label": record["l"],
            "latency_ms": [record["lat"]] * rows,
        }
    except (KeyError, TypeError) as error:
        raise LogRecordError(f"log record {lsn}: malformed prediction record ({error})") from error
    if not (len(names) == len(codes) == len(features)):
        raise LogRecordError(f"log record {lsn}: {len(names)} names, {len(features)} columns")
    for name, values in zip(names, features, strict=True):
        columns[name] = values
    return columns


def _table(rows: list[tuple[dict[str, list], dict[str, pa.DataType]]]) -> pa.Table:
    types: dict[str, pa.DataType] = dict(_LOG_TYPES)
    for _, feature_types in rows:
        types.update(feature_types)
    names = list(_LOG_TYPES) + sorted(name for name in types if name not in _LOG_TYPES)
    arrays = {name: [] for name in names}
    for columns, _ in rows:
        size = len(columns["request_id"])
        for name in names:
            arrays[name].extend(columns.get(name, [None] * size))
    return pa.table({name: pa.array(arrays[name], type=types[name]) for name in names})


def decode_batch(
    records: Sequence[LogRecord], predictions_after: int = 0, feedback_after: int = 0
) -> LogBatch:
    """Decode consecutive records into ``inference_log`` and ``feedback`` rows.

    Args:
        records: Records in sequence order (at least one).
        predictions_after: Prediction records up to this sequence number are already in
            ``inference_log`` and are skipped.
        feedback_after: Feedback records up to this sequence number are already in
            ``feedback`` and are skipped.

    Returns:
        The rows of each table (features as one column per contract column).

    Raises:
        LogRecordError: When a record is not a prediction or feedback record, or malformed.
    """
    predictions: list[tuple[dict[str, list], dict[str, pa.DataType]]] = []
    feedback: list[tuple[str, int, int]] = []
    for record in records:
        body = orjson.loads(record.payload)
        kind = body.get("k") if isinstance(body, dict) else None
        if kind == PREDICTION_KIND:
            if record.lsn <= predictions_after:
                continue
            columns = _prediction_columns(body, record.lsn)
            feature_types = {
                name: _ARROW_BY_CODE[code] for name, code in zip(body["c"], body["t"], strict=True)
            }
            predictions.append((columns, feature_types))
        elif kind == FEEDBACK_KIND:
            if record.lsn <= feedback_after:
                continue
            feedback.extend((str(rid), int(label), body["ts"]) for rid, label in body["items"])
        else:
            raise LogRecordError(f"log record {record.lsn}: unknown record kind {kind!r}")
    feedback_table = None
    if feedback:
        rids, labels, stamps = zip(*feedback, strict=True)
        feedback_table = pa.Table.from_arrays(
            [
                pa.array(rids, pa.string()),
                pa.array(labels, pa.int32()),
                pa.array(stamps, TIMESTAMP_TYPE),
            ],
            schema=FEEDBACK_SCHEMA,
        )
    return LogBatch(
        last_lsn=max(record.lsn for record in records),
        predictions=_table(predictions) if predictions else None,
        feedback=feedback_table,
    )


@dataclass(frozen=True)
class DeltaLogSink:
    """Appends decoded batches to the Delta tables, each commit tagged ``(app_id, lsn)``.

    Attributes:
        root: Lakehouse root (folder or object-store URI).
        app_id: Delta application id of this writer (one per write-ahead-log folder).
        predictions_table: Table name of the inference log.
        feedback_table: Table name of the feedback labels.
    """

    root: str
    app_id: str
    predictions_table: str = "inference_log"
    feedback_table: str = "feedback"

    def uri(self, table: str) -> str:
        """Return the URI of ``table`` under the root."""
        return f"{self.root.rstrip('/')}/{table}"

    def committed_lsn(self, table: str) -> int:
        """Return the last sequence number this writer committed to ``table`` (0 if none)."""
        from deltalake import DeltaTable
        from deltalake.exceptions import TableNotFoundError

        try:
            version = DeltaTable(self.uri(table)).transaction_version(self.app_id)
        except TableNotFoundError:
            return 0
        return int(version or 0)

    def append(self, table: str, rows: pa.Table, lsn: int) -> bool:
        """Append ``rows`` to ``table`` unless a commit tagged ``lsn`` or later exists.

        Returns:
            True when this call committed, False when the rows were already there.
        """
        from deltalake import CommitProperties, Transaction, write_deltalake

        if self.committed_lsn(table) >= lsn:
            return False
        if "://" not in self.root:
            Path(self.root).mkdir(parents=True, exist_ok=True)
        write_deltalake(
            self.uri(table),
            rows,
            mode="append",
            schema_mode="merge",
            commit_properties=CommitProperties(
                app_transactions=[Transaction(app_id=self.app_id, version=lsn)],
                custom_metadata={"writer": "mlops-serve", "wal_lsn": str(lsn)},
            ),
        )
        return True
