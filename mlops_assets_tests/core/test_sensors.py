"""Sensor decisions: thresholds, run keys, cooldown, in-progress suppression, cursors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mlops_assets.core.sensors import (
    DriftCursor,
    MonitoringSignal,
    RetrainPolicy,
    crossings,
    decide_retraining,
)
from mlops_assets.core.watchers import (
    LogCursor,
    SourceCursor,
    decide_monitoring,
    decide_source,
    file_fingerprint,
)

POLICY = RetrainPolicy(drift_share=0.5, domain_auc=0.8, performance_drop=0.2, cooldown_s=60)
NOW = 1_700_000_000.0


def drift(storage_id: int, share: float, auc: float = 0.5, enough: bool = True):
    return MonitoringSignal("drift_report", storage_id, NOW - 5, enough, share, auc, None, 3)


def perf(storage_id: int, drop: float, enough: bool = True):
    return MonitoringSignal("model_performance", storage_id, NOW - 5, enough, None, None, drop, 3)


def test_signal_from_metadata_and_crossings() -> None:
    metadata = {"enough_data": True, "drift_share": 0.6, "domain_auc": 0.9, "champion_version": 4}
    signal = MonitoringSignal.from_metadata("drift_report", 17, NOW, metadata)
    assert (signal.storage_id, signal.drift_share, signal.model_version) == (17, 0.6, 4)
    assert signal.performance_drop is None
    assert crossings(signal, POLICY) == [
        "drift share 0.600 >= 0.5",
        "domain classifier AUC 0.900 >= 0.8",
    ]
    assert crossings(drift(1, 0.9, enough=False), POLICY) == []  # no verdict, no trigger
    assert crossings(perf(2, 0.25), POLICY) == ["performance drop 0.250 >= 0.2"]


def test_no_new_signal_skips_and_keeps_the_cursor() -> None:
    cursor = DriftCursor(last_storage_id=10)
    decision = decide_retraining([drift(9, 0.9), drift(10, 0.9)], cursor, POLICY, NOW)
    assert not decision.requested and "after storage id 10" in decision.reason
    assert DriftCursor.from_json(decision.cursor) == cursor


def test_below_thresholds_skips_with_figures_and_advances() -> None:
    decision = decide_retraining([drift(3, 0.2, 0.6), perf(4, 0.05)], DriftCursor(), POLICY, NOW)
    assert not decision.requested
    assert (
        "latest model_performance (storage id 4): performance drop 0.050 < 0.2" in decision.reason
    )
    assert DriftCursor.from_json(decision.cursor).last_storage_id == 4
    no_verdict = decide_retraining([drift(5, 0.0, enough=False)], DriftCursor(4), POLICY, NOW)
    assert "no verdict (not enough data)" in no_verdict.reason


def test_crossing_requests_once_keyed_by_the_newest_crossing_signal() -> None:
    signals = [drift(3, 0.6), perf(5, 0.3), drift(6, 0.1)]
    decision = decide_retraining(signals, DriftCursor(), POLICY, NOW)
    assert decision.requested and decision.run_key == "drift-5"
    assert "performance drop 0.300 >= 0.2" in decision.reason
    cursor = DriftCursor.from_json(decision.cursor)
    assert cursor == DriftCursor(last_storage_id=6, last_trigger_at=NOW, last_run_key="drift-5")
    # the same signals again (e.g. a second tick) never repeat the trigger
    again = decide_retraining(signals, cursor, POLICY, NOW + 1000)
    assert not again.requested


def test_cooldown_suppresses_and_consumes_then_lets_the_next_signal_through() -> None:
    after_trigger = DriftCursor(last_storage_id=6, last_trigger_at=NOW, last_run_key="drift-5")
    cooling = decide_retraining([drift(8, 0.9)], after_trigger, POLICY, NOW + 20)
    assert not cooling.requested and "in cooldown: drift-5 was requested 20 s ago" in cooling.reason
    assert "40 s of 60 s left" in cooling.reason
    cursor = DriftCursor.from_json(cooling.cursor)
    assert cursor.last_storage_id == 8 and cursor.last_trigger_at == NOW
    later = decide_retraining([drift(8, 0.9), drift(9, 0.9)], cursor, POLICY, NOW + 61)
    assert later.run_key == "drift-9"


def test_in_progress_run_suppresses_naming_it() -> None:
    decision = decide_retraining([drift(3, 0.9)], DriftCursor(), POLICY, NOW, ["run-abc"])
    assert not decision.requested
    assert "a retraining_job run is already queued or running (run-abc)" in decision.reason
    assert DriftCursor.from_json(decision.cursor).last_trigger_at is None


def test_restart_with_the_stored_cursor_neither_misses_nor_repeats() -> None:
    first = decide_retraining([drift(3, 0.9)], DriftCursor(), POLICY, NOW)
    stored = first.cursor  # what Dagster keeps while the daemon is down
    # signals that arrived meanwhile: one old (already triggered), one new
    restarted = decide_retraining(
        [drift(3, 0.9), drift(7, 0.95)], DriftCursor.from_json(stored), POLICY, NOW + 120
    )
    assert restarted.run_key == "drift-7"


def test_cursor_json_round_trip_and_clear_errors() -> None:
    cursor = DriftCursor(12, NOW, "drift-12")
    assert DriftCursor.from_json(cursor.to_json()) == cursor
    assert json.loads(cursor.to_json())["last_storage_id"] == 12
    assert DriftCursor.from_json(None) == DriftCursor() == DriftCursor.from_json("")
    with pytest.raises(ValueError, match="DriftCursor: stored cursor 'nope' is not JSON"):
        DriftCursor.from_json("nope")
    with pytest.raises(ValueError, match="unknown fields \\['colour'\\]"):
        DriftCursor.from_json('{"colour": 1}')
    with pytest.raises(ValueError, match="not a JSON object"):
        LogCursor.from_json("[1]")


def test_monitoring_waits_for_rows_or_time_then_requests_by_version() -> None:
    assert "does not exist yet" in decide_monitoring(None, 0, LogCursor(), 100, 60, NOW).reason
    waiting = decide_monitoring(2, 40, LogCursor(), 100, 60, NOW)
    assert (
        not waiting.requested
        and "40 new row(s)" in waiting.reason
        and "waiting for 100" in waiting.reason
    )
    pending = LogCursor.from_json(waiting.cursor)
    assert pending.pending_since == NOW and pending.version == -1
    enough = decide_monitoring(3, 150, pending, 100, 60, NOW + 5)
    assert enough.run_key == "inference_log-v3"
    requested = LogCursor.from_json(enough.cursor)
    assert (requested.version, requested.rows, requested.requested_at) == (3, 150, NOW + 5)
    assert "still at version 3" in decide_monitoring(3, 150, requested, 100, 60, NOW + 6).reason
    few = decide_monitoring(4, 160, requested, 100, 60, NOW + 30)
    assert not few.requested and "35 s more" in few.reason
    overdue = decide_monitoring(4, 160, requested, 100, 60, NOW + 66)
    assert overdue.run_key == "inference_log-v4"  # any new row once max_wait_s has passed
    busy = decide_monitoring(4, 500, requested, 100, 60, NOW + 66, ["run-9"])
    assert (
        not busy.requested
        and "monitoring_job run is already queued or running (run-9)" in busy.reason
    )
    assert LogCursor.from_json(busy.cursor) == requested  # retried on the next tick


def test_source_first_look_records_then_changes_request(tmp_path: Path) -> None:
    source = tmp_path / "data.csv"
    assert file_fingerprint(source) is None
    missing = decide_source(str(source), None, SourceCursor())
    assert not missing.requested and "does not exist" in missing.reason
    source.write_text("a,b\n1,2\n")
    first = decide_source(str(source), file_fingerprint(source), SourceCursor())
    assert not first.requested and "first look" in first.reason
    cursor = SourceCursor.from_json(first.cursor)
    same = decide_source(str(source), file_fingerprint(source), cursor)
    assert not same.requested and "unchanged" in same.reason
    source.write_text("a,b\n1,2\n3,4\n")
    os.utime(source, ns=(1, 2))
    changed = decide_source(str(source), file_fingerprint(source), cursor)
    assert changed.requested and changed.run_key == f"source-{file_fingerprint(source)}"
    assert "main_job requested" in changed.reason
    assert file_fingerprint(source, "sha256").startswith("sha256:")
    with pytest.raises(ValueError, match="fingerprint method 'md5'"):
        file_fingerprint(source, "md5")  # type: ignore[arg-type]
