"""Child runs written off the trial's critical path: order, content, failures, close."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest

from mlops_assets.core.trials import ChildRunWriter, TrialOutcome

PARENT = SimpleNamespace(info=SimpleNamespace(run_id="parent", experiment_id="7"))


class FakeClient:
    """Records the MLflow calls; ``create_run`` waits for ``gate`` and fails on ``fail_at``."""

    def __init__(self, fail_at: int = 0) -> None:
        self.gate = threading.Event()
        self.calls: list[tuple] = []
        self.fail_at = fail_at
        self.created = 0

    def create_run(self, experiment_id: str, tags: dict) -> SimpleNamespace:
        self.gate.wait(10)
        self.created += 1
        if self.created == self.fail_at:
            raise ConnectionError("tracking store went away")
        run_id = f"child-{self.created}"
        self.calls.append(("create", experiment_id, dict(tags)))
        return SimpleNamespace(info=SimpleNamespace(run_id=run_id))

    def log_batch(self, run_id: str, metrics, params, tags) -> None:
        metrics = {metric.key: metric.value for metric in metrics}
        params = {param.key: param.value for param in params}
        self.calls.append(("batch", run_id, metrics, params, [(t.key, t.value) for t in tags]))

    def set_terminated(self, run_id: str, status: str) -> None:
        self.calls.append(("end", run_id, status))


def writer_with(client: FakeClient, seen: list) -> ChildRunWriter:
    writer = ChildRunWriter(PARENT, lambda outcome, best, budget: seen.append(outcome), 3)
    writer.client = client
    return writer


OK = TrialOutcome(1, {"max_depth": 3}, True, {"valid_kappa": 0.5, "fit_seconds": 1.0})
FAILED = TrialOutcome(2, {"max_depth": 9}, False, error="ValueError: bad")


def test_trials_are_reported_before_their_runs_are_written_then_written_in_order() -> None:
    client, seen = FakeClient(), []
    writer = writer_with(client, seen)
    writer(OK)
    writer(FAILED)
    assert seen == [OK, FAILED] and client.calls == []  # the store has not answered yet
    client.gate.set()
    writer.close()
    assert client.calls == [
        ("create", "7", {"mlflow.parentRunId": "parent", "mlflow.runName": "trial-001"}),
        ("batch", "child-1", {"valid_kappa": 0.5, "fit_seconds": 1.0}, {"max_depth": "3"}, []),
        ("end", "child-1", "FINISHED"),
        ("create", "7", {"mlflow.parentRunId": "parent", "mlflow.runName": "trial-002"}),
        ("batch", "child-2", {}, {"max_depth": "9"}, [("error", "ValueError: bad")]),
        ("end", "child-2", "FAILED"),
    ]
    assert writer.best == OK


def test_a_failed_write_surfaces_at_the_next_trial_and_at_close() -> None:
    client, seen = FakeClient(fail_at=1), []
    client.gate.set()
    writer = writer_with(client, seen)
    writer(OK)
    writer._pending[0].exception(10)  # the first write has failed by now
    with pytest.raises(ConnectionError, match="tracking store went away"):
        writer(FAILED)
    client2 = FakeClient(fail_at=1)
    client2.gate.set()
    other = writer_with(client2, [])
    other(OK)
    with pytest.raises(ConnectionError, match="tracking store went away"):
        other.close()


def test_quiet_close_waits_for_every_write_and_raises_nothing() -> None:
    client = FakeClient(fail_at=1)
    writer = writer_with(client, [])
    writer(OK)
    writer(FAILED)
    client.gate.set()
    writer.close(quiet=True)
    assert [call[0] for call in client.calls] == ["create", "batch", "end"]  # trial 2 written
