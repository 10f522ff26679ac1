"""Monitoring core: inference-log windows by Delta version, feedback joins, online performance."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, cohen_kappa_score, f1_score

from mlops_assets.constants import INFERENCE_LOG_TABLE, LABELED_FEEDBACK_TABLE
from mlops_assets.core.feedback import TRUE_LABEL, join_feedback, update_labeled_feedback
from mlops_assets.core.ingestion import align_feedback
from mlops_assets.core.monitoring import (
    MonitoringError,
    grade,
    next_window_start,
    read_window,
    rows_since,
    table_rows,
)
from mlops_assets.core.performance import measure_performance, online_performance
from mlops_assets.core.schema import DataValidationError
from mlops_assets.core.tables import DeltaRsEngine
from mlops_assets_tests.core.monitoring_fixtures import feedback_rows, served_rows
from mlops_assets_tests.serving.registry import feature_frame


@dataclass(frozen=True)
class ProtocolOnly:
    """An engine with only the DeltaEngine protocol (no read_since, no row_count): Spark-like."""

    inner: DeltaRsEngine

    @property
    def root(self) -> str:
        return self.inner.root

    def uri(self, name):
        return self.inner.uri(name)

    def write(self, name, frame, mode="append"):
        return self.inner.write(name, frame, mode)

    def read(self, name, version=None):
        return self.inner.read(name, version)

    def latest_version(self, name):
        return self.inner.latest_version(name)

    def history(self, name):
        return self.inner.history(name)


def _log(engine: DeltaRsEngine, batches: list[tuple[str, int]]) -> list[int]:
    versions = []
    for index, (batch, rows) in enumerate(batches):
        features, _ = feature_frame(rows, seed=index)
        versions.append(engine.write(INFERENCE_LOG_TABLE, served_rows(features, batch)).version)
    return versions


def _ids(frame: pd.DataFrame) -> set[str]:
    return set(frame["request_id"])


def test_rows_since_reads_exactly_the_appended_rows_on_both_paths(tmp_path: Path) -> None:
    engine = DeltaRsEngine(str(tmp_path))
    v0, v1, v2 = _log(engine, [("a", 5), ("b", 3), ("c", 4)])
    for reader in (engine, ProtocolOnly(engine)):
        expected = {f"b-{i}" for i in range(3)} | {f"c-{i}" for i in range(4)}
        assert _ids(rows_since(reader, INFERENCE_LOG_TABLE, v0, v2)) == expected
        assert _ids(rows_since(reader, INFERENCE_LOG_TABLE, v0, v1)) == {"b-0", "b-1", "b-2"}
        assert len(rows_since(reader, INFERENCE_LOG_TABLE, -1, v2)) == 12
        assert rows_since(reader, INFERENCE_LOG_TABLE, v2, v2).empty
    # delta-rs reads only the new files; a rewrite in between makes it fall back, still exact
    assert engine.read_since(INFERENCE_LOG_TABLE, v1, v2) is not None
    rewritten = engine.read(INFERENCE_LOG_TABLE)
    v3 = engine.write(INFERENCE_LOG_TABLE, rewritten, mode="overwrite").version
    v4 = _log_more(engine, "d", 2)
    assert engine.read_since(INFERENCE_LOG_TABLE, v2, v4) is None
    assert _ids(rows_since(engine, INFERENCE_LOG_TABLE, v2, v4)) == {"d-0", "d-1"}
    assert v3 == v2 + 1 and table_rows(engine, INFERENCE_LOG_TABLE) == 14
    assert table_rows(ProtocolOnly(engine), INFERENCE_LOG_TABLE, v0) == 5


def _log_more(engine: DeltaRsEngine, batch: str, rows: int) -> int:
    features, _ = feature_frame(rows, seed=9)
    return engine.write(INFERENCE_LOG_TABLE, served_rows(features, batch)).version


def test_windows_since_last_report_and_last_rows(tmp_path: Path) -> None:
    engine = DeltaRsEngine(str(tmp_path))
    absent = read_window(engine, "since_last_report")
    assert absent.rows == 0 and absent.to_version == -1
    v0, v1 = _log(engine, [("a", 5), ("b", 3)])
    window = read_window(engine, "since_last_report", after_version=v0)
    assert window.rows == 3 and (window.after_version, window.to_version) == (v0, v1)
    last = read_window(engine, "last_rows", last_rows=4)
    assert last.rows == 4 and last.to_version == v1 and last.after_version == -1
    with pytest.raises(MonitoringError, match="window mode 'weekly'"):
        read_window(engine, "weekly")  # type: ignore[arg-type]


def test_next_window_starts_after_a_verdict_but_keeps_rows_without_one() -> None:
    assert next_window_start(None) == -1
    verdict = {"enough_data": True, "inference_log_version": 7, "inference_log_from_version": 3}
    assert next_window_start(verdict) == 7
    assert next_window_start({**verdict, "enough_data": False}) == 3
    assert next_window_start({**verdict, "window_mode": "last_rows", "enough_data": False}) == 7


def test_feedback_join_keeps_latest_label_and_first_answer() -> None:
    features, _ = feature_frame(4, seed=0)
    served = served_rows(features, "a")
    served = pd.concat([served, served.iloc[[0]].assign(probability=0.99)])  # retried batch
    feedback = feedback_rows(["a-0", "a-1", "a-0", "zz"], [1, 0, 0, 1])  # a-0 relabelled
    joined = join_feedback(served, feedback)
    assert sorted(joined["request_id"]) == ["a-0", "a-1"]
    row = joined.set_index("request_id").loc["a-0"]
    assert row[TRUE_LABEL] == 0 and row["probability"] == served["probability"].iloc[0]
    with pytest.raises(MonitoringError, match="'label': values \\[2\\] not 0/1"):
        join_feedback(served, feedback.assign(label=2))
    with pytest.raises(MonitoringError, match="lacks column\\(s\\) \\['timestamp'\\]"):
        join_feedback(served, feedback.drop(columns=["timestamp"]))


def test_labeled_feedback_appends_each_labeled_request_once(tmp_path: Path) -> None:
    engine = DeltaRsEngine(str(tmp_path))
    nothing = update_labeled_feedback(engine)
    assert nothing.ref is None and nothing.appended == 0 and nothing.inference_log_version == -1
    features, _ = feature_frame(6, seed=0)
    engine.write(INFERENCE_LOG_TABLE, served_rows(features, "a"))
    engine.write("feedback", feedback_rows(["a-0", "a-1", "a-2"], [1, 0, 0]))
    first = update_labeled_feedback(engine)
    assert (first.appended, first.total, first.positives) == (3, 3, 1)
    again = update_labeled_feedback(engine)  # nothing new: no new version
    assert again.appended == 0 and again.ref == first.ref
    engine.write("feedback", feedback_rows(["a-4", "a-2"], [1, 1]))  # one late, one repeat
    late = update_labeled_feedback(engine)
    assert (late.appended, late.total, late.ref.version) == (1, 4, first.ref.version + 1)
    table = engine.read(LABELED_FEEDBACK_TABLE)
    assert sorted(table["request_id"]) == ["a-0", "a-1", "a-2", "a-4"]
    assert set(table.columns) >= {*features.columns, "label", "predicted_label", "served_at"}
    assert table.set_index("request_id").loc["a-0", "V1"] == features.loc[0, "V1"]


def test_online_performance_matches_sklearn_and_reports_the_drop() -> None:
    rng = np.random.default_rng(0)
    truth = (rng.random(400) < 0.2).astype(int)
    probability = np.clip(truth * 0.5 + rng.random(400) * 0.6, 0, 1)
    joined = pd.DataFrame(
        {TRUE_LABEL: truth, "probability": probability, "label": (probability >= 0.5).astype(int)}
    )
    baseline = {"kappa": 0.9, "f1": 0.95, "pr_auc": 0.97}
    result = online_performance(joined, baseline, min_rows=100)
    assert result.enough_data and result.rows == 400 and result.positives == truth.sum()
    kappa = cohen_kappa_score(truth, joined["label"])
    assert result.online["kappa"] == pytest.approx(kappa)
    assert result.online["f1"] == pytest.approx(f1_score(truth, joined["label"]))
    assert result.online["pr_auc"] == pytest.approx(average_precision_score(truth, probability))
    assert result.drop == pytest.approx(0.9 - kappa) and "drop" in result.reason
    few = online_performance(joined.head(50), baseline, min_rows=100)
    assert not few.enough_data and few.drop == 0.0 and "not enough labeled rows" in few.reason
    negatives = online_performance(joined[joined[TRUE_LABEL] == 0], baseline, min_rows=10)
    assert not negatives.enough_data and "0 positive" in negatives.reason


def test_measure_performance_scores_only_the_champion_version(tmp_path: Path) -> None:
    engine = DeltaRsEngine(str(tmp_path))
    features, labels = feature_frame(300, seed=3)
    good = served_rows(features, "new", version=2, probabilities=labels.to_numpy() * 0.9)
    bad = served_rows(features, "old", version=1, probabilities=1 - labels.to_numpy())
    engine.write(INFERENCE_LOG_TABLE, pd.concat([good, bad], ignore_index=True))
    ids = [*good["request_id"], *bad["request_id"]]
    engine.write("feedback", feedback_rows(ids, [*labels, *labels]))
    report = measure_performance(engine, "fraud_detector", 2, {"kappa": 1.0}, min_rows=100)
    assert report.performance.rows == 300 and report.performance.online["kappa"] == 1.0
    assert report.performance.drop == 0.0 and report.inference_log_version == 0
    windowed = measure_performance(engine, "fraud_detector", 1, {}, min_rows=10, window_rows=50)
    assert windowed.performance.rows == 50 and windowed.performance.online["kappa"] < 0


def test_align_feedback_to_silver_columns_and_types() -> None:
    silver = pd.DataFrame({"Time": [1.0, 2.0], "V1": [0.1, 0.2], "n": [1, 2], "label": [0, 1]})
    feedback = pd.DataFrame({"V1": [0.5], "n": [3.0], "label": [1], "request_id": ["r"]})
    aligned, missing = align_feedback(silver, feedback, "labeled_feedback@v0")
    assert missing == ("Time",) and list(aligned.columns) == ["Time", "V1", "n", "label"]
    assert aligned["n"].dtype == "int64" and np.isnan(aligned.loc[0, "Time"])
    with pytest.raises(DataValidationError, match="labeled_feedback@v0, column 'n'"):
        align_feedback(silver, feedback.assign(n=[np.nan]), "labeled_feedback@v0")
    with pytest.raises(DataValidationError, match="'label': values \\[3\\] not 0/1"):
        align_feedback(silver, feedback.assign(label=[3]), "labeled_feedback@v0")
    with pytest.raises(DataValidationError, match="no feature column in common"):
        align_feedback(silver, pd.DataFrame({"x": [1.0], "label": [0]}), "labeled_feedback@v0")


def test_grade_levels() -> None:
    assert [grade(value, 0.3, 0.5) for value in (0.1, 0.3, 0.49, 0.5, 0.9)] == [
        "pass",
        "warn",
        "warn",
        "error",
        "error",
    ]
    with pytest.raises(MonitoringError, match="warn threshold 0.6 is above error threshold 0.5"):
        grade(0.1, 0.6, 0.5)
