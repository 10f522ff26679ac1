from __future__ import annotations

from pathlib import Path

import orjson
import pyarrow as pa
import pytest
from deltalake import DeltaTable

from mlops_assets.core.inference_log import (
    FEEDBACK_SCHEMA,
    DeltaLogSink,
    LogRecord,
    LogRecordError,
    decode_batch,
    row_ids,
)


def prediction(lsn: int, batch_id: str, rows: int = 1, version: int = 1, extra: bool = False):
    names, kinds = ["V1", "count"], "ni"
    features = [[0.5 + index for index in range(rows)], [index for index in range(rows)]]
    if extra:
        names, kinds = [*names, "channel"], kinds + "s"
        features.append(["web"] * rows)
    features[0][0] = None  # a missing value stays null in Delta
    payload = {
        "k": "p",
        "id": batch_id,
        "ts": 1_700_000_000_000_000,
        "m": "fraud_detector",
        "v": version,
        "a": "champion",
        "c": names,
        "t": kinds,
        "x": features,
        "p": [0.25] * rows,
        "l": [0] * rows,
        "lat": 0.4,
    }
    return LogRecord(lsn=lsn, payload=orjson.dumps(payload))


def feedback(lsn: int, *items: tuple[str, int]) -> LogRecord:
    return LogRecord(lsn=lsn, payload=orjson.dumps({"k": "f", "ts": 1, "items": list(items)}))


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
    assert set(table.column_names[9:]) == {"V1", "count", "channel"}
    assert table.schema.field("V1").type == pa.float64()
    assert table.schema.field("count").type == pa.int64()
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
    with pytest.raises(LogRecordError, match="log record 8: malformed prediction record"):
        decode_batch([LogRecord(8, orjson.dumps({"k": "p", "id": "x"}))])


def test_sink_commits_each_lsn_exactly_once(tmp_path: Path) -> None:
    sink = DeltaLogSink(str(tmp_path / "lake"), app_id="server-a")
    rows = decode_batch([prediction(1, "a"), prediction(2, "b")]).predictions
    assert sink.committed_lsn("inference_log") == 0
    assert sink.append("inference_log", rows, lsn=2) is True
    assert sink.append("inference_log", rows, lsn=2) is False  # a retry after a crash
    assert sink.append("inference_log", rows, lsn=1) is False
    assert sink.committed_lsn("inference_log") == 2
    table = DeltaTable(sink.uri("inference_log"))
    assert table.version() == 0 and table.to_pyarrow_table().num_rows == 2
    other = DeltaLogSink(str(tmp_path / "lake"), app_id="server-b")  # a second writer
    assert other.committed_lsn("inference_log") == 0
    assert other.append("inference_log", rows, lsn=2) is True
    assert DeltaTable(sink.uri("inference_log")).to_pyarrow_table().num_rows == 4
