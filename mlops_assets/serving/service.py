"""The request handlers behind ``/predict``, ``/invocations`` and ``/feedback``, free of HTTP.

One call: pick the version for the request id (canary split), parse and validate once,
score on the compiled path, apply the threshold, make the log record durable, and only then
build the answer. Bad input comes back as a 4xx :class:`Reply`; a full log or a log that
cannot write comes back as 503 with ``Retry-After``; nothing raises.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from dataclasses import dataclass, field

import numpy as np
import orjson

from mlops_assets.core.inference_log import encode_feedback, encode_prediction, row_ids
from mlops_assets.serving.formats import (
    RequestError,
    feedback_items,
    invocation_rows,
    parse_json,
    predict_rows,
    refuse,
    request_id,
)
from mlops_assets.serving.log_writer import InferenceLog, LogSaturatedError
from mlops_assets.serving.metrics import ServingMetrics
from mlops_assets.serving.model_holder import LoadedModel, ModelHolder
from mlops_assets.serving.validation import FeatureBatch
from mlops_assets.serving.wal import WalError

logger = logging.getLogger(__name__)
JSON = "application/json"


@dataclass(frozen=True)
class Reply:
    """An HTTP answer: status, JSON body, extra headers."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def encode_record(
    model: LoadedModel,
    batch_id: str,
    batch: FeatureBatch,
    probabilities: np.ndarray,
    labels: np.ndarray,
    latency_ms: float,
) -> bytes:
    """The write-ahead-log record of one answered request (see ``core.inference_log``)."""
    stamp = (model.log_signature, batch_id, time.time_ns() // 1000, latency_ms)
    if batch.matrix is not None:
        return encode_prediction(*stamp, batch.matrix, probabilities, labels)
    assert batch.columns is not None
    features = [batch.columns[name] for name in model.validator.contract.names]
    return encode_prediction(*stamp, features, probabilities.tolist(), labels.tolist())


class PredictionService:
    """Scores requests with the holder's current state and logs them durably."""

    def __init__(
        self,
        holder: ModelHolder,
        log: InferenceLog | None,
        metrics: ServingMetrics,
        max_rows: int,
        retry_after_s: float = 1.0,
    ) -> None:
        """Wire the parts together."""
        self.holder = holder
        self.log = log
        self.metrics = metrics
        self.max_rows = max_rows
        self.retry_after = str(max(1, math.ceil(retry_after_s)))

    def _unavailable(self, problem: str) -> RequestError:
        error = refuse(problem, status=503)
        error.headers["Retry-After"] = self.retry_after
        return error

    async def _durable(self, payload: bytes) -> None:
        if self.log is None:
            return
        try:
            await self.log.append(payload)
        except LogSaturatedError as error:
            raise self._unavailable(str(error)) from None
        except WalError as error:
            logger.error("inference log cannot write: %s", error)
            raise self._unavailable("inference log is unavailable; try again later") from None

    async def predict(self, body: bytes, header_id: str | None, mlflow_format: bool) -> Reply:
        """Answer ``/predict`` (``mlflow_format`` False) or ``/invocations`` (True)."""
        started = time.perf_counter()
        try:
            batch_id = request_id(header_id, uuid.uuid4().hex)
            model = self.holder.state.pick(batch_id)
            if model is None:
                raise self._unavailable(self.holder.waiting_reason or "no model is loaded yet")
            if self.log is not None and self.log.saturated:
                raise self._unavailable("inference log backlog is full; try again later")
            payload = parse_json(body)
            rows = invocation_rows(payload) if mlflow_format else predict_rows(payload)
            batch = model.validator.validate(rows)
            try:
                probabilities = model.scorer.probabilities(batch)
            except Exception as error:  # noqa: BLE001 - e.g. a category the encoder never saw
                raise refuse(
                    f"the model could not score these rows: {error}", field="body"
                ) from None
            labels = model.scorer.labels(probabilities)
            if self.log is not None:
                latency_ms = (time.perf_counter() - started) * 1000.0
                await self._durable(
                    encode_record(model, batch_id, batch, probabilities, labels, latency_ms)
                )
        except RequestError as error:
            return Reply(error.status, error.body(), error.headers)
        positives = int(labels.sum())
        self.metrics.count_predictions(model.version, positives, batch.rows)
        headers = {"X-Request-ID": batch_id, "X-Model-Version": str(model.version)}
        if mlflow_format:
            predictions = [
                {"label": label, "probability": probability}
                for label, probability in zip(labels.tolist(), probabilities.tolist(), strict=True)
            ]
            return Reply(200, orjson.dumps({"predictions": predictions}), headers)
        predictions = [
            {
                "request_id": rid,
                "label": label,
                "probability": probability,
                "model_version": model.version,
            }
            for rid, label, probability in zip(
                row_ids(batch_id, batch.rows), labels.tolist(), probabilities.tolist(), strict=True
            )
        ]
        answer = {
            "request_id": batch_id,
            "model_version": model.version,
            "predictions": predictions,
        }
        return Reply(200, orjson.dumps(answer), headers)

    async def feedback(self, body: bytes) -> Reply:
        """Answer ``/feedback``: durable late labels joinable on request id."""
        try:
            items = feedback_items(parse_json(body), self.max_rows)
            if self.log is None:
                raise refuse("inference logging is disabled on this server", status=409)
            await self._durable(encode_feedback(items, time.time_ns() // 1000))
        except RequestError as error:
            return Reply(error.status, error.body(), error.headers)
        return Reply(200, orjson.dumps({"accepted": len(items)}))
