"""The closed loop behind ``mlops demo``: serve, train, watch, drift, retrain, redeploy.

:func:`run_loop` (1) starts the serving endpoint (loopback, free port, fresh admin token),
(2) runs ``main_job`` in-process (the first model is trained, registered, promoted and
hot-swapped into the running server), (3) starts the real Dagster daemon on the project's
workspace (the sensors are RUNNING by default), (4) sends normal traffic with feedback and
waits for the monitoring report on it, then drifted traffic (drift onset recorded),
(5) waits, bounded, for the ``retraining_job`` run the drift sensor launches to finish,
and (6) returns a :class:`~mlops_assets.loop_report.LoopSummary` of versions, metrics and
timings. The daemon and the server are always stopped by their PIDs, also on failure,
Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import logging
import secrets
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from mlops_assets.core.paths import StatePaths
from mlops_assets.core.synthetic import DriftSpec
from mlops_assets.core.traffic import TrafficRows
from mlops_assets.core.traffic_drift import DriftInjection
from mlops_assets.core.traffic_report import TrafficSummary
from mlops_assets.core.traffic_run import TrafficSettings
from mlops_assets.loop_report import LoopSummary, Step
from mlops_assets.loop_watch import LoopWatch
from mlops_assets.processes import (
    ManagedProcess,
    free_port,
    scoped_environment,
    sigterm_as_interrupt,
    start_daemon,
    start_server,
    wait_http,
)

LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoopSettings:
    """Budget and knobs of the closed loop (defaults: a few minutes on a 2-core laptop).

    Attributes:
        source: ``auto``: the embedded default (OpenML credit-card data, the synthetic
            generator when offline); ``synthetic``: the generator directly.
        rows: Synthetic training rows.
        positive_rate: Synthetic fraud share (higher than the real 0.17 % so that a small
            demo has enough frauds to compare models on).
        holdout_fraction: Real data: latest share of ``Time`` kept back for traffic.
        max_evals: Tuning budget of the first model.
        retrain_max_evals: Tuning budget of the sensor-launched retraining.
        normal_rows: Rows of normal traffic.
        drifted_rows: Rows of drifted traffic.
        rate: Traffic rows per second.
        batch_rows: Rows per request.
        concurrency: Requests in flight.
        drift_shift: Feature shifts of the drifted traffic (standard deviations).
        fraud_pattern_change: Share of drifted frauds whose signature moves (0..1).
        drift_positive_rate: Fraud share of the drifted traffic (a fraud wave).
        feedback_share: Share of answered rows labelled through ``/feedback``.
        feedback_delay_s: Delay of those labels.
        traffic_seed: Seed of the traffic (other than the training data's).
        report_timeout_s: Longest wait for the monitoring report on normal traffic.
        retrain_timeout_s: Longest wait for the retraining run after the drift.
        cooldown_s: Drift sensor cooldown between retraining requests.
        monitor_max_wait_s: Longest time new inference-log rows wait for monitoring.
        automation_env: Further ``MLOPS_*`` automation overrides (see ``definitions.py``).
    """

    source: Literal["auto", "synthetic"] = "auto"
    rows: int = 20_000
    positive_rate: float = 0.01
    holdout_fraction: float = 0.2
    max_evals: int = 4
    retrain_max_evals: int = 4
    normal_rows: int = 3000
    drifted_rows: int = 4000
    rate: float = 1000.0
    batch_rows: int = 50
    concurrency: int = 4
    drift_shift: Mapping[str, float] = field(default_factory=lambda: {"V3": 2.0, "V14": -1.5})
    fraud_pattern_change: float = 1.0
    drift_positive_rate: float | None = 0.05
    feedback_share: float = 1.0
    feedback_delay_s: float = 1.0
    traffic_seed: int = 1042
    report_timeout_s: float = 240.0
    retrain_timeout_s: float = 600.0
    cooldown_s: float = 120.0
    monitor_max_wait_s: float = 20.0
    automation_env: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        problems = [
            f"{name} must be >= 1, got {getattr(self, name)}"
            for name in ("rows", "max_evals", "retrain_max_evals", "normal_rows", "drifted_rows")
            if getattr(self, name) < 1
        ]
        problems += [
            f"{name} must be > 0, got {getattr(self, name)}"
            for name in ("rate", "report_timeout_s", "retrain_timeout_s", "monitor_max_wait_s")
            if not getattr(self, name) > 0
        ]
        if self.cooldown_s < 0:
            problems.append(f"cooldown_s must be >= 0, got {self.cooldown_s}")
        for name in ("positive_rate", "holdout_fraction"):
            if not 0.0 < getattr(self, name) < 1.0:
                problems.append(f"{name} must be in (0, 1), got {getattr(self, name)}")
        if problems:
            raise ValueError("invalid loop settings: " + "; ".join(problems))
        self.traffic()  # validates rate, batch, concurrency, feedback share and delay
        self.drift()  # validates the drift columns, pattern change and positive rate

    def environment(self, paths: StatePaths, url: str, token: str) -> dict[str, str]:
        """Environment shared by this process, the server and the daemon's runs."""
        return {
            "MLOPS_STATE_DIR": str(paths.root),
            "DAGSTER_HOME": str(paths.dagster_home),
            "MLOPS_SERVING_URL": url,
            "MLOPS_ADMIN_TOKEN": token,
            "MLFLOW_TRACKING_URI": paths.mlflow_tracking_uri,
            # mlflow.set_registry_uri exports this one: a value left by an earlier loop in
            # this process would send the server and the daemon to that loop's registry
            "MLFLOW_REGISTRY_URI": paths.mlflow_tracking_uri,
            "MLOPS_RETRAIN_MAX_EVALS": str(self.retrain_max_evals),
            "MLOPS_RETRAIN_COOLDOWN_S": str(self.cooldown_s),
            "MLOPS_MONITOR_MAX_WAIT_S": str(self.monitor_max_wait_s),
            "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
            **self.automation_env,
        }

    def data_source(self, paths: StatePaths) -> Any:
        """The ``data_source`` resource the loop ingests from and takes traffic from.

        Only the first ingestion (``main_job``, in-process) loads the source; the daemon's
        retraining runs start from ``labeled_feedback`` and reuse the ingested raw table.
        """
        from mlops_assets.resources import DataSource

        return DataSource(
            kind="openml" if self.source == "auto" else "synthetic",
            cache_dir=str(paths.cache),
            synthetic_rows=self.rows,
            synthetic_positive_rate=self.positive_rate,
            holdout_tail_fraction=self.holdout_fraction,
        )

    def traffic(self) -> TrafficSettings:
        """Traffic settings of both phases."""
        return TrafficSettings(
            rate=self.rate,
            batch_rows=self.batch_rows,
            concurrency=self.concurrency,
            feedback_share=self.feedback_share,
            feedback_delay_s=self.feedback_delay_s,
            seed=self.traffic_seed,
        )

    def drift(self) -> DriftInjection:
        """The drift of the second phase (from its first row)."""
        spec = DriftSpec(
            shift=dict(self.drift_shift),
            fraud_pattern_change=self.fraud_pattern_change,
            positive_rate=self.drift_positive_rate,
        )
        return DriftInjection(spec, after_rows=0)


class ClosedLoop:
    """One run of the loop; steps append to ``steps``; ``facts`` collects the summary."""

    def __init__(self, paths: StatePaths, settings: LoopSettings, say: Callable[[str], None]):
        """Prepare names, port, token; nothing starts yet."""
        self.paths, self.settings, self.say = paths, settings, say
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = settings.environment(paths, self.url, secrets.token_urlsafe(24))
        self.logs = paths.root / "loop"
        self.children: list[ManagedProcess] = []
        self.processes: dict[str, str] = {}  # name -> "pid N, log PATH" (for the summary)
        self.steps: list[Step] = []
        self.started = time.monotonic()

    @contextmanager
    def step(self, name: str) -> Iterator[dict[str, str]]:
        """Time a step; the body may set ``detail`` in the yielded dict."""
        note: dict[str, str] = {"detail": ""}
        self.say(f"[{time.monotonic() - self.started:6.1f} s] {name} ...")
        began = time.monotonic()
        yield note
        seconds = time.monotonic() - began
        self.steps.append(Step(name, round(seconds, 2), note["detail"]))
        self.say(f"[{time.monotonic() - self.started:6.1f} s] {name}: {note['detail']}")

    def start_server(self) -> None:
        """(1) The serving endpoint, waiting for its champion."""
        with self.step("start serving endpoint") as note:
            server = start_server(
                self.paths.root,
                self.port,
                self.logs / "server.log",
                self.env,
                "--tracking-uri",
                self.paths.mlflow_tracking_uri,
                "--registry-uri",
                self.paths.mlflow_tracking_uri,
                "--delta-root",
                str(self.paths.lakehouse),
                "--wal-dir",
                str(self.paths.serving / "wal"),
                "--poll-interval",
                "2",
                "--log-flush-interval",
                "0.5",
            )
            self._started(server)
            seconds = wait_http(f"{self.url}/health", server, timeout_s=120)
            note["detail"] = f"{self.url} (pid {server.pid}) up in {seconds:.1f} s"

    def start_daemon(self) -> ManagedProcess:
        """(3) The Dagster daemon (sensors, run queue)."""
        with self.step("start dagster daemon") as note:
            daemon = start_daemon(self.logs / "daemon.log", self.env)
            self._started(daemon)
            note["detail"] = f"pid {daemon.pid}, DAGSTER_HOME {self.env['DAGSTER_HOME']}"
        return daemon

    def _started(self, child: ManagedProcess) -> None:
        self.children.append(child)
        self.processes[child.name] = f"pid {child.pid}, log {child.log_file}"

    def stop_children(self) -> None:
        """Stop the daemon, then the server (reverse start order), by PID.

        A second Ctrl-C (or SIGTERM) while stopping kills the child at once and goes on with
        the others; the interrupt is raised again once every child is gone.
        """
        interrupted: KeyboardInterrupt | None = None
        for child in reversed(self.children):
            try:
                code = child.stop(timeout_s=30)
            except KeyboardInterrupt as error:
                interrupted, code = error, child.kill()
            self.say(f"stopped {child.name} (pid {child.pid}, exit {code}); log {child.log_file}")
        self.children.clear()
        if interrupted is not None:
            raise interrupted

    def traffic(self, name: str, rows: TrafficRows) -> TrafficSummary:
        """(4) Send ``rows`` to the server, progress on ``say``."""
        from mlops_assets.simulation import run_simulation

        with self.step(name) as note:
            summary = run_simulation(
                self.url, rows, self.settings.traffic(), lambda p: self.say("    " + p.line())
            )
            note["detail"] = summary.lines()[0]
        if not summary.rows_answered:
            raise RuntimeError(f"{name}: no row was answered: {summary.lines()}")
        return summary


def run_loop(paths: StatePaths, settings: LoopSettings, say: Callable[[str], None]) -> LoopSummary:
    """Run the closed loop once and return its summary (see the module docstring).

    Args:
        paths: The state folder (Delta, MLflow, DAGSTER_HOME, logs under ``loop/``).
        settings: Budget and knobs.
        say: Where progress lines go (stderr in the CLI).
    """
    loop = ClosedLoop(paths.ensure(), settings, say)
    watch = LoopWatch(loop)
    with sigterm_as_interrupt(), scoped_environment(loop.env, unset=("MLFLOW_EXPERIMENT_ID",)):
        try:
            return watch.run()
        except KeyboardInterrupt:
            say("interrupted: stopping the daemon and the server")
            raise
        except Exception as error:  # noqa: BLE001 - reported in the summary, exit code 1
            say(traceback.format_exc())
            return watch.failed(f"{type(error).__name__}: {error}")
        finally:
            loop.stop_children()


def write_summary(summary: LoopSummary, path: Path) -> None:
    """Write the summary as JSON."""
    path.write_text(summary.to_json())
