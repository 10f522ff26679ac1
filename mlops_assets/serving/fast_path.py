"""Raw ASGI front for the scoring routes: ``POST /predict``, ``/invocations``, ``/feedback``.

FastAPI's routing, request object and middleware stack cost about 0.1-0.15 ms per request
here, as much as scoring itself. This wrapper answers the three scoring routes directly
(read the body with its size limit, call :class:`PredictionService`, send the bytes) and hands
every other request, and the lifespan, to the FastAPI app, which also documents the scoring
routes in its OpenAPI schema (same service, same answers).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from mlops_assets.serving.formats import RequestError, refuse
from mlops_assets.serving.metrics import ServingMetrics
from mlops_assets.serving.service import PredictionService, Reply

logger = logging.getLogger(__name__)
_JSON_TYPES = frozenset({b"", b"application/json", b"application/*+json", b"*/*"})
_BASE_HEADERS = [(b"content-type", b"application/json")]


def _header_map(scope: dict[str, Any]) -> dict[bytes, bytes]:
    return dict(scope["headers"])


async def read_limited(receive, headers: dict[bytes, bytes], limit: int) -> bytes:
    """Read the request body, refusing non-JSON types (415) and bodies over ``limit`` (413)."""
    content_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
    if content_type not in _JSON_TYPES:
        shown = content_type.decode("latin-1")
        raise refuse(f"must be application/json, got {shown!r}", field="Content-Type", status=415)
    declared = headers.get(b"content-length")
    if declared is not None:
        if not declared.isdigit():
            raise refuse("must be a number of bytes", field="Content-Length", status=400)
        if int(declared) > limit:
            raise refuse(
                f"{int(declared)} bytes exceed the limit of {limit}", field="body", status=413
            )
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise refuse("client disconnected", field="body", status=400)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise refuse(f"more than the limit of {limit} bytes", field="body", status=413)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class ScoringFastPath:
    """ASGI app: scoring routes answered directly, everything else by ``app``."""

    def __init__(
        self, app, service: PredictionService, metrics: ServingMetrics, max_body_bytes: int
    ) -> None:
        """Wrap the FastAPI ``app``."""
        self.app = app
        self.service = service
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope, receive, send) -> None:
        """Route one ASGI call."""
        path = scope.get("path")
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or path not in ("/predict", "/invocations", "/feedback")
        ):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = _header_map(scope)
        try:
            body = await read_limited(receive, headers, self.max_body_bytes)
            if path == "/feedback":
                reply = await self.service.feedback(body)
            else:
                request_id = headers.get(b"x-request-id")
                reply = await self.service.predict(
                    body,
                    None if request_id is None else request_id.decode("latin-1"),
                    path == "/invocations",
                )
        except RequestError as error:
            reply = Reply(error.status, error.body(), error.headers)
        except Exception:  # noqa: BLE001 - a bug must answer 500, never kill the server
            logger.exception("unexpected error on %s", path)
            reply = Reply(500, b'{"error":"internal error; see the server log"}')
        response_headers = _BASE_HEADERS + [
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in reply.headers.items()
        ]
        response_headers.append((b"content-length", str(len(reply.body)).encode()))
        await send(
            {"type": "http.response.start", "status": reply.status, "headers": response_headers}
        )
        await send({"type": "http.response.body", "body": reply.body})
        self.metrics.observe_request(path, reply.status, time.perf_counter() - started)
