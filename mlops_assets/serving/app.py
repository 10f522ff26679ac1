"""The FastAPI app: routes, admin auth, startup and graceful shutdown.

The scoring routes read the raw body and answer orjson bytes (no pydantic body model on the
hot path); their request shapes are documented in the OpenAPI schema at ``/docs``. Startup
opens the inference log (recovering the write-ahead log) and starts the registry poller,
which loads the champion as soon as the alias exists; until then ``/ready`` answers 503.
Shutdown (SIGTERM / SIGINT) lets uvicorn finish requests in flight, then drains the log.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from contextlib import asynccontextmanager
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from mlops_assets.serving.fast_path import read_limited
from mlops_assets.serving.formats import MLFLOW_FORMATS
from mlops_assets.serving.log_writer import InferenceLog
from mlops_assets.serving.metrics import MetricsMiddleware, ServingMetrics
from mlops_assets.serving.model_holder import ModelHolder
from mlops_assets.serving.service import JSON, PredictionService, Reply
from mlops_assets.serving.settings import ServeSettings

logger = logging.getLogger(__name__)
_ROW = {"type": "object", "additionalProperties": {"type": ["number", "string", "boolean", "null"]}}
_ROWS = {"oneOf": [_ROW, {"type": "array", "items": _ROW}]}
_MLFLOW = {
    "type": "object",
    "description": f"Exactly one of {', '.join(MLFLOW_FORMATS)} (MLflow scoring formats).",
    "properties": {
        "dataframe_split": {
            "type": "object",
            "properties": {
                "columns": {"type": "array", "items": {"type": "string"}},
                "data": {"type": "array", "items": {"type": "array"}},
            },
        },
        "dataframe_records": {"type": "array", "items": _ROW},
        "instances": {"type": "array", "items": _ROW},
        "inputs": {"oneOf": [{"type": "array", "items": _ROW}, {"type": "object"}]},
    },
}
_FEEDBACK_ITEM = {
    "type": "object",
    "required": ["request_id", "label"],
    "properties": {"request_id": {"type": "string"}, "label": {"type": "integer", "enum": [0, 1]}},
}


def _body_doc(schema: dict) -> dict:
    return {"requestBody": {"required": True, "content": {JSON: {"schema": schema}}}}


def _json(status: int, payload: Any, headers: dict | None = None) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type=JSON, headers=headers)


def _reply(reply: Reply) -> Response:
    return Response(reply.body, status_code=reply.status, media_type=JSON, headers=reply.headers)


def create_app(settings: ServeSettings, holder: ModelHolder | None = None) -> FastAPI:
    """Build the app; the inference log and the poller start with the app's lifespan.

    Args:
        settings: Server settings.
        holder: A prepared holder (tests); built from the settings when None.
    """
    if holder is None:
        from mlflow import MlflowClient

        holder = ModelHolder(
            MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.registry_uri),
            settings.model_name,
            settings.alias,
            settings.canary_alias,
            settings.canary_fraction,
            settings.unexpected_columns,
            settings.max_rows,
            settings.model_threads,
        )
    parts: dict[str, InferenceLog | None] = {"log": None}
    metrics = ServingMetrics(holder, lambda: parts["log"])
    service = PredictionService(
        holder, None, metrics, settings.max_rows, settings.log_flush_interval_s
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        import mlflow

        mlflow.set_tracking_uri(settings.tracking_uri)
        mlflow.set_registry_uri(settings.registry_uri or settings.tracking_uri)
        if settings.log_enabled:
            log = InferenceLog(
                settings.wal_dir,
                settings.delta_root,
                settings.predictions_table,
                settings.feedback_table,
                segment_bytes=settings.wal_segment_bytes,
                flush_interval_s=settings.log_flush_interval_s,
                batch_records=settings.log_batch_records,
                max_backlog_bytes=settings.log_max_backlog_bytes,
                mover_nice=settings.log_mover_nice,
            )
            await asyncio.to_thread(log.open)
            parts["log"] = service.log = log
        holder.start_polling(settings.poll_interval_s)
        logger.info(
            "serving %s@%s on %s:%d",
            settings.model_name,
            settings.alias,
            settings.host,
            settings.port,
        )
        try:
            yield
        finally:
            holder.stop()
            if parts["log"] is not None:
                app.state.drained = await asyncio.to_thread(
                    parts["log"].close, settings.drain_timeout_s
                )
            logger.info("server stopped")

    app = FastAPI(
        title="mlops_assets serving",
        version="1",
        description="Scores rows with the registered model's champion (and optional canary).",
        lifespan=lifespan,
    )
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.state.holder, app.state.service, app.state.metrics = holder, service, metrics

    async def guarded(request: Request, handler) -> Response:
        try:
            headers = dict(request.scope["headers"])
            body = await read_limited(request.receive, headers, settings.max_body_bytes)
        except Exception as error:  # noqa: BLE001 - RequestError, or the client went away
            if hasattr(error, "body"):
                return _reply(Reply(error.status, error.body(), error.headers))
            return _json(400, {"error": f"could not read the body: {error}"})
        return _reply(await handler(body))

    @app.post("/predict", openapi_extra=_body_doc(_ROWS), tags=["scoring"])
    async def predict(request: Request) -> Response:
        """Score one row object or an array of them; every row gets a request id."""
        header = request.headers.get("x-request-id")
        return await guarded(request, lambda body: service.predict(body, header, False))

    @app.post("/invocations", openapi_extra=_body_doc(_MLFLOW), tags=["scoring"])
    async def invocations(request: Request) -> Response:
        """MLflow-compatible scoring: ``{"predictions": [{"label", "probability"}, ...]}``."""
        header = request.headers.get("x-request-id")
        return await guarded(request, lambda body: service.predict(body, header, True))

    @app.post(
        "/feedback",
        openapi_extra=_body_doc(
            {"oneOf": [_FEEDBACK_ITEM, {"type": "array", "items": _FEEDBACK_ITEM}]}
        ),
        tags=["scoring"],
    )
    async def feedback(request: Request) -> Response:
        """Record true labels for earlier predictions (joinable on request id)."""
        return await guarded(request, service.feedback)

    @app.get("/health", tags=["ops"])
    async def health() -> Response:
        """Alive."""
        return _json(200, {"status": "alive"})

    @app.get("/ready", tags=["ops"])
    async def ready() -> Response:
        """200 once a model version is loaded, else 503 with the reason."""
        primary = holder.state.primary
        if primary is None:
            reason = holder.waiting_reason or "no model is loaded yet"
            return _json(503, {"ready": False, "reason": reason}, {"Retry-After": "1"})
        return _json(200, {"ready": True, "version": primary.version})

    @app.get("/model", tags=["ops"])
    async def model() -> Response:
        """Serving versions (version, alias, lineage tags, loaded at), canary and failures."""
        return _json(200, describe(holder, parts["log"]))

    @app.get("/metrics", tags=["ops"])
    async def prometheus() -> Response:
        """Prometheus metrics."""
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    @app.post("/admin/reload", tags=["admin"])
    async def reload(request: Request, force: bool = False) -> Response:
        """Re-resolve the aliases and hot-swap changed versions (Bearer admin token)."""
        denied = _check_token(request, settings.admin_token)
        if denied is not None:
            return denied
        outcome = await asyncio.to_thread(holder.refresh, force)
        payload = {
            "reloaded": bool(outcome.changed),
            "changed": outcome.changed,
            "failures": [failure.__dict__ for failure in outcome.failures],
            "serving": describe(holder, parts["log"]),
        }
        if outcome.failures:
            payload["error"] = "; ".join(failure.error for failure in outcome.failures)
            return _json(409, payload)
        return _json(200, payload)

    return app


def _check_token(request: Request, expected: str | None) -> Response | None:
    if expected is None:
        return _json(403, {"error": "admin is disabled: no admin token configured"})
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    token = (
        token.strip() if scheme.lower() == "bearer" else request.headers.get("x-admin-token", "")
    )
    if not token or not hmac.compare_digest(token.encode(), expected.encode()):
        return _json(401, {"error": "missing or wrong admin token"}, {"WWW-Authenticate": "Bearer"})
    return None


def describe(holder: ModelHolder, log: InferenceLog | None) -> dict[str, Any]:
    """The ``/model`` document."""
    state = holder.state
    primary = state.primary.info() if state.primary is not None else {}
    failure = holder.last_failure
    return {
        "name": holder.model_name,
        "alias": holder.aliases["primary"],
        "version": primary.get("version"),
        "tags": primary.get("tags", {}),
        "loaded_at": primary.get("loaded_at"),
        "primary": primary or None,
        "canary_alias": holder.aliases["canary"],
        "canary_fraction": state.canary_fraction,
        "canary": state.canary.info() if state.canary is not None else None,
        "waiting_reason": holder.waiting_reason,
        "last_failure": failure.__dict__ if failure is not None else None,
        "log": log.stats().__dict__ if log is not None else None,
    }
