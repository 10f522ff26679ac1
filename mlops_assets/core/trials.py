"""Finished hyperopt trials: outcomes, the driver-side recorder, child runs, backends.

hyperopt calls :class:`TrialRecorder` through its ``early_stop_fn`` hook after trials
finish, on the driver, for both sequential ``Trials`` and ``SparkTrials``. The recorder
turns each finished trial document into a :class:`TrialOutcome` once, in trial order,
and hands it on: :class:`ChildRunWriter` queues it to be written as a finished MLflow child
run of the search's parent run and calls the caller's progress callback. The child runs are
written by one background thread, in trial order, while the next trial fits: the three
store round trips of a child run (create, one ``log_batch``, terminate) are off the
trial's critical path. A write failure surfaces at the next trial (stopping the search) or
at :meth:`ChildRunWriter.close`, which the search calls however it ends.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import mlflow
import numpy as np
from hyperopt import STATUS_OK
from mlflow.entities import Metric, Param, RunTag
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME

logger = logging.getLogger(__name__)


def clean_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Turn hyperopt's sampled values into plain ints and floats."""
    cleaned: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, np.integer | int) and not isinstance(value, bool):
            cleaned[key] = int(value)
        elif isinstance(value, np.floating | float):
            cleaned[key] = float(value)
        else:
            cleaned[key] = value
    return cleaned


TrialCallback = Callable[["TrialOutcome", "TrialOutcome | None", int], None]
"""Called on the driver after each trial: ``(outcome, best so far, budget)``."""


@dataclass(frozen=True)
class TrialOutcome:
    """What one finished trial reported.

    Attributes:
        number: 1-based trial number (hyperopt tid + 1).
        params: Hyperparameters tried (seed and threads excluded).
        ok: Whether the trial produced a model.
        metrics: Validation metrics (``valid_kappa``, ...) and timings; empty on failure.
        error: The failure, ``Type: message``; empty when ok.
    """

    number: int
    params: dict[str, Any]
    ok: bool
    metrics: dict[str, float] = field(default_factory=dict)
    error: str = ""

    @property
    def kappa(self) -> float:
        """Validation kappa (NaN for a failed trial)."""
        return self.metrics.get("valid_kappa", float("nan"))


def outcome_of(trial: Mapping[str, Any]) -> TrialOutcome:
    """Read a finished hyperopt trial document into a :class:`TrialOutcome`."""
    result = trial.get("result") or {}
    params = result.get("params")
    if params is None:  # the objective never returned (a worker failure): raw sampled values
        params = {key: found[0] for key, found in trial["misc"]["vals"].items() if len(found)}
    number = int(trial["tid"]) + 1
    if result.get("status") == STATUS_OK:
        return TrialOutcome(number, clean_params(params), True, dict(result["metrics"]))
    error = result.get("error") or str((trial["misc"].get("error") or ("", "failed"))[1])
    return TrialOutcome(number, clean_params(params), False, error=error)


def is_finished(trial: Mapping[str, Any]) -> bool:
    """Whether a trial document holds a final result (done, failed or cancelled)."""
    from hyperopt.base import JOB_STATE_CANCEL, JOB_STATE_DONE, JOB_STATE_ERROR

    return trial["state"] in (JOB_STATE_DONE, JOB_STATE_ERROR, JOB_STATE_CANCEL)


class TrialRecorder:
    """Driver-side hook: records each finished trial once, in trial order.

    Called by hyperopt as ``early_stop_fn(trials, *args)``; returns ``(stop, args)``. It
    hands each new outcome to ``on_outcome`` (which writes the MLflow child run and the
    Dagster log line) and stops the search after ``patience`` trials without improvement.
    An exception from ``on_outcome`` (say, the tracking server went away) stops the search
    and is raised again by :meth:`raise_failure` on the driver: ``SparkTrials`` calls this
    hook from its dispatcher thread, where an exception would leave ``fmin`` waiting.

    Attributes:
        outcomes: Outcomes recorded so far, in trial order.
    """

    def __init__(self, on_outcome: Callable[[TrialOutcome], None], patience: int = 0) -> None:
        self.outcomes: list[TrialOutcome] = []
        self._seen: set[int] = set()
        self._on_outcome = on_outcome
        self._patience = patience
        self._failure: Exception | None = None

    @property
    def best(self) -> TrialOutcome | None:
        """The successful outcome with the highest validation kappa so far."""
        ok = [outcome for outcome in self.outcomes if outcome.ok]
        return max(ok, key=lambda outcome: outcome.kappa) if ok else None

    def sweep(self, trials: Any) -> None:
        """Record every finished trial not recorded yet."""
        for trial in sorted(trials.trials, key=lambda doc: doc["tid"]):
            if trial["tid"] in self._seen or not is_finished(trial):
                continue
            self._seen.add(trial["tid"])
            outcome = outcome_of(trial)
            self.outcomes.append(outcome)
            self._on_outcome(outcome)

    def raise_failure(self) -> None:
        """Raise the exception that stopped the search from inside the hook, if any."""
        if self._failure is not None:
            raise self._failure

    def __call__(self, trials: Any, *args: Any) -> tuple[bool, list[Any]]:
        """Hyperopt's ``early_stop_fn``: record new trials, then decide whether to stop."""
        if self._failure is not None:
            return True, list(args)
        try:
            self.sweep(trials)
        except Exception as error:
            self._failure = error
            return True, list(args)
        best = self.best
        if not self._patience or best is None:
            return False, list(args)
        since_best = sum(1 for outcome in self.outcomes if outcome.number > best.number)
        return since_best >= self._patience, list(args)


def make_trials(parallelism: int = 1, spark_session: Any | None = None) -> Any:
    """Return hyperopt ``Trials`` (sequential), or ``SparkTrials`` given a Spark session.

    Args:
        parallelism: Concurrent trials for ``SparkTrials``.
        spark_session: A classic (not Connect) SparkSession; None for sequential trials.

    Raises:
        SparkSessionError: For a Spark Connect session (hyperopt needs a SparkContext).
    """
    if spark_session is None:
        from hyperopt import Trials

        return Trials()
    from mlops_assets.core.spark import spark_trials

    return spark_trials(parallelism, spark_session)


class ChildRunWriter:
    """Writes one finished MLflow child run per trial under ``parent``, then reports it.

    Writes run on one background thread, in trial order; call :meth:`close` when the search
    ends (it waits for every queued write and raises the first write failure).

    Args:
        parent: The active parent run (``mlflow.ActiveRun``).
        on_trial: Progress callback, or None.
        budget: The trial budget, passed to ``on_trial``.
    """

    def __init__(self, parent: Any, on_trial: TrialCallback | None, budget: int) -> None:
        self.client = mlflow.MlflowClient()
        self.parent = parent
        self.on_trial = on_trial
        self.budget = budget
        self.best: TrialOutcome | None = None
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="child-runs")
        self._pending: list[Future[None]] = []

    def __call__(self, outcome: TrialOutcome) -> None:
        """Queue ``outcome``'s child run (FINISHED, or FAILED with its error), report it.

        Raises:
            Exception: The failure of an earlier child run's write, if any.
        """
        self._raise_done_failures()
        now = int(time.time() * 1000)
        self._pending.append(self._writer.submit(self._write, outcome, now))
        if outcome.ok and (self.best is None or outcome.kappa > self.best.kappa):
            self.best = outcome
        if self.on_trial is not None:
            self.on_trial(outcome, self.best, self.budget)

    def close(self, quiet: bool = False) -> None:
        """Wait for every queued child run; raise the first write failure, if any.

        Args:
            quiet: Log write failures as warnings instead of raising (used while another
                error propagates, so that it is the one reported).
        """
        self._writer.shutdown(wait=True)
        pending, self._pending = self._pending, []
        for future in pending:
            try:
                future.result()
            except Exception as error:
                if not quiet:
                    raise
                logger.warning("could not write an MLflow child run: %s", error)

    def _raise_done_failures(self) -> None:
        done = [future for future in self._pending if future.done()]
        self._pending = [future for future in self._pending if not future.done()]
        for future in done:
            future.result()

    def _write(self, outcome: TrialOutcome, now: int) -> None:
        tags = {MLFLOW_PARENT_RUN_ID: self.parent.info.run_id}
        tags[MLFLOW_RUN_NAME] = f"trial-{outcome.number:03d}"
        child = self.client.create_run(self.parent.info.experiment_id, tags=tags)
        status = "FINISHED" if outcome.ok else "FAILED"
        try:
            self.client.log_batch(
                child.info.run_id,
                metrics=[Metric(key, value, now, 0) for key, value in outcome.metrics.items()],
                params=[Param(key, str(value)) for key, value in outcome.params.items()],
                tags=[RunTag("error", outcome.error[:4000])] if outcome.error else [],
            )
        finally:
            self.client.set_terminated(child.info.run_id, status)
