"""Tune, refit, evaluate and log a model: one MLflow parent run, one child run per trial.

:func:`train_and_log` is what the ``tuned_model`` asset calls, with splits checked by
:func:`mlops_assets.core.tuning.prepare_splits`. It checks the budget and that the tracking
store answers before anything is logged, opens the parent run with the lineage tags, runs the
search (:mod:`mlops_assets.core.tuning`), refits the best candidate and chooses its threshold
on the validation rows (:mod:`mlops_assets.core.final_model`), evaluates it once on the test
rows, and logs the model (:func:`mlops_assets.core.model_io.log_bundle`), the metrics and
the curve images.
However the search ends (error, interrupt), no run is left in the RUNNING state; a process
killed outright (SIGKILL) cannot end its runs, so every search first reaps the RUNNING runs
of dead owners (:mod:`mlops_assets.core.orphans`), and the parent run names its owner.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow

from mlops_assets.core.evaluation import Evaluation, curve_images, evaluate
from mlops_assets.core.final_model import final_parameters, refit_final
from mlops_assets.core.lineage import Lineage
from mlops_assets.core.model import ClassifierFactory
from mlops_assets.core.model import xgboost_classifier as default_factory
from mlops_assets.core.model_io import log_bundle
from mlops_assets.core.orphans import ReapReport, owner_tags, reap_orphans
from mlops_assets.core.registry import connect
from mlops_assets.core.tracking import TrackingTarget
from mlops_assets.core.trial_fit import TrialFitter, search_matrices
from mlops_assets.core.trials import (
    ChildRunWriter,
    TrialCallback,
    TrialOutcome,
    TrialRecorder,
    make_trials,
)
from mlops_assets.core.tuning import TrainingSplits, make_objective, run_search, xgboost_space

logger = logging.getLogger(__name__)


class SearchFailedError(RuntimeError):
    """Raised when no trial of the search produced a model."""


@dataclass(frozen=True)
class SearchSettings:
    """Knobs of one tuning run.

    Attributes:
        max_evals: Trial budget (at least 1).
        seed: Seed of the TPE sampler and of the classifier.
        timeout_s: Wall-clock limit of the search; None for none.
        patience: Stop after this many trials without improvement; 0 disables.
        parallelism: Concurrent trials with ``SparkTrials`` (ignored sequentially).
        nthread: Threads per model fit.
        early_stopping_rounds: Stop a trial's boosting after this many rounds without a
            better validation ``eval_metric`` (XGBoost); 0 fits every ``n_estimators`` tree.
        refit_rows: Rows the final model is fitted on, ``"train"`` or ``"train+valid"``
            (threshold from validation scores of the train-only fit either way; see
            :mod:`mlops_assets.core.final_model`).
    """

    max_evals: int = 25
    seed: int = 42
    timeout_s: float | None = None
    patience: int = 0
    parallelism: int = 2
    nthread: int = 2
    early_stopping_rounds: int = 50
    refit_rows: str = "train+valid"


@dataclass(frozen=True)
class TunedModel:
    """The best model of a search, logged on the MLflow parent run.

    Attributes:
        run_id: The parent run.
        experiment_id: Its experiment.
        model_uri: The logged pyfunc model (``models:/<model id>``).
        threshold: Decision threshold chosen on the validation split.
        best_params: Hyperparameters of the winning trial.
        metrics: ``valid_*`` and ``test_*`` metrics of the refitted model.
        lineage: Data, code and orchestration lineage (also the run's tags).
        trials_ok: Trials that produced a model.
        trials_failed: Trials that failed.
    """

    run_id: str
    experiment_id: str
    model_uri: str
    threshold: float
    best_params: dict[str, Any]
    metrics: dict[str, float]
    lineage: Lineage
    trials_ok: int
    trials_failed: int


@dataclass(frozen=True)
class TrainingReport:
    """A :class:`TunedModel` with what the materialization shows about it.

    Attributes:
        model: The tuned model.
        valid: Metrics of the refitted model on the validation split.
        test: Metrics on the test split.
        images: PNG images by file name (ROC, PR, confusion matrix on test).
        search_seconds: Wall time of the search (preprocessing and child-run logging included).
        fit_seconds: Time spent fitting models inside trials.
        score_seconds: Time spent predicting the validation split inside trials.
        outcomes: Every trial, in order.
        search_cpu_seconds: CPU time (user + system, all threads of this process) of the
            search: what it costs whatever else loads the machine.
        reaped: Orphaned runs of dead owners ended before the search (None: not checked).
    """

    model: TunedModel
    valid: Evaluation
    test: Evaluation
    images: dict[str, bytes] = field(repr=False)
    search_seconds: float
    fit_seconds: float
    score_seconds: float
    outcomes: tuple[TrialOutcome, ...] = field(repr=False)
    reaped: ReapReport | None = None
    search_cpu_seconds: float = 0.0


def _end_run(status: str) -> None:
    """End the active run with ``status``; a failure to do so must not hide the cause."""
    try:
        mlflow.end_run(status)
    except Exception as error:  # the store itself may be what failed
        logger.warning("could not mark MLflow run %s: %s", status, error)


def _search(
    splits: TrainingSplits,
    settings: SearchSettings,
    factory: ClassifierFactory,
    space: Mapping[str, Any],
    children: ChildRunWriter,
    spark_session: Any | None,
) -> tuple[list[TrialOutcome], float, float]:
    fixed = {"seed": settings.seed, "nthread": settings.nthread}
    started, cpu_started = time.perf_counter(), time.process_time()  # preprocessing included
    matrices = search_matrices(splits.train, splits.valid)
    fitter = TrialFitter(matrices, settings.early_stopping_rounds)
    objective = make_objective(factory, fixed, fitter)
    trials = make_trials(settings.parallelism, spark_session)
    recorder = TrialRecorder(children, settings.patience)
    try:
        outcomes = run_search(
            objective,
            space,
            trials,
            recorder,
            settings.max_evals,
            settings.seed,
            settings.timeout_s,
        )
    except BaseException:
        children.close(quiet=True)  # no child run left RUNNING; the search's error wins
        raise
    children.close()  # every child run written; a write failure fails the search
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    if not outcomes:
        raise SearchFailedError(f"no trial finished within the timeout of {settings.timeout_s} s")
    if not any(outcome.ok for outcome in outcomes):
        first = outcomes[0].error
        raise SearchFailedError(f"all {len(outcomes)} trials of the search failed; first: {first}")
    return outcomes, seconds, cpu_seconds


def train_and_log(
    target: TrackingTarget,
    splits: TrainingSplits,
    lineage: Lineage,
    settings: SearchSettings = SearchSettings(),
    factory: ClassifierFactory = default_factory,
    space: Mapping[str, Any] | None = None,
    on_trial: TrialCallback | None = None,
    spark_session: Any | None = None,
    is_run_over: Callable[[str], bool | None] | None = None,
) -> TrainingReport:
    """Search, refit the best candidate and log everything under one MLflow parent run.

    Args:
        target: MLflow tracking server / registry and experiment.
        splits: From :func:`prepare_splits`.
        lineage: Tags for the parent run.
        settings: Budget, seed, timeout, early stop, parallelism, threads.
        factory: Classifier factory (default XGBoost); any sklearn classifier fits here.
        space: Hyperopt space for ``factory``; default the XGBoost space for the lineage's
            resampling method.
        on_trial: Called after each trial with (outcome, best so far, budget).
        spark_session: Run trials with ``SparkTrials`` on this session; None: sequential.
        is_run_over: Whether a Dagster run id names a finished run (None: unknown); lets
            the orphan reaping end runs of dead owners on other hosts too.

    Returns:
        The report: tuned model, validation and test metrics, images, timings.

    Raises:
        ValueError: A budget below 1.
        TrackingUnavailableError: MLflow cannot be reached.
        SearchFailedError: Every trial failed.
    """
    if settings.max_evals < 1:
        raise ValueError(f"max_evals must be at least 1, got {settings.max_evals}")
    chosen_space = space if space is not None else xgboost_space(lineage.resampling_method)
    experiment_id = connect(target)
    reaped = reap_orphans(target.client(), experiment_id, is_run_over)
    if reaped.reaped:
        logger.warning("before the search: %s", reaped.describe())
    parent = mlflow.start_run(
        experiment_id=experiment_id,
        run_name="tuned_model",
        tags={**lineage.tags(), **owner_tags()},
    )
    try:
        mlflow.log_params({f"search.{key}": value for key, value in vars(settings).items()})
        children = ChildRunWriter(parent, on_trial, settings.max_evals)
        outcomes, search_seconds, search_cpu = _search(
            splits, settings, factory, chosen_space, children, spark_session
        )
        best = max((outcome for outcome in outcomes if outcome.ok), key=lambda o: o.kappa)
        final_params = final_parameters(best)
        params = {**final_params, "seed": settings.seed, "nthread": settings.nthread}
        final = refit_final(splits, factory, params, settings.refit_rows)
        bundle, valid = final.bundle, final.valid
        test_scores = bundle.predict_proba(splits.test.features)
        test = evaluate(splits.test.labels, test_scores, bundle.threshold, "split 'test'")
        metrics = {**valid.metrics("valid_"), **test.metrics("test_")}
        images = curve_images(splits.test.labels, test_scores, test)
        mlflow.log_params(final_params)
        mlflow.log_metrics({**metrics, "best_trial": best.number, "trials": len(outcomes)})
        with tempfile.TemporaryDirectory() as scratch:
            for name, png in images.items():
                (Path(scratch) / name).write_bytes(png)
            mlflow.log_artifacts(scratch, artifact_path="plots")
        model_uri = log_bundle(
            bundle,
            splits.valid.features,
            extra={"metrics": metrics, "params": final_params, "lineage": lineage.tags()},
        )
    except KeyboardInterrupt:
        _end_run("KILLED")
        raise
    except BaseException:
        _end_run("FAILED")
        raise
    mlflow.end_run("FINISHED")
    fit_seconds = sum(o.metrics.get("fit_seconds", 0.0) for o in outcomes)
    score_seconds = sum(o.metrics.get("score_seconds", 0.0) for o in outcomes)
    tuned = TunedModel(
        run_id=parent.info.run_id,
        experiment_id=experiment_id,
        model_uri=model_uri,
        threshold=bundle.threshold,
        best_params=final_params,
        metrics=metrics,
        lineage=lineage,
        trials_ok=sum(1 for outcome in outcomes if outcome.ok),
        trials_failed=sum(1 for outcome in outcomes if not outcome.ok),
    )
    return TrainingReport(
        tuned,
        valid,
        test,
        images,
        search_seconds,
        fit_seconds,
        score_seconds,
        tuple(outcomes),
        reaped,
        search_cpu,
    )
