"""Child processes of the closed loop: the serving endpoint and the Dagster daemon.

Each child runs in its own session (a Ctrl-C in the terminal reaches only the parent, which
then stops the children in order) with its output in a log file. :meth:`ManagedProcess.stop`
always acts on the child's own PID: SIGTERM, a bounded wait, SIGKILL; then anything left
in the child's process group (the daemon's code server and run workers) gets SIGKILL too.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from mlops_assets.core.paths import PROJECT_ROOT

LOGGER = logging.getLogger(__name__)
_CLI = "import sys; from mlops_assets.cli import main; main(sys.argv[1:])"


class ProcessError(RuntimeError):
    """A child process exited or did not become ready; the message holds its last output."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` right now."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def _tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


@dataclass
class ManagedProcess:
    """A started child process and its log file."""

    name: str
    process: subprocess.Popen
    log_file: Path

    @property
    def pid(self) -> int:
        """The child's process id."""
        return self.process.pid

    def running(self) -> bool:
        """Whether the child is still alive."""
        return self.process.poll() is None

    def output(self, chars: int = 3000) -> str:
        """The end of the child's log."""
        return _tail(self.log_file, chars)

    def check(self) -> None:
        """Raise :class:`ProcessError` if the child has exited."""
        if not self.running():
            raise ProcessError(
                f"{self.name} (pid {self.pid}) exited with {self.process.returncode}; "
                f"log {self.log_file}:\n{self.output()}"
            )

    def stop(self, timeout_s: float = 30.0) -> int | None:
        """SIGTERM, wait up to ``timeout_s``, then SIGKILL; clear the process group.

        Returns:
            The exit code (negative: killed by that signal).
        """
        if self.running():
            LOGGER.info("stopping %s (pid %d)", self.name, self.pid)
            _signal(self.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                LOGGER.warning("%s (pid %d) ignored SIGTERM; killing it", self.name, self.pid)
                _signal(self.pid, signal.SIGKILL)
                self.process.wait(10)
        self._kill_group()
        return self.process.returncode

    def kill(self) -> int | None:
        """SIGKILL the child and its process group now; return the exit code."""
        _signal(self.pid, signal.SIGKILL)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            LOGGER.error("%s (pid %d) survived SIGKILL for 10 s", self.name, self.pid)
        self._kill_group()
        return self.process.returncode

    def _kill_group(self) -> None:
        try:  # children it left behind (same session, so same group as the pid)
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _signal(pid: int, number: int) -> None:
    try:
        os.kill(pid, number)
    except ProcessLookupError:
        pass


def start(
    name: str, command: Sequence[str], log_file: Path, env: Mapping[str, str]
) -> ManagedProcess:
    """Start ``command`` in its own session, output to ``log_file``, from the project root."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as sink:
        process = subprocess.Popen(
            list(command),
            stdout=sink,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **env, "PYTHONUNBUFFERED": "1"},
            cwd=PROJECT_ROOT,
            start_new_session=True,
        )
    LOGGER.info("started %s (pid %d), log %s", name, process.pid, log_file)
    return ManagedProcess(name, process, log_file)


def start_server(
    state_dir: Path, port: int, log_file: Path, env: Mapping[str, str], *flags: str
) -> ManagedProcess:
    """Start ``mlops serve`` on the loopback interface with the state folder's registry."""
    command = [
        sys.executable,
        "-c",
        _CLI,
        "--state-dir",
        str(state_dir),
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        *flags,
    ]
    return start("server", command, log_file, env)


def start_daemon(log_file: Path, env: Mapping[str, str]) -> ManagedProcess:
    """Start ``dagster-daemon run`` on the project's workspace (DAGSTER_HOME from ``env``)."""
    if "DAGSTER_HOME" not in env:
        raise ValueError("start_daemon: env must name DAGSTER_HOME")
    command = [
        sys.executable,
        "-m",
        "dagster._daemon",
        "run",
        "-w",
        str(PROJECT_ROOT / "workspace.yaml"),
        "--log-level",
        "warning",
    ]
    return start("dagster-daemon", command, log_file, env)


def wait_http(url: str, owner: ManagedProcess, timeout_s: float, status: int = 200) -> float:
    """Wait until ``url`` answers ``status``; return the seconds it took.

    Raises:
        ProcessError: The owner exited, or no such answer within ``timeout_s``.
    """
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        owner.check()
        try:
            if httpx.get(url, timeout=2.0).status_code == status:
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise ProcessError(
        f"{url} did not answer {status} within {timeout_s:.0f} s; {owner.name} log "
        f"{owner.log_file}:\n{owner.output()}"
    )


class LoopInterrupted(KeyboardInterrupt):
    """SIGTERM in a :func:`sigterm_as_interrupt` block (handled like Ctrl-C)."""


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into :class:`LoopInterrupted` inside the block (the old handler after)."""

    def interrupt(_number: int, _frame: Any) -> None:
        raise LoopInterrupted("SIGTERM")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def scoped_environment(values: Mapping[str, str], unset: Sequence[str] = ()) -> Iterator[None]:
    """Set ``values`` (and remove ``unset``) in this process's environment, then restore.

    The in-process ``main_job`` then reads what the daemon's runs read, and nothing it
    exports (MLflow exports its URIs and experiment id) outlives the block.
    """
    previous = {name: os.environ.get(name) for name in (*values, *unset)}
    for name in unset:
        os.environ.pop(name, None)
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
