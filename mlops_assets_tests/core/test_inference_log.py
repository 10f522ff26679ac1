from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pytest
from deltalake import DeltaTable

from mlops_assets.core.delta_log_sink import DeltaLogSink
from mlops_assets.core.inference_log import (
    FEEDBACK_SCHEMA,
    LogRecord,
    LogRecordError,
    decode_batch,
    encode_feedback,
    encode_prediction,
    prediction_signature,
    row_ids,
)


def signature(names: list[str], kinds: str, version: int = 1) -> bytes:
    return prediction_signature("fraud_detector", version, "champion", names, kinds)


def prediction(lsn: int, batch_id: str, rows: int = 1, version: int = 1, extra: bool = False):
    """A binary record (numeric contract), or a JSON one with a string column when extra."""
    matrix = np.array([[0.5 + index, index] for index in range(rows)], dtype=np.float64)
    matrix[0, 0] = np.nan  # a missing value stays null in Delta
    probabilities, labels = np.full(rows, 0.25), np.zeros(rows, dtype=np.int8)
    stamp = (batch_id, 1_700_000_000_000_000, 0.4)
    if not extra:
        payload = encode_prediction(
            signature(["V1", "count"], "ni", version), *stamp, matrix, probabilities, labels
        )
    else:
        columns = [matrix[:, 0].tolist(), [int(v) for v in matrix[:, 1]], ["web"] * rows]
        payload = encode_prediction(
            signature(["V1", "count", "channel"], "nis", version),
            *stamp,
            columns,
            probabilities.tolist(),
            labels.tolist(),
        )
    return LogRecord(lsn=lsn, payload=payload)


def feedback(lsn: int, *items: tuple[str, int]) -> LogRecord:
    return LogRecord(lsn=lsn, payload=encode_feedback(list(items), 1))


def test_row_ids_are_the_batch_id_for_one_row_and_suffixed_otherwise() -> None:
    assert row_ids("abc", 1) == ["abc"]
    assert row_ids("abc", 3) == ["abc-0", "abc-1", "abc-2"]


def test_decode_builds_one_column_per_feature_and_unions_contracts() -> None:
    batch = decode_batch(
        [prediction(1, "a", rows=2), feedback(2, ("a-0", 1)), prediction(3, "b", extra=True)]
    )
    assert batch.last_lsn == 3
    table = batch.predictions
    assert table.num_rows == 3
    assert table.column_names[:9] == [
        "request_id",
        "batch_id",
        "timestamp",
        "model_name",
        "model_version",
        "model_alias",
        "probability",
        "label",
        "latency_ms",
    ]
    assert table.column_names[9:] == ["V1", "count", "channel"]
    assert table.schema.field("V1").type == pa.float64()
    assert table.schema.field("count").type == pa.float64()  # numeric features: float64
    assert table.column("request_id").to_pylist() == ["a-0", "a-1", "b"]
    assert table.column("V1").to_pylist() == [None, 1.5, None]
    assert table.column("channel").to_pylist() == [None, None, "web"]
    assert batch.feedback.schema == FEEDBACK_SCHEMA
    assert batch.feedback.column("request_id").to_pylist() == ["a-0"]


def test_decode_skips_records_already_committed_per_table() -> None:
    records = [prediction(1, "a"), feedback(2, ("a", 1)), prediction(3, "b"), feedback(4, ("b", 0))]
    batch = decode_batch(records, predictions_after=1, feedback_after=4)
    assert batch.predictions.column("request_id").to_pylist() == ["b"]
    assert batch.feedback is None


def test_decode_names_the_bad_record() -> None:
    with pytest.raises(LogRecordError, match="log record 7: unknown record kind 'z'"):
        decode_batch([LogRecord(7, orjson.dumps({"k": "z"}))])
    with pytest.raises(LogRecordError, match="log record 8: undecodable"):
        decode_batch([LogRecord(8, orjson.dumps({"k": "p", "id": "x"}))])
    with pytest.raises(LogRecordError, match="log record 9: undecodable"):
        decode_batch([LogRecord(9, prediction(9, "a").payload[:-3])])


def test_sink_commits_each_lsn_exactly_once(tmp_path: Path) -> None:
    sink = DeltaLogSink(str(tmp_path / "lake"), app_id="server-a")
    rows = decode_batch([prediction(1, "a"), prediction(2, "b")]).predictions
    assert sink.committed_lsn("inference_log") == 0
    assert sink.append("inference_log", rows, lsn=2) is True
    assert sink.append("inference_log", rows, lsn=2, verify=True) is False  # a retry
    assert sink.append("inference_log", rows, lsn=1, verify=True) is False
    assert sink.committed_lsn("inference_log") == 2
    table = DeltaTable(sink.uri("inference_log"))
    assert table.version() == 0 and table.to_pyarrow_table().num_rows == 2
    fresh = DeltaLogSink(str(tmp_path / "lake"), app_id="server-a")  # after a restart
    assert fresh.committed_lsn("inference_log") == 2
    other = DeltaLogSink(str(tmp_path / "lake"), app_id="server-b")  # a second writer
    assert other.committed_lsn("inference_log") == 0
    assert other.append("inference_log", rows, lsn=2) is True
    assert DeltaTable(sink.uri("inference_log")).to_pyarrow_table().num_rows == 4
