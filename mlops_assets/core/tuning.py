"""Hyperopt TPE search: Cohen's kappa on the validation split, one MLflow child run per trial.

Search space of the default XGBoost classifier (:data:`XGBOOST_SPACE`):

============================  =========================================  ==================
parameter                     distribution                               range
============================  =========================================  ==================
``max_depth``                 uniform integer                            3 .. 7
``n_estimators``              quantised uniform, step 50                 100 .. 500
``learning_rate``             log-uniform                                0.02 .. 0.3
``min_child_weight``          log-uniform                                0.5 .. 20
``subsample``                 uniform                                    0.5 .. 1.0
``colsample_bytree``          uniform                                    0.4 .. 1.0
``reg_alpha``                 log-uniform                                1e-3 .. 10
``reg_lambda``                log-uniform                                1e-2 .. 100
``scale_pos_weight``          log-uniform, only when resampling is off   1 .. 600
============================  =========================================  ==================

The ranges keep one fit on the full credit-card train split to a few seconds on two
threads (``hist``), so a 100-trial search fits in 15 minutes. On that data the validation
kappa is flat beyond ~250 trees and depth 6 (deeper or longer fits cost time, not kappa),
hence the caps. Not searched: ``num_parallel_tree`` (several trees per round, each on its
own sample, averaged: a bagged booster that stays one ``XGBClassifier``). Single fits on the
credit-card validation splits of split seeds 42, 0 and 1 (depth 6, learning rate 0.1, four
trees per round, row and column-by-node samples 0.8) gained 0.004 PR AUC, but in the
search (1..3 trees per round, split seed 42) the winner had one tree per round, the CPU
per trial doubled and the test figures did not improve.
``scale_pos_weight`` is searched only without resampling: ADASYN/SMOTE already raise the
positive share, and weighting on top would count it twice. Its range reaches the
negative-to-positive ratio of the credit-card data (~600): without resampling, weights 30
and 598 scored validation PR AUC 0.876 and weight 1 0.868 (single fits of 200 trees, depth
6, learning rate 0.1, same validation splits, mean of the three).

``n_estimators`` is an upper bound: with early stopping (``SearchSettings``, default 50
rounds without a better validation log loss, the classifier's ``eval_metric``; PR AUC
stopped low learning rates after a few trees, see
:func:`~mlops_assets.core.model.xgboost_classifier`) a trial keeps its best iteration and
records the trees kept (metric ``trees``); the final model is refitted with that many trees.

The preprocessing is fitted once per search (:mod:`mlops_assets.core.trial_fit`): every
trial fits only the classifier on the cached train matrix, scores the cached validation
matrix, picks the kappa-optimal threshold there and reports kappa (the objective, negated
as loss), F1, ROC AUC, PR AUC, precision and recall. The test split is never seen here.

The objective is pure (no MLflow, no logging), so it runs unchanged in hyperopt's
sequential ``Trials`` or in ``SparkTrials`` workers. Child runs are written on the driver
by :class:`mlops_assets.core.trials.TrialRecorder`, which hyperopt calls after finished
trials through its ``early_stop_fn`` hook (both backends call it on the driver); a final
sweep catches trials finished after the last call.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from hyperopt import STATUS_FAIL, STATUS_OK, hp
from hyperopt.pyll import scope

from mlops_assets.constants import LABEL_COLUMN
from mlops_assets.core.model import ClassifierFactory
from mlops_assets.core.sorted_metrics import threshold_and_metrics
from mlops_assets.core.thresholds import check_binary_labels
from mlops_assets.core.trial_fit import TREES_METRIC, TrialFitter, search_matrices
from mlops_assets.core.trials import TrialOutcome, TrialRecorder, clean_params

XGBOOST_SPACE: dict[str, Any] = {
    "max_depth": scope.int(hp.quniform("max_depth", 3, 7, 1)),
    "n_estimators": scope.int(hp.quniform("n_estimators", 100, 500, 50)),
    "learning_rate": hp.loguniform("learning_rate", np.log(0.02), np.log(0.3)),
    "min_child_weight": hp.loguniform("min_child_weight", np.log(0.5), np.log(20.0)),
    "subsample": hp.uniform("subsample", 0.5, 1.0),
    "colsample_bytree": hp.uniform("colsample_bytree", 0.4, 1.0),
    "reg_alpha": hp.loguniform("reg_alpha", np.log(1e-3), np.log(10.0)),
    "reg_lambda": hp.loguniform("reg_lambda", np.log(1e-2), np.log(100.0)),
}
SCALE_POS_WEIGHT_SPACE: dict[str, Any] = {
    "scale_pos_weight": hp.loguniform("scale_pos_weight", np.log(1.0), np.log(600.0)),
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


def score_trial(
    factory: ClassifierFactory,
    params: Mapping[str, Any],
    fixed: Mapping[str, Any],
    fitter: TrialFitter,
) -> dict[str, Any]:
    """Fit one candidate on the cached train matrix, choose its threshold, score it on valid.

    Returns:
        A hyperopt result dict: ``loss`` (negative kappa), ``status``, ``metrics`` (the
        validation metrics, the trees kept after early stopping, timings) and the ``params``
        used; on any exception ``status`` is ``fail`` with the ``error`` named.
    """
    try:
        started = time.perf_counter()
        fit = fitter.fit(factory({**params, **fixed}))
        labels = fitter.matrices.valid_labels
        _, result = threshold_and_metrics(labels, fit.scores, "split 'valid'")
        metrics = result.metrics("valid_")
        if fit.trees is not None:
            metrics[TREES_METRIC] = float(fit.trees)
        metrics.update(
            fit_seconds=fit.fit_seconds,
            fit_cpu_seconds=fit.fit_cpu_seconds,  # all threads: wall x cores when idle
            score_seconds=fit.score_seconds,
            trial_seconds=time.perf_counter() - started,
        )
        return {"loss": -result.kappa, "status": STATUS_OK, "metrics": metrics, "params": params}
    except Exception as error:  # a failed trial is reported, the search goes on
        error_text = f"{type(error).__name__}: {error}"
        return {"status": STATUS_FAIL, "error": error_text, "params": dict(params)}


def fit_and_score(
    factory: ClassifierFactory,
    params: Mapping[str, Any],
    fixed: Mapping[str, Any],
    train: SplitData,
    valid: SplitData,
    early_stopping_rounds: int = 0,
) -> dict[str, Any]:
    """One stand-alone trial: preprocess ``train``/``valid``, then :func:`score_trial`."""
    matrices = search_matrices(train, valid)
    return score_trial(factory, params, fixed, TrialFitter(matrices, early_stopping_rounds))


@dataclass(frozen=True)
class TrainingSplits:
    """Validated train / valid / test data.

    Attributes:
        train: Rows the candidates are fitted on (possibly resampled).
        valid: Rows the objective and the threshold are computed on.
        test: Rows the final model is evaluated on, once.
        columns: Feature columns, in model order.
    """

    train: SplitData
    valid: SplitData
    test: SplitData
    columns: tuple[str, ...]


def prepare_splits(
    train: pd.DataFrame, valid: pd.DataFrame, test: pd.DataFrame, columns: list[str]
) -> TrainingSplits:
    """Check the three splits and cut them into features and labels.

    Raises:
        ValueError: Naming the split and the problem: a missing label or feature column,
            labels that are not 0/1, or a split without positives (or negatives).
    """
    if not columns:
        raise ValueError("no feature columns: every column is the label, split or excluded")
    parts = {}
    for name, frame in (("train", train), ("valid", valid), ("test", test)):
        missing = [column for column in (LABEL_COLUMN, *columns) if column not in frame.columns]
        if missing:
            raise ValueError(f"split {name!r} is missing column(s) {missing}")
        labels = check_binary_labels(frame[LABEL_COLUMN].to_numpy(), f"split {name!r}")
        parts[name] = SplitData(frame[columns].reset_index(drop=True), labels)
    return TrainingSplits(**parts, columns=tuple(columns))


def make_objective(
    factory: ClassifierFactory, fixed: Mapping[str, Any], fitter: TrialFitter
) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Return the hyperopt objective (picklable for ``SparkTrials``)."""

    def objective(params: dict[str, Any]) -> dict[str, Any]:
        return score_trial(factory, clean_params(params), fixed, fitter)

    return objective


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
    recorder.raise_failure()
    recorder.sweep(trials)
    return list(recorder.outcomes)
