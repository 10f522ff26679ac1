"""The steps of the closed loop after the processes start, and what they read back.

Facts are read where the system records them: the ``main_job`` result, the instance's
materializations (``drift_report``, ``champion_model``, ``model_deployment``), the run
records of the sensor-launched ``retraining_job``, and the server's ``/model``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import httpx
import orjson

from mlops_assets.core.traffic import TrafficRows
from mlops_assets.loop_report import (
    DECISION_KEYS,
    DEPLOY_KEYS,
    DRIFT_KEYS,
    MODEL_KEYS,
    PERFORMANCE_KEYS,
    AssetFacts,
    InstanceReader,
    LoopSummary,
    describe,
    pick,
)

if TYPE_CHECKING:
    from mlops_assets.loop import ClosedLoop

RETRAINING_JOB = "retraining_job"
SENSOR_TAG = "dagster/sensor_name"
FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}


class LoopWatch:
    """Runs the steps in order and assembles the :class:`LoopSummary`."""

    def __init__(self, loop: ClosedLoop) -> None:
        """Bind to the loop (its processes, settings, step timer)."""
        self.loop = loop
        self.data_source = loop.settings.data_source(loop.paths)
        self.instance: Any = None
        self.read: InstanceReader | None = None
        self.facts: dict[str, Any] = {}

    def _summary(self, completed: bool, reason: str) -> LoopSummary:
        return LoopSummary(
            completed=completed,
            reason=reason,
            steps=tuple(self.loop.steps),
            processes=dict(self.loop.processes),
            **self.facts,
        )

    def failed(self, reason: str) -> LoopSummary:
        """The summary of a loop that stopped on an error."""
        return self._summary(False, reason)

    def run(self) -> LoopSummary:
        """All steps; an incomplete loop returns a summary that says where it stopped."""
        import dagster as dg

        self.loop.start_server()
        with dg.DagsterInstance.get() as instance:
            self.instance, self.read = instance, InstanceReader(instance)
            failure = self.main_job()
            if failure:
                return self._summary(False, f"main_job failed: {failure}")
            self.wait_daemon()
            rows = self.traffic_rows()
            normal = rows.slice(0, self.loop.settings.normal_rows, "normal traffic")
            drifted = rows.slice(self.loop.settings.normal_rows, rows.rows, rows.description)
            before = self.read.latest_storage_id("drift_report")
            self.facts["normal_traffic"] = self.loop.traffic("normal traffic", normal)
            clean = self.wait_report(before)
            if clean is None:
                return self._summary(False, "no drift_report on the normal traffic in time")
            self.facts["clean_report"] = pick(clean, DRIFT_KEYS)
            summary = self.loop.traffic("drifted traffic", drifted)
            self.facts["drifted_traffic"] = summary
            onset = summary.drift_onset_at or time.time()
            return self.wait_retraining(onset, drifted)

    def main_job(self) -> str | None:
        """(2) The first model: ingest, train, register, promote, deploy (in-process).

        Returns:
            None on success, else the failed steps and their errors.
        """
        from mlops_assets.definitions import build_definitions, build_resources
        from mlops_assets.defs.jobs import MAIN_JOB_NAME

        settings = self.loop.settings
        with self.loop.step("main_job (ingest .. deploy)") as note:
            resources = {**build_resources(), "data_source": self.data_source}
            job = build_definitions(resources).resolve_job_def(MAIN_JOB_NAME)
            config = {
                "ops": {"tuned_model": {"config": {"max_evals": settings.max_evals}}},
                "loggers": {"console": {"config": {"log_level": "WARNING"}}},
            }
            result = job.execute_in_process(
                instance=self.instance, run_config=config, raise_on_error=False
            )
            found = {}
            for event in result.get_asset_materialization_events():
                materialization = event.materialization
                found[materialization.asset_key.to_user_string()] = {
                    key: entry.value for key, entry in materialization.metadata.items()
                }
            raw = found.get("raw_transactions", {})
            self.facts["source"] = str(raw.get("source", "unknown"))
            model = found.get("registered_model_version", {})
            deployed = found.get("model_deployment", {})
            self.facts["initial"] = {
                **{key: model[key] for key in MODEL_KEYS if key in model},
                "version": int(model["version"]) if "version" in model else None,
                "decision": found.get("champion_model", {}).get("decision"),
                "champion_version": found.get("champion_model", {}).get("champion_version"),
                "deployment": deployed.get("status"),
                "run_id": result.run_id,
            }
            kappa = model.get("test_kappa")
            note["detail"] = (
                f"{'succeeded' if result.success else 'FAILED'}; version {model.get('version')}"
                + (f", test kappa {kappa:.3f}" if isinstance(kappa, float) else "")
                + f", deployment {deployed.get('status')}; data: {self.facts['source']}"
            )
        failures = [
            f"{event.step_key}: {event.event_specific_data.error.message.strip().splitlines()[0]}"
            for event in result.all_events
            if event.is_step_failure
        ]
        return None if result.success else "; ".join(failures) or "see the run's logs"

    def wait_daemon(self, timeout_s: float = 120.0) -> None:
        """(3) Start the Dagster daemon and wait for its sensor daemon's first heartbeat."""
        started = time.time()
        daemon = self.loop.start_daemon()
        with self.loop.step("dagster daemon heartbeat") as note:
            deadline = time.monotonic() + timeout_s
            while not self.read.daemon_alive(since=started):
                daemon.check()
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"no sensor daemon heartbeat within {timeout_s:.0f} s; log "
                        f"{daemon.log_file}:\n{daemon.output()}"
                    )
                time.sleep(0.5)
            note["detail"] = "sensors and run queue running"

    def traffic_rows(self) -> TrafficRows:
        """Normal rows then drifted rows, from the data source's hold-out or fresh rows."""
        from mlops_assets.traffic_setup import traffic_for_source

        settings = self.loop.settings
        drift = settings.drift()
        drift = type(drift)(drift.spec, after_rows=settings.normal_rows)
        source = self.data_source.source()
        total = settings.normal_rows + settings.drifted_rows
        return traffic_for_source(source, total, settings.traffic_seed, drift)

    def wait_report(self, after: int) -> AssetFacts | None:
        """The first drift_report written after ``after`` (the sensor-launched monitoring)."""
        with self.loop.step("monitoring on normal traffic") as note:
            deadline = time.monotonic() + self.loop.settings.report_timeout_s
            while time.monotonic() < deadline:
                self._check_children()
                report = self.read.newest("drift_report", after)
                if report is not None:
                    note["detail"] = describe(pick(report, DRIFT_KEYS))
                    return report
                time.sleep(1.0)
            note["detail"] = f"no report within {self.loop.settings.report_timeout_s:.0f} s"
        return None

    def _check_children(self) -> None:
        for child in self.loop.children:
            child.check()

    def serving(self) -> int | None:
        """The version the server reports on ``/model``."""
        try:
            return httpx.get(f"{self.loop.url}/model", timeout=5).json().get("version")
        except (httpx.HTTPError, ValueError):
            return None

    def probe(self, rows: TrafficRows) -> int | None:
        """Score one drifted row; the version that answered."""
        columns = [
            column["name"]
            for column in httpx.get(f"{self.loop.url}/model", timeout=5).json()["primary"][
                "columns"
            ]
        ]
        row = rows.project(columns).features.iloc[0].to_dict()
        response = httpx.post(
            f"{self.loop.url}/predict",
            content=orjson.dumps(row),
            headers={"Content-Type": "application/json"},
            timeout=10,
        )
        return response.json().get("model_version") if response.status_code == 200 else None

    def wait_retraining(self, onset: float, drifted: TrafficRows) -> LoopSummary:
        """(5) Wait for the sensor-launched retraining run and the version it deploys."""
        settings, initial = self.loop.settings, self.serving()
        answered_at, run_record = None, None
        with self.loop.step("drift detection, retraining run") as note:
            deadline = time.monotonic() + settings.retrain_timeout_s
            while time.monotonic() < deadline:
                self._check_children()
                current = self.serving()
                if answered_at is None and current is not None and current != initial:
                    if self.probe(drifted) == current:
                        answered_at = time.time()
                run_record = self.read.sensor_run(RETRAINING_JOB, SENSOR_TAG, onset - 1.0)
                if run_record is not None and run_record.dagster_run.status.value in FINISHED:
                    break
                time.sleep(0.5)
            else:
                note["detail"] = f"timed out after {settings.retrain_timeout_s:.0f} s"
            if run_record is not None:
                run = run_record.dagster_run
                note["detail"] = note["detail"] or f"run {run.run_id} {run.status.value}"
        return self.conclude(onset, run_record, answered_at, drifted)

    def conclude(
        self, onset: float, record: Any, answered_at: float | None, drifted: TrafficRows
    ) -> LoopSummary:
        """(6) Read the decision and deployment of the run; time everything from the onset."""
        timings: dict[str, float] = {}
        report = None
        if record is not None:
            created = record.create_timestamp.timestamp()
            report = self.read.newest_before("drift_report", created, with_verdict=True)
            performance = self.read.newest_before("model_performance", created, with_verdict=True)
            self.facts["performance"] = pick(performance, PERFORMANCE_KEYS)
        if report is not None:
            self.facts["drift_report"] = pick(report, DRIFT_KEYS)
            timings["monitoring report after drift"] = report.timestamp - onset
        if record is None:
            self.facts["timings"] = timings
            self.facts["serving_version"] = self.serving()
            return self._summary(False, "the drift sensor launched no retraining_job in time")
        run = record.dagster_run
        self.facts["retraining_run_id"] = run.run_id
        self.facts["retraining_status"] = run.status.value
        self.facts["trigger"] = run.tags.get("mlops/trigger", "")
        timings["retraining run created"] = record.create_timestamp.timestamp() - onset
        decision = self.read.newest("champion_model", run_id=run.run_id)
        deployment = self.read.newest("model_deployment", run_id=run.run_id)
        self.facts["decision"] = pick(decision, DECISION_KEYS)
        self.facts["deployment"] = pick(deployment, DEPLOY_KEYS)
        if decision is not None:
            timings["decision recorded"] = decision.timestamp - onset
        if record.end_time:
            timings["retraining run finished"] = record.end_time - onset
        promoted = decision is not None and decision.get("decision") == "promote"
        if promoted and answered_at is None:
            answered_at = self._wait_answer(drifted, int(decision.get("challenger_version")))
        if answered_at is not None:
            timings["new version answering"] = answered_at - onset
        self.facts["timings"] = {key: round(value, 1) for key, value in timings.items()}
        self.facts["serving_version"] = self.probe(drifted)
        if run.status.value != "SUCCESS":
            return self._summary(False, f"retraining run {run.run_id} ended {run.status.value}")
        if promoted:
            return self._summary(True, "drift detected, retrained, promoted and now serving")
        reason = (decision.get("reason") if decision else None) or "no decision recorded"
        return self._summary(True, f"drift detected and retrained; new version kept out: {reason}")

    def _wait_answer(self, drifted: TrafficRows, version: int) -> float | None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.probe(drifted) == version:
                return time.time()
            time.sleep(0.5)
        return None
