"""How the orchestration benchmark runs each variant: fresh processes or a warm child.

Every run gets its own fresh state folder (Delta lake, MLflow store, Dagster home with the
project's ``dagster.yaml``) and returns its wall-clock seconds; its output goes to
``<state>.log``. A run that fails raises with the end of that log.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.harness import Settings
from benchmarks.orchestration_plain import plain_pipeline
from mlops_assets.core.paths import PROJECT_ROOT

RUN_TIMEOUT_S = 1800


def _env(settings: Settings, state: Path, executor: str = "in_process") -> dict[str, str]:
    from benchmarks import orchestration_defs as names

    home = state / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    return {
        **os.environ,
        "MLOPS_STATE_DIR": str(state),
        "DAGSTER_HOME": str(home),
        names.DATA_ENV: str(settings.data),
        names.TARGET_ENV: settings.target,
        names.POSITIVE_ENV: _positive(settings),
        names.EXECUTOR_ENV: executor,
        "PYTHONWARNINGS": "ignore",
    }


def _positive(settings: Settings) -> str:
    return str(getattr(settings, "positive", "1"))


SELECT = (
    "raw_transactions,transactions,training_splits,resampled_train,tuned_model,"
    "registered_model_version,champion_model"
)


@dataclass(frozen=True)
class Timing:
    """One run: wall-clock seconds and CPU seconds (user + system, every thread and process)."""

    wall: float
    cpu: float


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed_process(command: list[str], env: dict[str, str], log: Path) -> Timing:
    """Run ``command`` to completion; its wall and CPU seconds (output kept in ``log``)."""
    cpu_before, started = _children_cpu(), time.perf_counter()
    with log.open("w") as handle:
        done = subprocess.run(
            command,
            env=env,
            cwd=PROJECT_ROOT,
            stdout=handle,
            stderr=subprocess.STDOUT,
            timeout=RUN_TIMEOUT_S,
            check=False,
        )
    timing = Timing(time.perf_counter() - started, _children_cpu() - cpu_before)
    if done.returncode != 0:
        tail = log.read_text(errors="replace")[-1500:]
        raise RuntimeError(f"{command[:4]} exited {done.returncode}; end of {log}:\n{tail}")
    return timing


def run_cli(settings: Settings, state: Path, max_evals: int, executor: str) -> Timing:
    """``dagster asset materialize`` of the selection in a fresh process.

    The Dagster instance (SQLite storages in the state's Dagster home) is created first,
    untimed, as it exists in a project's state folder after its first run.
    """
    import dagster as dg

    env = _env(settings, state, executor)
    with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]):
        pass
    config = f'{{"ops": {{"tuned_model": {{"config": {{"max_evals": {max_evals}}}}}}}}}'
    command = [
        str(Path(sys.executable).parent / "dagster"),
        "asset",
        "materialize",
        "-m",
        "benchmarks.orchestration_defs",
        "--select",
        SELECT,
        "--config-json",
        config,
    ]
    return _timed_process(command, env, state.with_suffix(".log"))


def run_plain_cli(settings: Settings, state: Path, max_evals: int) -> Timing:
    """:func:`plain_pipeline` in a fresh process."""
    command = [
        sys.executable,
        "-m",
        "benchmarks.orchestration_plain",
        str(state),
        "--data",
        str(settings.data),
        "--target",
        settings.target,
        "--positive",
        _positive(settings),
        "--max-evals",
        str(max_evals),
    ]
    return _timed_process(command, _env(settings, state), state.with_suffix(".log"))


def _in_process_child(kind: str, env: dict[str, str], max_evals: int, out: mp.Queue) -> None:
    """Import everything first, then time one run of ``kind`` (dagster or plain)."""
    os.environ.update(env)
    log = os.open(Path(env["MLOPS_STATE_DIR"]).with_suffix(".log"), os.O_WRONLY | os.O_CREAT)
    os.dup2(log, 1)  # the run's event log lines go to a file, as with the CLI variants
    os.dup2(log, 2)
    import warnings

    warnings.filterwarnings("ignore")
    import dagster as dg
    import imblearn.over_sampling  # noqa: F401  (imports both sides need, outside the clock)
    import xgboost  # noqa: F401

    from benchmarks import orchestration_defs as names

    try:
        args = (env["MLOPS_STATE_DIR"], env[names.DATA_ENV], env[names.TARGET_ENV])
        if kind == "plain":
            cpu_started, started = time.process_time(), time.perf_counter()
            plain_pipeline(*args, env[names.POSITIVE_ENV], max_evals)
        else:
            defs = names.bench_definitions(*args, env[names.POSITIVE_ENV])
            job = defs.resolve_job_def(names.BENCH_JOB)
            config = {"ops": {"tuned_model": {"config": {"max_evals": max_evals}}}}
            instance = dg.DagsterInstance.get()
            cpu_started, started = time.process_time(), time.perf_counter()
            result = job.execute_in_process(run_config=config, instance=instance)
            if not result.success:
                raise RuntimeError(f"run {result.run_id} failed")
        timing = Timing(time.perf_counter() - started, time.process_time() - cpu_started)
        out.put(("ok", timing))
    except BaseException as error:  # reported to the parent
        out.put(("error", f"{type(error).__name__}: {error}"))


def run_in_process(settings: Settings, state: Path, max_evals: int, kind: str) -> Timing:
    """One warm-child run of ``kind``; imports, code loading and the instance excluded."""
    context = mp.get_context("spawn")
    out = context.Queue()
    child = context.Process(
        target=_in_process_child, args=(kind, _env(settings, state), max_evals, out)
    )
    child.start()
    try:
        status, value = out.get(timeout=RUN_TIMEOUT_S)
    finally:
        child.join(timeout=60)
        if child.is_alive():
            child.kill()
    if status != "ok":
        raise RuntimeError(f"in-process {kind} run failed: {value}")
    return value
