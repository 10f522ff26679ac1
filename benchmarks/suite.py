"""The registered suite benchmarks, each run in its own child process.

A child process per benchmark keeps peak-memory figures their own, keeps a Spark session or
MLflow's process-wide URIs from leaking into the next benchmark, and turns a crash (even a
killed process) into a ``failed`` figure instead of the end of the suite.
"""

from __future__ import annotations

import contextlib
import importlib
import multiprocessing as mp
import os
import queue
import signal
import time
import traceback
import warnings
from collections.abc import Callable

from benchmarks.harness import Figure, Settings, failed
from benchmarks.memory import descendants
from benchmarks.report import BenchmarkRun

BENCHMARKS = (
    "ingestion",
    "delta_engines",
    "resampling",
    "drift",
    "serving",
    "tuning",
    "closed_loop",
    "scaling",
    "orchestration",
)
"""Suite order: the target benchmarks first, the long scaling and orchestration runs last."""

MODULES = {"tuning": "benchmarks.tuning_suite", "serving": "benchmarks.serving_suite"}
"""Benchmarks whose ``suite`` lives beside their script (owned by other modules' authors)."""


def module_name(name: str) -> str:
    """The module that holds benchmark ``name``'s ``suite(settings)``."""
    return MODULES.get(name, f"benchmarks.{name}")


def select(only: str | None) -> list[str]:
    """The benchmarks to run: all, or the comma list ``only`` in suite order.

    Raises:
        ValueError: ``only`` names a benchmark that is not registered.
    """
    if not only:
        return list(BENCHMARKS)
    wanted = [name.strip() for name in only.split(",") if name.strip()]
    unknown = [name for name in wanted if name not in BENCHMARKS]
    if unknown:
        raise ValueError(f"--only: unknown benchmark(s) {unknown}; choose from {list(BENCHMARKS)}")
    return [name for name in BENCHMARKS if name in wanted]


def _child(name: str, settings: Settings, out: mp.Queue) -> None:
    """Run one benchmark's ``suite`` and put its figures (or a failed figure) on ``out``."""
    warnings.filterwarnings("ignore", module=r"(dagster|mlflow|pyspark|xgboost)(\.|$)")
    try:
        suite = importlib.import_module(module_name(name)).suite
        figures = list(suite(settings))
        for figure in figures:
            if not isinstance(figure, Figure) or figure.benchmark != name:
                raise TypeError(f"{module_name(name)}.suite returned a stray figure {figure!r}")
        out.put(("ok", figures))
    except BaseException as error:  # reported as a failed benchmark; the suite goes on
        out.put(("failed", [failed(name, error)], traceback.format_exc()))


def stop_tree(process: mp.process.BaseProcess, grace_s: float = 10.0) -> None:
    """SIGTERM a benchmark child and everything it started (servers, JVMs), then SIGKILL."""
    pids = [process.pid, *descendants(process.pid)]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(0.2)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    process.join(5)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def run_benchmark(
    name: str,
    settings: Settings,
    say: Callable[[str], None] = lambda line: None,
    timeout_s: float | None = None,
) -> BenchmarkRun:
    """Run benchmark ``name`` in a spawned child process and collect its figures.

    Args:
        name: A registered benchmark.
        settings: What it gets.
        say: Where the child's traceback goes when it fails.
        timeout_s: Stop the child and everything it started after this many seconds and
            report the benchmark as failed; None: no limit.
    """
    context = mp.get_context("spawn")
    out = context.Queue()
    process = context.Process(target=_child, args=(name, settings, out), name=f"bench-{name}")
    started = time.perf_counter()
    process.start()
    message = None
    try:
        message = _wait(name, process, out, started, timeout_s)
    finally:
        if message is None or message[0] == "timeout":
            stop_tree(process)
    process.join()
    if message[0] == "timeout":
        error = TimeoutError(f"no result after {timeout_s:g} s (--timeout); stopped")
        message = ("failed", [failed(name, error)], "")
    if message[0] == "failed" and len(message) > 2 and message[2]:
        say(f"{name} failed:\n{message[2]}")
    return BenchmarkRun(name, time.perf_counter() - started, tuple(message[1]))


def _wait(name, process, out, started: float, timeout_s: float | None) -> tuple:
    message = None
    while message is None:
        if timeout_s is not None and time.perf_counter() - started > timeout_s:
            return ("timeout",)
        try:
            message = out.get(timeout=1.0)
        except queue.Empty:
            if not process.is_alive():
                try:  # the result may have been put just before the exit
                    message = out.get(timeout=1.0)
                except queue.Empty:
                    error = RuntimeError(
                        f"benchmark process exited with code {process.exitcode} "
                        "without reporting (killed for memory?)"
                    )
                    message = ("failed", [failed(name, error)], "")
    return message
