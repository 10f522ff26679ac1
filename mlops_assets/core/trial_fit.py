"""One trial's fit on matrices preprocessed once per search.

The preprocessing step of the pipeline (imputation, one-hot encoding) is fitted on the
train rows only and has no hyperparameter, so every trial would fit exactly the same
transformer. :func:`search_matrices` fits it once and keeps the transformed train and
validation rows as contiguous float32 arrays (what XGBoost reads without a copy); each
trial then only fits the classifier.

XGBoost classifiers are trained natively (``xgboost.train``) on a ``QuantileDMatrix`` built
once per process, with the parameters the scikit-learn wrapper would pass
(``get_xgb_params``), so the booster is the one ``XGBClassifier.fit`` would build on the
same rows. ``n_estimators`` is an upper bound: with early stopping on the validation split
the trial keeps the best iteration and reports how many trees it used; the final pipeline is
refitted with that many trees and no early stopping, so serving sees a plain classifier.
Validation scores: with early stopping, XGBoost has already predicted the validation rows
with every tree it built (its prediction cache, kept up to date to evaluate the stopping
metric); the scores of the best iteration are that cached margin minus the margin of the
trees built after it (``early_stopping_rounds`` trees, not the ``best_iteration + 1`` kept),
taken just before ``xgboost.train`` drops its caches (:class:`_BestIterationScores`). This
equals ``inplace_predict`` up to float32 rounding (below 1e-6). Without early stopping the
scores come from ``inplace_predict`` on the cached array. Any other classifier is fitted
with ``fit(matrix, labels)`` and scored with ``predict_proba``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from xgboost.callback import EarlyStopping, TrainingCallback

from mlops_assets.core.model import build_preprocessor

TREES_METRIC = "trees"
"""Metric (child runs) holding the boosting rounds a trial kept after early stopping."""


@dataclass(frozen=True)
class SearchMatrices:
    """Train and validation rows after the (hyperparameter-free) preprocessing.

    Attributes:
        train: Transformed train rows, float32, C-contiguous.
        train_labels: 0/1 labels of the train rows.
        valid: Transformed validation rows, float32, C-contiguous.
        valid_labels: 0/1 labels of the validation rows.
        seconds: Time taken to fit the preprocessing and transform both splits.
    """

    train: np.ndarray
    train_labels: np.ndarray
    valid: np.ndarray
    valid_labels: np.ndarray
    seconds: float


def search_matrices(train: Any, valid: Any) -> SearchMatrices:
    """Fit the pipeline's preprocessing on ``train`` and transform both splits once.

    Args:
        train: The train :class:`~mlops_assets.core.tuning.SplitData`.
        valid: The validation :class:`~mlops_assets.core.tuning.SplitData`.

    Returns:
        The cached matrices.
    """
    started = time.perf_counter()
    preprocessor = build_preprocessor(train.features)
    train_matrix = preprocessor.fit_transform(train.features)  # fit alone would transform too

    def matrix(transformed: Any) -> np.ndarray:
        return np.ascontiguousarray(transformed, dtype=np.float32)

    return SearchMatrices(
        train=matrix(train_matrix),
        train_labels=np.asarray(train.labels),
        valid=matrix(preprocessor.transform(valid.features)),
        valid_labels=np.asarray(valid.labels),
        seconds=time.perf_counter() - started,
    )


@dataclass(frozen=True)
class TrialFit:
    """Validation scores of one fitted candidate.

    Attributes:
        scores: Positive-class probability of each validation row.
        trees: Boosting rounds kept (best iteration + 1) for XGBoost; None otherwise.
        fit_seconds: Wall time of the fit.
        fit_cpu_seconds: CPU time of the fit (all threads of this process).
        score_seconds: Wall time of scoring the validation rows.
    """

    scores: np.ndarray
    trees: int | None
    fit_seconds: float
    fit_cpu_seconds: float
    score_seconds: float


def _native_xgboost(classifier: Any) -> bool:
    """Whether ``classifier`` is an XGBoost model the native path reproduces exactly."""
    try:
        from xgboost import XGBClassifier
    except ImportError:  # pragma: no cover - xgboost is a dependency
        return False
    return (
        isinstance(classifier, XGBClassifier)
        and isinstance(classifier.objective, str)
        and (classifier.eval_metric is None or isinstance(classifier.eval_metric, str))
        and classifier.tree_method in (None, "hist")
        and classifier.callbacks is None
    )


class TrialFitter:
    """Fits candidates on cached matrices; picklable (``SparkTrials`` ships it to workers).

    Args:
        matrices: From :func:`search_matrices`.
        early_stopping_rounds: Stop boosting after this many rounds without improvement of
            the classifier's ``eval_metric`` on the validation split; 0 disables.
    """

    def __init__(self, matrices: SearchMatrices, early_stopping_rounds: int = 0) -> None:
        if early_stopping_rounds < 0:
            raise ValueError(f"early_stopping_rounds must be >= 0, got {early_stopping_rounds}")
        self.matrices = matrices
        self.early_stopping_rounds = early_stopping_rounds
        self._dmatrices: tuple[Any, Any, int | None] | None = None

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without the DMatrix cache (native handles); workers rebuild it."""
        return {**self.__dict__, "_dmatrices": None}

    def _data(self, max_bin: int | None, nthread: int | None) -> tuple[Any, Any]:
        """The train / validation DMatrix, built once (again only if ``max_bin`` changes)."""
        from xgboost import QuantileDMatrix

        if self._dmatrices is None or self._dmatrices[2] != max_bin:
            data = self.matrices
            train = QuantileDMatrix(data.train, data.train_labels, max_bin=max_bin, nthread=nthread)
            valid = QuantileDMatrix(
                data.valid, data.valid_labels, ref=train, max_bin=max_bin, nthread=nthread
            )
            self._dmatrices = (train, valid, max_bin)
        return self._dmatrices[0], self._dmatrices[1]

    def fit(self, classifier: Any) -> TrialFit:
        """Fit ``classifier`` on the train matrix and score the validation matrix."""
        started, cpu_started = time.perf_counter(), time.process_time()
        if _native_xgboost(classifier):
            return self._fit_xgboost(classifier, started, cpu_started)
        classifier.fit(self.matrices.train, self.matrices.train_labels)
        return _score_after_fit(
            lambda: np.asarray(classifier.predict_proba(self.matrices.valid))[:, 1],
            None,
            started,
            cpu_started,
        )

    def _fit_xgboost(self, classifier: Any, started: float, cpu_started: float) -> TrialFit:
        import xgboost

        params = classifier.get_xgb_params()
        rounds = classifier.get_num_boosting_rounds()
        train, valid = self._data(classifier.max_bin, classifier.n_jobs)
        if not self.early_stopping_rounds:
            booster = xgboost.train(params, train, rounds, verbose_eval=False)
            return _score_after_fit(
                lambda: booster.inplace_predict(
                    self.matrices.valid, iteration_range=(0, rounds), missing=classifier.missing
                ),
                rounds,
                started,
                cpu_started,
            )
        best = _BestIterationScores(valid)
        xgboost.train(
            params,
            train,
            rounds,
            evals=[(valid, "valid")],
            callbacks=[EarlyStopping(rounds=self.early_stopping_rounds), best],
            verbose_eval=False,
        )
        # Scoring ran inside xgboost.train (before its caches went): count it as scoring.
        ended, cpu_ended = time.perf_counter(), time.process_time()
        return TrialFit(
            scores=best.scores,
            trees=best.trees,
            fit_seconds=ended - started - best.seconds,
            fit_cpu_seconds=cpu_ended - cpu_started - best.cpu_seconds,
            score_seconds=best.seconds,
        )


def _score_after_fit(
    score: Callable[[], Any], trees: int | None, started: float, cpu_started: float
) -> TrialFit:
    """Run ``score`` now: the fit took the time since ``started``, the scoring what it takes."""
    fitted, cpu_fitted = time.perf_counter(), time.process_time()
    scores = score()
    return TrialFit(
        scores=np.asarray(scores, dtype=np.float64),
        trees=trees,
        fit_seconds=fitted - started,
        fit_cpu_seconds=cpu_fitted - cpu_started,
        score_seconds=time.perf_counter() - fitted,
    )


def _logit(probability: float) -> float:
    return float(np.log(probability) - np.log1p(-probability))


class _BestIterationScores(TrainingCallback):
    """Validation probabilities of the best iteration, read from XGBoost's prediction cache.

    Runs after :class:`~xgboost.callback.EarlyStopping` (which records ``best_iteration``).
    At the end of training the cache holds the margin of every tree built; the best
    iteration's margin is that minus the margin of the trees after it (whose prediction
    repeats the intercept, added back). Only ``binary:logistic`` is rebuilt this way; any
    other objective is scored with ``inplace_predict`` on the kept trees.

    Attributes:
        scores: Positive-class probabilities (float64) once training ended.
        trees: Trees kept (best iteration + 1).
        seconds: Wall time spent producing the scores.
        cpu_seconds: CPU time spent producing the scores.
    """

    def __init__(self, valid: Any) -> None:
        super().__init__()
        self.valid = valid
        self.scores = np.empty(0)
        self.trees = 0
        self.seconds = 0.0
        self.cpu_seconds = 0.0

    def after_training(self, model: Any) -> Any:
        """Compute the scores while the validation prediction cache is still there."""
        started, cpu_started = time.perf_counter(), time.process_time()
        built = model.num_boosted_rounds()
        self.trees = int(model.best_iteration) + 1
        config = json.loads(model.save_config())["learner"]
        objective = config["objective"]["name"]
        if objective != "binary:logistic":
            scores = model.predict(self.valid, iteration_range=(0, self.trees))
        else:
            margin = model.predict(self.valid, output_margin=True).astype(np.float64)
            if self.trees < built:
                intercept = json.loads(config["learner_model_param"]["base_score"])
                intercept = intercept[0] if isinstance(intercept, list) else intercept
                after = model.predict(
                    self.valid, output_margin=True, iteration_range=(self.trees, built)
                )
                margin = margin - after.astype(np.float64) + _logit(float(intercept))
            scores = 1.0 / (1.0 + np.exp(-margin))
        self.scores = np.asarray(scores, dtype=np.float64)
        self.seconds = time.perf_counter() - started
        self.cpu_seconds = time.process_time() - cpu_started
        return model
