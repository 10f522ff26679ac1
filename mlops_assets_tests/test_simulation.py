"""The simulator's HTTP side against an in-memory fake server (httpx mock transport)."""

from __future__ import annotations

import asyncio
import time

import httpx
import orjson
import pytest

from mlops_assets.core.sources import SyntheticSource
from mlops_assets.core.synthetic import DriftSpec
from mlops_assets.core.traffic import synthetic_rows
from mlops_assets.core.traffic_drift import DriftInjection
from mlops_assets.core.traffic_run import TrafficSettings
from mlops_assets.simulation import SimulationError, simulate
from mlops_assets.traffic_setup import drift_from_options, traffic_for_source

COLUMNS = ["V1", "V2", "V14", "Amount"]


class FakeServer:
    """Answers like ``mlops serve``: not ready at first, version 2 after ``swap_after`` calls."""

    def __init__(self, swap_after: int = 5, refuse: str | None = None) -> None:
        self.ready_calls = 0
        self.predict_calls = 0
        self.swap_after = swap_after
        self.refuse = refuse
        self.bodies: list[list[dict]] = []
        self.answered_at: dict[str, float] = {}
        self.feedback: list[tuple[float, dict]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/ready":
            self.ready_calls += 1
            if self.ready_calls < 3:
                return httpx.Response(503, json={"ready": False, "reason": "loading"})
            return httpx.Response(200, json={"ready": True, "version": 1})
        if path == "/model":
            columns = [{"name": name, "kind": "number"} for name in COLUMNS]
            return httpx.Response(200, json={"version": 1, "primary": {"columns": columns}})
        if path == "/predict":
            return self.predict(request)
        if path == "/feedback":
            for item in orjson.loads(request.content):
                self.feedback.append((time.monotonic(), item))
            return httpx.Response(200, json={"accepted": 1})
        return httpx.Response(404)

    def predict(self, request: httpx.Request) -> httpx.Response:
        rows = orjson.loads(request.content)
        batch = request.headers["x-request-id"]
        if self.refuse and batch.endswith(self.refuse):
            return httpx.Response(422, json={"error": "row 0, 'V1': must be a number"})
        self.predict_calls += 1
        self.bodies.append(rows)
        version = 1 if self.predict_calls <= self.swap_after else 2
        predictions = []
        for index, _row in enumerate(rows):
            rid = f"{batch}-{index}"
            self.answered_at[rid] = time.monotonic()
            predictions.append(
                {"request_id": rid, "label": 0, "probability": 0.1, "model_version": version}
            )
        return httpx.Response(200, json={"model_version": version, "predictions": predictions})


def run(server: FakeServer, rows, settings: TrafficSettings, **kwargs):
    progress = []
    summary = asyncio.run(
        simulate(
            "http://fake",
            rows,
            settings,
            on_progress=progress.append,
            ready_timeout_s=5,
            transport=httpx.MockTransport(server),
            **kwargs,
        )
    )
    return summary, progress


def test_paced_traffic_feedback_and_version_swap() -> None:
    drift = DriftInjection(DriftSpec(shift={"V14": -2.0}), after_rows=100)
    rows = synthetic_rows(200, seed=7, positive_rate=0.2, drift=drift)
    server = FakeServer(swap_after=5, refuse="-3")
    settings = TrafficSettings(
        rate=400.0,
        batch_rows=20,
        concurrency=2,
        feedback_share=0.5,
        feedback_delay_s=0.3,
        progress_interval_s=0.1,
    )
    summary, progress = run(server, rows, settings)
    assert server.ready_calls >= 3  # waited through the 503s
    assert all(list(body[0]) == COLUMNS for body in server.bodies)  # only the model's columns
    assert summary.rows_sent == 200 and summary.rows_answered == 180
    assert summary.errors == {"HTTP 422": 20} and "must be a number" in summary.error_samples[0]
    assert summary.seconds >= 180 / 400  # paced: 10 batches at 20 rows / 0.05 s
    assert summary.versions == {1: 100, 2: 80}
    assert [seen.version for seen in summary.first_seen] == [1, 2]
    assert summary.drift_onset_row == 100 and summary.drifted_rows_answered == 100
    assert summary.feedback_sent == len(server.feedback) and summary.feedback_unsent == 0
    assert 60 <= summary.feedback_sent <= 120  # about half of the 180 answered rows
    truth = dict(zip(range(200), rows.labels, strict=True))
    for sent_at, item in server.feedback:
        batch, row = item["request_id"].rsplit("-", 2)[-2:]
        assert item["label"] == truth[int(batch) * 20 + int(row)]
        assert sent_at - server.answered_at[item["request_id"]] >= 0.29
    assert progress and progress[-1].rows_answered == 180


def test_duration_caps_the_rows() -> None:
    rows = synthetic_rows(1000, seed=7)
    summary, _ = run(
        FakeServer(), rows, TrafficSettings(rate=200.0, duration_s=0.5, feedback_delay_s=0)
    )
    assert summary.rows_planned == summary.rows_sent == 100


def test_rows_without_the_model_columns_are_refused() -> None:
    rows = synthetic_rows(10, seed=7)
    rows = type(rows)(rows.features.drop(columns="V14"), rows.labels, rows.drifted, "x")
    with pytest.raises(SimulationError, match=r"lack the model's input column\(s\) \['V14'\]"):
        run(FakeServer(), rows, TrafficSettings())


def test_a_server_that_never_gets_ready() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, json={"reason": "champion alias not set"})

    with pytest.raises(SimulationError, match="not ready after 1 s: champion alias not set"):
        asyncio.run(
            simulate(
                "http://fake",
                synthetic_rows(5, seed=1),
                TrafficSettings(),
                ready_timeout_s=1,
                transport=httpx.MockTransport(handler),
            )
        )


def test_synthetic_source_traffic_uses_another_seed() -> None:
    source = SyntheticSource(rows=100, seed=42, positive_rate=0.05)
    rows = traffic_for_source(source, 50)
    assert "seed 1042" in rows.description and rows.rows == 50
    with pytest.raises(ValueError, match="equals the training data's synthetic seed"):
        traffic_for_source(source, 50, seed=42)
    with pytest.raises(ValueError, match="needs a row count"):
        traffic_for_source(source, None)


def test_drift_options() -> None:
    assert drift_from_options({}) is None
    drift = drift_from_options(
        {"drift_shift": "V3=2", "fraud_pattern_change": 0.8, "drift_after": 10}
    )
    assert drift.after_rows == 10 and drift.spec.shift == {"V3": 2.0}
    with pytest.raises(ValueError, match=r"unknown column\(s\) \['Nope'\]"):
        drift_from_options({"drift_shift": "Nope=1"})
