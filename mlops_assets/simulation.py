"""The traffic simulator's HTTP side: paced ``/predict`` requests and late ``/feedback`` labels.

:func:`simulate` waits for the server to be ready, reads the served model's input columns
from ``/model``, then sends the rows in batches at the target rate with bounded
concurrency, queues the true labels of a share of the answered rows and sends them once
their delay has passed. Progress goes to a callback; the result is a frozen
:class:`~mlops_assets.core.traffic_run.TrafficSummary`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import uuid
from collections.abc import Callable

import httpx
import numpy as np
import orjson

from mlops_assets.core.traffic import TrafficRows
from mlops_assets.core.traffic_report import TrafficProgress, TrafficSummary, TrafficTally
from mlops_assets.core.traffic_run import (
    FeedbackQueue,
    TrafficSettings,
    batch_due_s,
    feedback_mask,
)

LOGGER = logging.getLogger(__name__)
FEEDBACK_BATCH = 500
HEADERS = {"Content-Type": "application/json"}


class SimulationError(RuntimeError):
    """The simulation could not start (server not ready, model columns not in the rows)."""


async def wait_ready(client: httpx.AsyncClient, timeout_s: float) -> None:
    """Wait until ``/ready`` answers 200.

    Raises:
        SimulationError: Not ready within ``timeout_s``, with the server's last reason.
    """
    deadline, reason = time.monotonic() + timeout_s, "no answer"
    while time.monotonic() < deadline:
        try:
            response = await client.get("/ready")
            if response.status_code == 200:
                return
            reason = response.json().get("reason", response.text[:200])
        except (httpx.HTTPError, ValueError) as error:
            reason = f"{type(error).__name__}: {error}"
        await asyncio.sleep(0.25)
    raise SimulationError(f"{client.base_url} not ready after {timeout_s:.0f} s: {reason}")


async def model_columns(client: httpx.AsyncClient) -> tuple[list[str], int | None]:
    """The served model's input columns and version, from ``/model``."""
    info = (await client.get("/model")).json()
    columns = [column["name"] for column in (info.get("primary") or {}).get("columns", [])]
    if not columns:
        raise SimulationError(f"{client.base_url}/model names no input columns: {info}")
    return columns, info.get("version")


class _Run:
    """One simulation: the producer, the request workers, the feedback sender."""

    def __init__(self, client: httpx.AsyncClient, rows: TrafficRows, settings: TrafficSettings):
        self.client, self.rows, self.settings = client, rows, settings
        planned = settings.planned_rows(rows.rows)
        self.tally = TrafficTally(rows_planned=planned, target_rate=settings.rate)
        self.batches = math.ceil(planned / settings.batch_rows)
        self.planned = planned
        self.values = rows.features.to_numpy(dtype=object)
        self.columns = list(rows.features.columns)
        self.labelled = feedback_mask(planned, settings.feedback_share, settings.seed)
        self.feedback = FeedbackQueue()
        self.prefix = f"sim{uuid.uuid4().hex[:10]}"
        self.sending_done = asyncio.Event()

    def _body(self, start: int, stop: int) -> bytes:
        records = [dict(zip(self.columns, row, strict=True)) for row in self.values[start:stop]]
        return orjson.dumps(records, option=orjson.OPT_SERIALIZE_NUMPY)

    async def produce(self, queue: asyncio.Queue) -> None:
        started = time.monotonic()
        for index in range(self.batches):
            delay = started + batch_due_s(index, self.settings.batch_rows, self.settings.rate)
            await asyncio.sleep(max(0.0, delay - time.monotonic()))
            await queue.put(index)
        for _ in range(self.settings.concurrency):
            await queue.put(None)

    async def work(self, queue: asyncio.Queue) -> None:
        while (index := await queue.get()) is not None:
            start = index * self.settings.batch_rows
            stop = min(start + self.settings.batch_rows, self.planned)
            await self.send(index, start, stop)

    async def send(self, index: int, start: int, stop: int) -> None:
        drifted = self.rows.drifted[start:stop]
        self.tally.sent(start, drifted)
        headers = {**HEADERS, "X-Request-ID": f"{self.prefix}-{index}"}
        try:
            response = await self.client.post(
                "/predict", content=self._body(start, stop), headers=headers
            )
        except httpx.HTTPError as error:
            self.tally.failed(stop - start, type(error).__name__, str(error) or repr(error))
            return
        if response.status_code != 200:
            message = response.text[:300]
            self.tally.failed(stop - start, f"HTTP {response.status_code}", message)
            return
        answer = orjson.loads(response.content)
        predictions = answer["predictions"]
        truth = self.rows.labels[start:stop]
        predicted = [int(item["label"]) for item in predictions]
        self.tally.answered(start, int(answer["model_version"]), truth, predicted, drifted)
        chosen = np.flatnonzero(self.labelled[start:stop])
        items = [
            {"request_id": predictions[offset]["request_id"], "label": int(truth[offset])}
            for offset in chosen
        ]
        self.feedback.add(time.monotonic() + self.settings.feedback_delay_s, items)

    async def send_feedback(self) -> None:
        while True:
            due = self.feedback.due(time.monotonic(), FEEDBACK_BATCH)
            if due:
                await self._post_feedback(due)
                continue
            if self.sending_done.is_set() and not len(self.feedback):
                return
            next_due = self.feedback.next_due()
            wait = 0.2 if next_due is None else min(0.2, max(0.0, next_due - time.monotonic()))
            await asyncio.sleep(wait)

    async def _post_feedback(self, items: list[dict]) -> None:
        try:
            response = await self.client.post("/feedback", content=orjson.dumps(items))
        except httpx.HTTPError as error:
            self.tally.feedback_failed += len(items)
            self.tally.failed(0, f"feedback {type(error).__name__}", str(error) or repr(error))
            return
        if response.status_code == 200:
            self.tally.feedback_sent += len(items)
        else:
            self.tally.feedback_failed += len(items)
            self.tally.failed(0, f"feedback HTTP {response.status_code}", response.text[:300])

    async def report(self, on_progress: Callable[[TrafficProgress], None]) -> None:
        while True:
            await asyncio.sleep(self.settings.progress_interval_s)
            on_progress(self.tally.progress(len(self.feedback)))


async def simulate(
    url: str,
    rows: TrafficRows,
    settings: TrafficSettings,
    on_progress: Callable[[TrafficProgress], None] | None = None,
    ready_timeout_s: float = 60.0,
    wait_for_feedback: bool = True,
    transport: httpx.AsyncBaseTransport | None = None,
) -> TrafficSummary:
    """Send ``rows`` to the server at ``url`` as paced production traffic.

    Args:
        url: Base URL of ``mlops serve``.
        rows: The traffic (features, true labels, drift marks).
        settings: Rate, batch size, concurrency, feedback share and delay, duration.
        on_progress: Called with a snapshot every ``settings.progress_interval_s`` seconds.
        ready_timeout_s: How long to wait for the server to serve a model.
        wait_for_feedback: Wait for the last labels' delay to pass and send them.
        transport: httpx transport (tests pass a mock); the network when None.

    Returns:
        The summary of the run.

    Raises:
        SimulationError: The server is not ready in time or the rows lack its columns.
    """
    limits = httpx.Limits(max_connections=settings.concurrency + 2)
    async with httpx.AsyncClient(
        base_url=url,
        timeout=settings.timeout_s,
        limits=limits,
        headers=HEADERS,
        transport=transport,
    ) as client:
        await wait_ready(client, ready_timeout_s)
        columns, version = await model_columns(client)
        try:
            projected = rows.project(columns)
        except ValueError as error:
            raise SimulationError(f"{url} serves version {version}: {error}") from None
        run = _Run(client, projected, settings)
        queue: asyncio.Queue = asyncio.Queue(maxsize=2 * settings.concurrency)
        reporter = asyncio.create_task(run.report(on_progress)) if on_progress else None
        feedback = asyncio.create_task(run.send_feedback())
        try:
            await asyncio.gather(
                run.produce(queue), *(run.work(queue) for _ in range(settings.concurrency))
            )
            if not wait_for_feedback:
                feedback.cancel()
            run.sending_done.set()
            await asyncio.gather(feedback, return_exceptions=not wait_for_feedback)
        finally:
            for task in (reporter, feedback):
                if task is not None and not task.done():
                    task.cancel()
        if on_progress:
            on_progress(run.tally.progress(len(run.feedback)))
        return run.tally.summary(unsent=len(run.feedback))


def run_simulation(
    url: str,
    rows: TrafficRows,
    settings: TrafficSettings,
    on_progress: Callable[[TrafficProgress], None] | None = None,
    ready_timeout_s: float = 60.0,
    wait_for_feedback: bool = True,
) -> TrafficSummary:
    """Blocking :func:`simulate` (runs its own event loop)."""
    return asyncio.run(
        simulate(url, rows, settings, on_progress, ready_timeout_s, wait_for_feedback)
    )
