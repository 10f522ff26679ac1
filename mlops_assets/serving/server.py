"""Run the app under uvicorn (uvloop + httptools, no access log) until SIGTERM / SIGINT."""

from __future__ import annotations

import logging
import os
import signal

from mlops_assets.serving.settings import ServeSettings

logger = logging.getLogger(__name__)


def run(settings: ServeSettings, log_level: str = "info") -> None:
    """Serve until a termination signal, then finish requests in flight and drain the log.

    Args:
        settings: Server settings.
        log_level: Python logging level of the server process.
    """
    import uvicorn

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no bars in logs

    from mlops_assets.serving.app import create_app
    from mlops_assets.serving.fast_path import ScoringFastPath

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    app = create_app(settings)

    def finished(number: int, _frame) -> None:
        # uvicorn re-raises the signal it caught once the graceful shutdown is over: exit 0
        # when the inference log reached Delta, 3 when records had to stay in the WAL.
        raise SystemExit(0 if getattr(app.state, "drained", True) else 3)

    # Explicit handlers also undo an inherited "ignore" (background processes).
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, finished)
    logger.info("settings: %s", settings.describe())
    uvicorn.run(
        ScoringFastPath(app, app.state.service, app.state.metrics, settings.max_body_bytes),
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level=log_level.lower(),
        timeout_graceful_shutdown=30,
        server_header=False,
        proxy_headers=False,  # bound to loopback by default: no proxy to trust
    )
