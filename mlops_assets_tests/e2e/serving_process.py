"""Start and stop a real ``mlops serve`` process for end-to-end tests.

The server runs in its own session (signals to the test runner do not reach it) and is always
stopped by its PID: SIGTERM (graceful: finish requests, drain the log), then SIGKILL after a
timeout.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ADMIN_TOKEN = "e2e-admin-token-0123456789"
_LAUNCH = "import sys; from mlops_assets.cli import main; main(sys.argv[1:])"


def free_port() -> int:
    """A TCP port free on the loopback interface right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class ServerProcess:
    """A running server and where its state lives."""

    process: subprocess.Popen
    port: int
    folder: Path
    log_file: Path
    args: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        """Base URL."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def lake(self) -> Path:
        """Lakehouse root of this server."""
        return self.folder / "lake"

    @property
    def wal(self) -> Path:
        """Write-ahead-log folder of this server."""
        return self.folder / "wal"

    def output(self) -> str:
        """Everything the server wrote so far."""
        return self.log_file.read_text(errors="replace")

    def wait(self, path: str = "/ready", timeout_s: float = 90.0) -> None:
        """Wait until ``path`` answers 200; fail with the server output otherwise."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                code = self.process.returncode
                raise RuntimeError(f"server exited with {code}:\n{self.output()}")
            try:
                if httpx.get(self.url + path, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{self.url}{path} not 200 after {timeout_s} s:\n{self.output()}")

    def stop(self, timeout_s: float = 60.0) -> int:
        """SIGTERM, wait, then SIGKILL if needed; return the exit code."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        return self.process.returncode

    def kill9(self) -> None:
        """SIGKILL now (a crash)."""
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(10)


def start_server(
    folder: Path,
    tracking_uri: str,
    alias: str,
    *extra: str,
    wait_path: str | None = "/ready",
    port: int | None = None,
) -> ServerProcess:
    """Start ``mlops serve`` with its state (Delta root, WAL) under ``folder``.

    Args:
        folder: State folder of this server (reused across restarts).
        tracking_uri: MLflow registry to load from.
        alias: Alias of the primary version.
        *extra: More ``serve`` flags.
        wait_path: Endpoint to wait for (None: do not wait).
        port: Port (a free one when None).
    """
    folder.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    args = [
        "--state-dir",
        str(folder / "state"),
        "serve",
        "--port",
        str(port),
        "--alias",
        alias,
        "--tracking-uri",
        tracking_uri,
        "--delta-root",
        str(folder / "lake"),
        "--wal-dir",
        str(folder / "wal"),
        "--poll-interval",
        "0.5",
        "--log-flush-interval",
        "0.2",
        *extra,
    ]
    env = {**os.environ, "MLOPS_ADMIN_TOKEN": ADMIN_TOKEN, "PYTHONUNBUFFERED": "1"}
    log_file = folder / f"server-{port}-{time.monotonic_ns()}.log"
    with open(log_file, "wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-c", _LAUNCH, *args],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    server = ServerProcess(process, port, folder, log_file, args)
    if wait_path is not None:
        try:
            server.wait(wait_path)
        except Exception:
            server.stop(timeout_s=5)
            raise
    return server


def read_table(lake: Path, name: str):
    """The Delta table ``name`` under ``lake`` as pandas (empty frame when absent)."""
    import pandas as pd
    from deltalake import DeltaTable

    path = lake / name
    if not (path / "_delta_log").is_dir():
        return pd.DataFrame()
    return DeltaTable(str(path)).to_pandas()
