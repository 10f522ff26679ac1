"""Traffic rows, drift injection, pacing, feedback scheduling, counting and the summary."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops_assets.core import synthetic
from mlops_assets.core.sources import TargetSpec
from mlops_assets.core.synthetic import DriftSpec
from mlops_assets.core.traffic import replay_rows, synthetic_rows
from mlops_assets.core.traffic_drift import DriftInjection, inject_drift, parse_assignments
from mlops_assets.core.traffic_report import TrafficTally
from mlops_assets.core.traffic_run import (
    FeedbackQueue,
    TrafficSettings,
    batch_due_s,
    feedback_mask,
)


def test_parse_assignments() -> None:
    assert parse_assignments("V3=2.0, V14=-1.5", "--drift-shift") == {"V3": 2.0, "V14": -1.5}
    assert parse_assignments("", "--drift-shift") == {}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("V3", "item 'V3' is not COLUMN=NUMBER"),
        ("=2", "item '=2' is not COLUMN=NUMBER"),
        ("V3=abc", "'abc' is not a number"),
        ("V3=inf", "must be finite"),
        ("V3=1,V3=2", "column 'V3' appears twice"),
    ],
)
def test_parse_assignments_names_the_bad_item(text: str, message: str) -> None:
    with pytest.raises(ValueError, match="--drift-shift") as error:
        parse_assignments(text, "--drift-shift")
    assert message in str(error.value)


def test_synthetic_traffic_is_fresh_and_drifts_after_the_onset() -> None:
    drift = DriftInjection(DriftSpec(shift={"V3": 3.0}), after_rows=600)
    traffic = synthetic_rows(1000, seed=1042, drift=drift)
    assert traffic.rows == 1000 and traffic.drift_onset_row == 600
    assert not traffic.drifted[:600].any() and traffic.drifted[600:].all()
    assert synthetic.TARGET_COLUMN not in traffic.features
    assert set(np.unique(traffic.labels)) <= {0, 1}
    assert traffic.features["Time"].is_monotonic_increasing  # the drifted stretch comes later
    clean, drifted = traffic.features["V3"][:600], traffic.features["V3"][600:]
    assert drifted.mean() - clean.mean() > 2.0 * clean.std()
    training = synthetic.generate(1000, seed=42)
    assert not np.isclose(training["V1"].to_numpy(), traffic.features["V1"].to_numpy()).any()
    assert "drift: shift {'V3': 3.0} after row 600" in traffic.description


def test_synthetic_traffic_without_drift() -> None:
    traffic = synthetic_rows(50, seed=3)
    assert traffic.drift_onset_row is None and not traffic.drifted.any()
    with pytest.raises(ValueError, match="at least 1"):
        synthetic_rows(0, seed=3)


def tail_frame(rows: int = 400, seed: int = 0) -> pd.DataFrame:
    frame = synthetic.generate(rows, seed=seed, positive_rate=0.1)
    frame["Class"] = np.where(frame["Class"] == 1, "fraud", "ok")
    return frame


def test_replay_keeps_the_order_and_normalises_labels() -> None:
    tail = tail_frame()
    traffic = replay_rows(tail, TargetSpec("Class", "fraud"), "tail", rows=300)
    assert traffic.rows == 300
    assert traffic.features["Time"].tolist() == tail["Time"][:300].tolist()
    assert traffic.labels.tolist() == (tail["Class"][:300] == "fraud").astype(int).tolist()
    with pytest.raises(ValueError, match="tail: asked for 401 rows; the held-out tail has 400"):
        replay_rows(tail, TargetSpec("Class", "fraud"), "tail", rows=401)


def test_replay_injects_drift_from_the_onset_row() -> None:
    tail = tail_frame()
    drift = DriftInjection(DriftSpec(shift={"V14": -2.0}), after_rows=100)
    traffic = replay_rows(tail, TargetSpec("Class", "fraud"), "tail", drift=drift, seed=1)
    assert traffic.drift_onset_row == 100
    pd.testing.assert_frame_equal(
        traffic.features.iloc[:100], tail.drop(columns="Class").iloc[:100]
    )
    assert (traffic.features["V14"][100:] < tail["V14"][100:].to_numpy()).all()


def test_replay_accepts_a_window_of_one_class_and_names_label_problems() -> None:
    tail = tail_frame().assign(Class="ok")
    assert replay_rows(tail, TargetSpec("Class", "fraud"), "tail", rows=50).labels.sum() == 0
    numeric = tail_frame().assign(Class=1.0)
    with pytest.raises(ValueError, match="positive label 'fraud' is not a number"):
        replay_rows(numeric, TargetSpec("Class", "fraud"), "tail")
    gaps = tail_frame().assign(Class=lambda f: f["Class"].where(f.index != 4))
    with pytest.raises(ValueError, match=r"tail, column 'Class': 1 row\(s\) lack a label"):
        replay_rows(gaps, TargetSpec("Class", "fraud"), "tail")
    with pytest.raises(ValueError, match="column 'Label': target column not found"):
        replay_rows(tail, TargetSpec("Label", "fraud"), "tail")


def fraud_frame(rows: int = 4000) -> tuple[pd.DataFrame, np.ndarray]:
    frame = synthetic.generate(rows, seed=5, positive_rate=0.1)
    return frame.drop(columns="Class"), frame["Class"].to_numpy()


def test_shift_and_scale_in_standard_deviations() -> None:
    features, labels = fraud_frame()
    spec = DriftSpec(shift={"V3": 1.5, "Amount": 1.0}, scale={"V5": 2.0})
    drifted, same_labels = inject_drift(features, labels, spec, seed=0)
    assert (same_labels == labels).all()
    moved = (drifted["V3"].mean() - features["V3"].mean()) / features["V3"].std(ddof=0)
    assert moved == pytest.approx(1.5, abs=0.01)
    assert drifted["V5"].std() == pytest.approx(2 * features["V5"].std(), rel=0.01)
    assert np.median(drifted["Amount"]) > 2 * np.median(features["Amount"])
    pd.testing.assert_series_equal(drifted["V1"], features["V1"])


def test_pattern_change_moves_the_fraud_signature() -> None:
    features, labels = fraud_frame()
    drifted, _ = inject_drift(features, labels, DriftSpec(fraud_pattern_change=1.0), seed=0)
    fraud, legit = labels == 1, labels == 0
    spread = features[legit].std()
    before = (features["V14"][fraud].mean() - features["V14"][legit].mean()) / spread["V14"]
    after = (drifted["V14"][fraud].mean() - drifted["V14"][legit].mean()) / spread["V14"]
    assert before < -1.0 and abs(after) < 0.3  # the old signature is gone
    for name, shift in synthetic.CHANGED_PATTERN.items():  # a new one appeared elsewhere
        gap = (drifted[name][fraud].mean() - drifted[name][legit].mean()) / spread[name]
        assert np.sign(gap) == np.sign(shift) and abs(gap) > 0.5
    pd.testing.assert_frame_equal(drifted[legit], features[legit])


def test_positive_rate_resampling_keeps_the_order() -> None:
    features, labels = fraud_frame()
    drifted, new_labels = inject_drift(features, labels, DriftSpec(positive_rate=0.3), seed=0)
    assert len(drifted) == len(features)
    assert new_labels.mean() == pytest.approx(0.3, abs=0.001)
    assert drifted["Time"].is_monotonic_increasing


def test_inject_drift_names_missing_columns() -> None:
    frame = pd.DataFrame({"a": [1.0, 2.0]})
    with pytest.raises(ValueError, match=r"bank rows: drift needs column\(s\) \['V3'\]"):
        inject_drift(frame, np.array([0, 1]), DriftSpec(shift={"V3": 1.0}), 0, "bank rows")


def test_pattern_change_on_real_credit_card_rows(shared_data: Path) -> None:
    real = pd.read_csv(shared_data / "creditcard.csv.gz", nrows=60_000)
    labels = real.pop("Class").to_numpy()
    drifted, _ = inject_drift(real, labels, DriftSpec(fraud_pattern_change=1.0), seed=0)
    fraud, legit = labels == 1, labels == 0
    assert fraud.sum() > 50
    gaps = [
        (frame["V14"][fraud].mean() - frame["V14"][legit].mean()) / real["V14"].std()
        for frame in (real, drifted)
    ]
    assert gaps[0] < -4.0 and abs(gaps[1]) < 0.5  # the real signature on V14 is gone
    gap_v2 = (drifted["V2"][fraud].mean() - real["V2"][fraud].mean()) / real["V2"][legit].std()
    assert gap_v2 > 1.0


def test_slice_a_phase_and_project_to_the_model_columns() -> None:
    traffic = synthetic_rows(10, seed=2, drift=DriftInjection(DriftSpec(), after_rows=6))
    phase = traffic.slice(5, 10, "second phase")
    assert phase.rows == 5 and phase.description == "second phase"
    assert phase.drift_onset_row == 1 and phase.labels.tolist() == traffic.labels[5:].tolist()
    assert phase.features.index.tolist() == list(range(5))
    assert list(traffic.project(["V2", "Amount"]).features) == ["V2", "Amount"]
    with pytest.raises(ValueError, match=r"lack the model's input column\(s\) \['count'\]"):
        traffic.project(["V1", "count"])


def test_pacing_is_by_rows() -> None:
    assert [batch_due_s(index, 20, 100.0) for index in range(3)] == [0.0, 0.2, 0.4]
    with pytest.raises(ValueError, match="rate must be > 0"):
        batch_due_s(1, 20, 0.0)


def test_settings_name_every_bad_value() -> None:
    with pytest.raises(ValueError) as error:
        TrafficSettings(rate=0, batch_rows=0, feedback_share=1.5, feedback_delay_s=-1)
    for name in ("rate must be > 0", "batch_rows must be >= 1", "feedback_share", "delay"):
        assert name in str(error.value)
    assert TrafficSettings(rate=50, duration_s=2).planned_rows(1000) == 100
    assert TrafficSettings(rate=50).planned_rows(1000) == 1000


def test_feedback_share_is_seeded() -> None:
    mask = feedback_mask(10_000, 0.3, seed=1)
    assert mask.mean() == pytest.approx(0.3, abs=0.02)
    assert (mask == feedback_mask(10_000, 0.3, seed=1)).all()
    assert feedback_mask(5, 0.0, 1).sum() == 0 and feedback_mask(5, 1.0, 1).all()


def test_feedback_queue_releases_due_items_in_order() -> None:
    queue = FeedbackQueue()
    queue.add(5.0, [{"request_id": "b", "label": 1}])
    queue.add(1.0, [{"request_id": "a1", "label": 0}, {"request_id": "a2", "label": 1}])
    assert queue.next_due() == 1.0 and len(queue) == 3
    assert queue.due(0.5, limit=10) == []
    assert [item["request_id"] for item in queue.due(2.0, limit=1)] == ["a1"]
    assert [item["request_id"] for item in queue.due(9.0, limit=10)] == ["a2", "b"]
    assert queue.next_due() is None


def test_tally_counts_versions_drift_and_errors() -> None:
    tally = TrafficTally(rows_planned=6, target_rate=10.0)
    tally.sent(0, np.array([False, False]))
    tally.answered(0, 1, np.array([0, 1]), [0, 0], np.array([False, False]))
    tally.sent(2, np.array([False, True]))
    tally.failed(2, "HTTP 422", "row 0, 'V3': missing")
    tally.sent(4, np.array([True, True]))
    time.sleep(0.01)
    tally.answered(4, 2, np.array([1, 1]), [1, 0], np.array([True, True]))
    tally.feedback_sent += 3
    progress = tally.progress(waiting=1)
    assert "traffic 4/6 rows" in progress.line() and "v2" in progress.line()
    summary = tally.summary(unsent=1)
    assert (summary.rows_sent, summary.rows_answered, summary.rows_failed) == (6, 4, 2)
    assert summary.errors == {"HTTP 422": 2}
    assert summary.error_samples == ("HTTP 422: row 0, 'V3': missing",)
    assert summary.drift_onset_row == 3 and summary.drift_onset_at is not None
    assert summary.drifted_rows_answered == 2 and summary.positives_answered == 3
    assert summary.predicted_positives == 1 and summary.positives_caught == 1
    assert summary.versions == {1: 2, 2: 2}
    assert [seen.version for seen in summary.first_seen] == [1, 2]
    assert summary.first_seen[1].row == 4 and summary.last_version == 2
    text = "\n".join(summary.lines())
    assert "versions: v1: 2, v2: 2" in text and "drift: from row 3" in text
    assert "feedback: 3 labels sent, 0 failed, 1 unsent" in text
