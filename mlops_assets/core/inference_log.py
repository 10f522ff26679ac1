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
from functools import lru_cache
from itertools import chain
from typing import Any

import numpy as np
import orjson
import pyarrow as pa

PREDICTION_KIND = "p"
FEEDBACK_KIND = "f"
# binary prediction record: 0x02 | u32 u32 sizes | signature JSON | stamp JSON | float64 block
_BINARY = b"\x02"
_SIZES = struct.Struct("<II")

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
# Every numeric feature is logged as float64 (integers too), so a model version that turns an
# integer column into a number column still appends to the same Delta schema.
_ARROW_BY_CODE = {"n": pa.float64(), "i": pa.float64(), "s": pa.string(), "b": pa.bool_()}


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


def prediction_signature(
    model_name: str, version: int, alias: str, names: list[str], codes: str
) -> bytes:
    """The part every record of one served version shares (compute once per version)."""
    return orjson.dumps({"m": model_name, "v": version, "a": alias, "c": names, "t": codes})


def encode_prediction(
    signature: bytes,
    batch_id: str,
    timestamp_us: int,
    latency_ms: float,
    features: np.ndarray | list,
    probabilities,
    labels,
) -> bytes:
    """Encode one answered request.

    Args:
        signature: :func:`prediction_signature` of the version that answered.
        batch_id: Request id (row ids derive from it, see :func:`row_ids`).
        timestamp_us: Answer time, microseconds since the epoch (UTC).
        latency_ms: Time from receiving the request to having the prediction.
        features: float64 matrix (rows x columns) for numeric contracts, else one list of
            values per column (NaN or None for missing).
        probabilities: One probability per row.
        labels: One 0/1 label per row.
    """
    stamp = {"id": batch_id, "ts": timestamp_us, "lat": latency_ms}
    if isinstance(features, np.ndarray):
        # filled in place: half the cost of column_stack + astype on the hot path
        block = np.empty((len(features), features.shape[1] + 2))
        block[:, :-2], block[:, -2], block[:, -1] = features, probabilities, labels
        head = orjson.dumps({**stamp, "n": len(block)})
        return _BINARY + _SIZES.pack(len(signature), len(head)) + signature + head + block.tobytes()
    body = {"k": PREDICTION_KIND, **orjson.loads(signature), **stamp}
    body.update(x=features, p=probabilities, l=labels)
    return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)


def encode_feedback(items: list[tuple[str, int]], timestamp_us: int) -> bytes:
    """Encode feedback labels (request id, label)."""
    return orjson.dumps({"k": FEEDBACK_KIND, "ts": timestamp_us, "items": items})


@lru_cache(maxsize=256)
def _signature(key: bytes) -> dict[str, Any]:
    return orjson.loads(key)


def _decode(record: LogRecord) -> tuple[Any, dict, bytes | None]:
    """Return (group key or kind, header, float64 block bytes or None) of one record."""
    payload = record.payload
    try:
        if payload[:1] == _BINARY:
            signature_size, head_size = _SIZES.unpack_from(payload, 1)
            start = 1 + _SIZES.size
            head_at = start + signature_size
            header = orjson.loads(payload[head_at : head_at + head_size])
            key, block = payload[start:head_at], payload[head_at + head_size :]
            width = 8 * (len(_signature(key)["c"]) + 2)
            if len(block) != header["n"] * width:
                raise ValueError(f"{len(block)} bytes of features for {header['n']} rows")
            return key, header, block
        body = orjson.loads(payload)
        if body.get("k") == PREDICTION_KIND:
            return (tuple(body["c"]), body["t"]), body, None
        return body.get("k"), body, None
    except (ValueError, KeyError, TypeError, struct.error, AttributeError) as error:
        raise LogRecordError(f"log record {record.lsn}: undecodable ({error})") from error


def _feature_array(values, code: str) -> pa.Array:
    if isinstance(values, np.ndarray):
        return pa.array(values, type=pa.float64(), mask=np.isnan(values))
    return pa.array(values, type=_ARROW_BY_CODE[code], from_pandas=True)


def _group_table(key: Any, headers: list[dict], blocks: list) -> pa.Table:
    """Rows of the records of one group (one served version, or one JSON contract)."""
    if isinstance(key, bytes):  # binary records of one version
        shared = _signature(key)
        names, codes = shared["c"], shared["t"]
        block = np.frombuffer(b"".join(blocks), dtype=np.float64).reshape(-1, len(names) + 2)
        counts = [header["n"] for header in headers]
        features = [block[:, index] for index in range(len(names))]
        probabilities, labels = block[:, -2], block[:, -1].astype(np.int32)
    else:
        shared, names, codes = {}, headers[0]["c"], headers[0]["t"]
        counts = [len(header["p"]) for header in headers]
        features = [
            list(chain.from_iterable(h["x"][i] for h in headers)) for i in range(len(codes))
        ]
        probabilities = np.fromiter(chain.from_iterable(h["p"] for h in headers), np.float64)
        labels = np.fromiter(chain.from_iterable(h["l"] for h in headers), np.int32)
    rows = int(sum(counts))
    spread = np.repeat(np.arange(len(headers)), counts) if rows > len(headers) else None

    def meta(key: str, kind: pa.DataType) -> pa.Array:
        if key in shared:
            return pa.array([shared[key]] * rows, type=kind)
        array = pa.array([header[key] for header in headers], type=kind)
        return array if spread is None else array.take(spread)

    ids = [header["id"] for header in headers]
    if spread is not None:
        ids = [rid for h, n in zip(headers, counts, strict=True) for rid in row_ids(h["id"], n)]
    columns = {
        "request_id": pa.array(ids, pa.string()),
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
    groups: dict[Any, tuple[list, list]] = {}
    feedback: list[tuple[str, int, int]] = []
    for record in records:
        key, header, block = _decode(record)
        if key == FEEDBACK_KIND:
            if record.lsn > feedback_after:
                try:
                    feedback += [(str(r), int(label), header["ts"]) for r, label in header["items"]]
                except (KeyError, TypeError, ValueError) as error:
                    problem = f"log record {record.lsn}: bad feedback ({error})"
                    raise LogRecordError(problem) from None
        elif isinstance(key, bytes | tuple):
            if record.lsn > predictions_after:
                headers, blocks = groups.setdefault(key, ([], []))
                headers.append(header)
                blocks.append(block)
        else:
            raise LogRecordError(f"log record {record.lsn}: unknown record kind {key!r}")
    tables = []
    for key, (headers, blocks) in groups.items():
        try:
            tables.append(_group_table(key, headers, blocks))
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
