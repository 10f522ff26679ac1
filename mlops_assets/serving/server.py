"""Run the app under uvicorn (uvloop + httptools, no access log) until SIGTERM / SIGINT."""

from __future__ import annotations

import logging
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

    from mlops_assets.serving.app import create_app

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # A process started in the background may inherit "ignore" for these; uvicorn installs
    # its own handlers, but start from the defaults so nothing stays ignored.
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, signal.SIG_DFL)
    logger.info("settings: %s", settings.describe())
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level=log_level.lower(),
        timeout_graceful_shutdown=30,
        server_header=False,
    )
