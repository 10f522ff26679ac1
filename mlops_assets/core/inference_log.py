"""Inference-log records: how the server writes them and how they become Delta rows.

The serving endpoint makes one write-ahead-log record per answered request (see
``mlops_assets.serving.wal``); this module defines that record and turns batches of records
into Arrow tables for ``inference_log`` (one column per input feature, what the drift monitor
reads) and ``feedback``. Records of all-numeric contracts carry their features, probabilities
and labels as one float64 block after a small JSON header, so decoding a batch is a few numpy
calls; other contracts carry JSON columns.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

import numpy as np
import orjson
import pyarrow as pa

PREDICTION_KIND = "p"
FEEDBACK_KIND = "f"
_BINARY = b"\x01"  # binary prediction record: 0x01 | u32 header length | header | float64 block
_HEADER_SIZE = struct.Struct("<I")

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
        payload: The record as written.
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


def encode_prediction(
    header: dict[str, Any], features: np.ndarray | list, probabilities, labels
) -> bytes:
    """Encode one answered request.

    Args:
        header: ``id`` (batch id), ``ts`` (epoch microseconds), ``m`` (model name), ``v``
            (version), ``a`` (alias), ``c`` (column names), ``t`` (kind codes), ``lat`` (ms).
        features: float64 matrix (rows x columns) for numeric contracts, else one list of
            values per column (NaN or None for missing).
        probabilities: One probability per row.
        labels: One 0/1 label per row.
    """
    if isinstance(features, np.ndarray):
        block = np.column_stack([features, probabilities, labels]).astype(np.float64, copy=False)
        head = orjson.dumps({**header, "n": len(block)})
        return _BINARY + _HEADER_SIZE.pack(len(head)) + head + block.tobytes()
    body = {"k": PREDICTION_KIND, **header, "x": features, "p": probabilities, "l": labels}
    return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)


def encode_feedback(items: list[tuple[str, int]], timestamp_us: int) -> bytes:
    """Encode feedback labels (request id, label)."""
    return orjson.dumps({"k": FEEDBACK_KIND, "ts": timestamp_us, "items": items})


def _decode(record: LogRecord) -> tuple[str, dict, Any]:
    """Return (kind, header, numeric block or None) of one record."""
    payload = record.payload
    try:
        if payload[:1] == _BINARY:
            (size,) = _HEADER_SIZE.unpack_from(payload, 1)
            header = orjson.loads(payload[5 : 5 + size])
            block = np.frombuffer(payload, dtype=np.float64, offset=5 + size)
            return PREDICTION_KIND, header, block.reshape(header["n"], len(header["c"]) + 2)
        body = orjson.loads(payload)
        return body.get("k"), body, None
    except (ValueError, KeyError, TypeError, struct.error, AttributeError) as error:
        raise LogRecordError(f"log record {record.lsn}: undecodable ({error})") from error


def _feature_array(values, code: str) -> pa.Array:
    if isinstance(values, np.ndarray):
        missing = np.isnan(values)
        if code == "i":
            return pa.array(np.where(missing, 0, values).astype(np.int64), mask=missing)
        return pa.array(values, type=pa.float64(), mask=missing)
    return pa.array(values, type=_ARROW_BY_CODE[code], from_pandas=True)


def _group_table(headers: list[dict], blocks: list) -> pa.Table:
    """Rows of records sharing one contract (same names and kinds)."""
    names, codes = headers[0]["c"], headers[0]["t"]
    if blocks[0] is not None:
        block = blocks[0] if len(blocks) == 1 else np.vstack(blocks)
        counts = [len(b) for b in blocks]
        features = [block[:, index] for index in range(len(names))]
        probabilities, labels = block[:, -2], block[:, -1].astype(np.int32)
    else:
        counts = [len(header["p"]) for header in headers]
        features = [
            list(chain.from_iterable(h["x"][i] for h in headers)) for i in range(len(codes))
        ]
        probabilities = np.fromiter(chain.from_iterable(h["p"] for h in headers), np.float64)
        labels = np.fromiter(chain.from_iterable(h["l"] for h in headers), np.int32)
    spread = np.repeat(np.arange(len(headers)), counts) if max(counts) > 1 else None

    def meta(key: str, kind: pa.DataType) -> pa.Array:
        array = pa.array([header[key] for header in headers], type=kind)
        return array if spread is None else array.take(spread)

    columns = {
        "request_id": pa.array(
            [rid for h, n in zip(headers, counts, strict=True) for rid in row_ids(h["id"], n)],
            pa.string(),
        ),
        "batch_id": meta("id", pa.string()),
        "timestamp": meta("ts", TIMESTAMP_TYPE),
        "model_name": meta("m", pa.string()),
        "model_version": meta("v", pa.int64()),
        "model_alias": meta("a", pa.string()),
        "probability": pa.array(probabilities, pa.float64()),
        "label": pa.array(labels, pa.int32()),
        "latency_ms": meta("lat", pa.float64()),
    }
    for name, code, values in zip(names, codes, features, strict=True):
        columns[name] = _feature_array(values, code)
    return pa.table(columns)


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
        The rows of each table (features as one column per contract column; records of
        different contracts are unioned, missing columns null).

    Raises:
        LogRecordError: When a record is not a prediction or feedback record, or malformed.
    """
    groups: dict[tuple, tuple[list, list]] = {}
    feedback: list[tuple[str, int, int]] = []
    for record in records:
        kind, header, block = _decode(record)
        if kind == PREDICTION_KIND:
            if record.lsn > predictions_after:
                try:
                    signature = (tuple(header["c"]), header["t"], block is None)
                except (KeyError, TypeError) as error:
                    raise LogRecordError(f"log record {record.lsn}: no columns ({error})") from None
                headers, blocks = groups.setdefault(signature, ([], []))
                headers.append(header)
                blocks.append(block)
        elif kind == FEEDBACK_KIND:
            if record.lsn > feedback_after:
                try:
                    feedback += [(str(r), int(label), header["ts"]) for r, label in header["items"]]
                except (KeyError, TypeError, ValueError) as error:
                    raise LogRecordError(
                        f"log record {record.lsn}: bad feedback ({error})"
                    ) from None
        else:
            raise LogRecordError(f"log record {record.lsn}: unknown record kind {kind!r}")
    tables = []
    for (_, _, _), (headers, blocks) in groups.items():
        try:
            tables.append(_group_table(headers, blocks))
        except (KeyError, TypeError, ValueError, IndexError, pa.ArrowException) as error:
            raise LogRecordError(f"malformed prediction record ({error})") from error
    feedback_table = None
    if feedback:
        rids, labels, stamps = zip(*feedback, strict=True)
        arrays = [pa.array(rids), pa.array(labels, pa.int32()), pa.array(stamps, TIMESTAMP_TYPE)]
        feedback_table = pa.Table.from_arrays(arrays, schema=FEEDBACK_SCHEMA)
    predictions = None
    if tables:
        predictions = (
            tables[0] if len(tables) == 1 else pa.concat_tables(tables, promote_options="default")
        )
    return LogBatch(
        last_lsn=max(record.lsn for record in records),
        predictions=predictions,
        feedback=feedback_table,
    )
