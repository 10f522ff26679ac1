"""Hyperopt TPE search: Cohen's kappa on the validation split, one MLflow child run per trial.

Search space of the default XGBoost classifier (:data:`XGBOOST_SPACE`):

============================  =========================================  ==================
parameter                     distribution                               range
============================  =========================================  ==================
``max_depth``                 uniform integer                            3 .. 8
``n_estimators``              quantised uniform, step 50                 100 .. 600
``learning_rate``             log-uniform                                0.02 .. 0.3
``min_child_weight``          log-uniform                                0.5 .. 20
``subsample``                 uniform                                    0.5 .. 1.0
``colsample_bytree``          uniform                                    0.4 .. 1.0
``reg_alpha``                 log-uniform                                1e-3 .. 10
``reg_lambda``                log-uniform                                1e-2 .. 100
``scale_pos_weight``          log-uniform, only when resampling is off   1 .. 100
============================  =========================================  ==================

The ranges keep one fit on the full credit-card train split to a few seconds on two
threads (``hist``), so a 100-trial search fits in 15 minutes. ``scale_pos_weight`` is
searched only without resampling: after ADASYN/SMOTE the classes are already balanced.

Every trial fits the pipeline on the train rows, scores the validation rows, picks the
kappa-optimal threshold there and reports kappa (the objective, negated as loss), F1,
ROC AUC, PR AUC, precision and recall. The test split is never seen here.

The objective is pure (no MLflow, no logging), so it runs unchanged in hyperopt's
sequential ``Trials`` or in ``SparkTrials`` workers. Child runs are written on the driver
by :class:`TrialRecorder`, which hyperopt calls after each finished trial through its
``early_stop_fn`` hook (both backends call it on the driver); a final sweep catches
trials finished after the last call.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from hyperopt import STATUS_FAIL, STATUS_OK, hp
from hyperopt.pyll import scope

from mlops_assets.core.evaluation import evaluate
from mlops_assets.core.model import ClassifierFactory, build_pipeline, positive_probability
from mlops_assets.core.thresholds import best_kappa_threshold

XGBOOST_SPACE: dict[str, Any] = {
    "max_depth": scope.int(hp.quniform("max_depth", 3, 8, 1)),
    "n_estimators": scope.int(hp.quniform("n_estimators", 100, 600, 50)),
    "learning_rate": hp.loguniform("learning_rate", np.log(0.02), np.log(0.3)),
    "min_child_weight": hp.loguniform("min_child_weight", np.log(0.5), np.log(20.0)),
    "subsample": hp.uniform("subsample", 0.5, 1.0),
    "colsample_bytree": hp.uniform("colsample_bytree", 0.4, 1.0),
    "reg_alpha": hp.loguniform("reg_alpha", np.log(1e-3), np.log(10.0)),
    "reg_lambda": hp.loguniform("reg_lambda", np.log(1e-2), np.log(100.0)),
}
SCALE_POS_WEIGHT_SPACE: dict[str, Any] = {
    "scale_pos_weight": hp.loguniform("scale_pos_weight", np.log(1.0), np.log(100.0)),
}


def xgboost_space(resampling_method: str) -> dict[str, Any]:
    """Return the XGBoost search space; ``scale_pos_weight`` only when resampling is off."""
    if resampling_method.lower() == "none":
        return {**XGBOOST_SPACE, **SCALE_POS_WEIGHT_SPACE}
    return dict(XGBOOST_SPACE)


@dataclass(frozen=True)
class SplitData:
    """Features and 0/1 labels of one split.

    Attributes:
        features: Raw feature columns.
        labels: 0/1 labels, aligned with ``features``.
    """

    features: pd.DataFrame
    labels: np.ndarray


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


def fit_and_score(
    factory: ClassifierFactory,
    params: Mapping[str, Any],
    fixed: Mapping[str, Any],
    train: SplitData,
    valid: SplitData,
) -> dict[str, Any]:
    """Fit one candidate on train, choose its threshold and score it on valid.

    Returns:
        A hyperopt result dict: ``loss`` (negative kappa), ``status``, ``metrics`` and the
        ``params`` used; on any exception ``status`` is ``fail`` with the ``error`` named.
    """
    try:
        started = time.perf_counter()
        pipeline = build_pipeline(train.features, factory({**params, **fixed}))
        pipeline.fit(train.features, train.labels)
        fitted = time.perf_counter()
        scores = positive_probability(pipeline, valid.features)
        scored = time.perf_counter()
        choice = best_kappa_threshold(valid.labels, scores)
        result = evaluate(valid.labels, scores, choice.threshold, "split 'valid'")
        metrics = result.metrics("valid_")
        metrics.update(
            fit_seconds=fitted - started,
            score_seconds=scored - fitted,
            trial_seconds=time.perf_counter() - started,
        )
        return {"loss": -result.kappa, "status": STATUS_OK, "metrics": metrics, "params": params}
    except Exception as error:  # a failed trial is reported, the search goes on
        error_text = f"{type(error).__name__}: {error}"
        return {"status": STATUS_FAIL, "error": error_text, "params": dict(params)}


def make_objective(
    factory: ClassifierFactory,
    fixed: Mapping[str, Any],
    train: SplitData,
    valid: SplitData,
) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Return the hyperopt objective (picklable for ``SparkTrials``)."""

    def objective(params: dict[str, Any]) -> dict[str, Any]:
        return fit_and_score(factory, clean_params(params), fixed, train, valid)

    return objective


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

    Attributes:
        outcomes: Outcomes recorded so far, in trial order.
    """

    def __init__(self, on_outcome: Callable[[TrialOutcome], None], patience: int = 0) -> None:
        self.outcomes: list[TrialOutcome] = []
        self._seen: set[int] = set()
        self._on_outcome = on_outcome
        self._patience = patience

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

    def __call__(self, trials: Any, *args: Any) -> tuple[bool, list[Any]]:
        """Hyperopt's ``early_stop_fn``: record new trials, then decide whether to stop."""
        self.sweep(trials)
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


def run_search(
    objective: Callable[[dict[str, Any]], dict[str, Any]],
    space: Mapping[str, Any],
    trials: Any,
    recorder: TrialRecorder,
    max_evals: int,
    seed: int,
    timeout_s: float | None = None,
) -> list[TrialOutcome]:
    """Run TPE until ``max_evals`` trials, the timeout, or the recorder's early stop.

    Args:
        objective: From :func:`make_objective`.
        space: Hyperopt search space.
        trials: From :func:`make_trials`.
        recorder: Records each finished trial (child run, log line) and may stop early.
        max_evals: Trial budget (at least 1).
        seed: Seed of the TPE sampler.
        timeout_s: Wall-clock limit of the search in seconds; None for none.

    Returns:
        Every recorded outcome, in trial order.
    """
    from functools import partial

    from hyperopt import fmin, tpe
    from hyperopt.exceptions import AllTrialsFailed

    if max_evals < 1:
        raise ValueError(f"max_evals must be at least 1, got {max_evals}")
    startup = max(1, min(20, max_evals // 3))
    try:
        fmin(
            objective,
            dict(space),
            algo=partial(tpe.suggest, n_startup_jobs=startup),
            max_evals=max_evals,
            timeout=timeout_s,
            trials=trials,
            rstate=np.random.default_rng(seed),
            early_stop_fn=recorder,
            show_progressbar=False,
            return_argmin=False,
        )
    except AllTrialsFailed:  # Trials.fmin asks for the argmin anyway; the caller reports it
        pass
    recorder.sweep(trials)
    return list(recorder.outcomes)
