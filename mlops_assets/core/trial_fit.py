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
Validation scores come from ``inplace_predict`` on the cached array. Any other classifier is
fitted with ``fit(matrix, labels)`` and scored with ``predict_proba``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

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
    preprocessor = build_preprocessor(train.features).fit(train.features)

    def matrix(features: Any) -> np.ndarray:
        return np.ascontiguousarray(preprocessor.transform(features), dtype=np.float32)

    return SearchMatrices(
        train=matrix(train.features),
        train_labels=np.asarray(train.labels),
        valid=matrix(valid.features),
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
            predict = self._fit_xgboost(classifier)
        else:
            classifier.fit(self.matrices.train, self.matrices.train_labels)

            def predict() -> tuple[np.ndarray, int | None]:
                return np.asarray(classifier.predict_proba(self.matrices.valid))[:, 1], None

        fitted, cpu_fitted = time.perf_counter(), time.process_time()
        scores, trees = predict()
        return TrialFit(
            scores=np.asarray(scores, dtype=np.float64),
            trees=trees,
            fit_seconds=fitted - started,
            fit_cpu_seconds=cpu_fitted - cpu_started,
            score_seconds=time.perf_counter() - fitted,
        )

    def _fit_xgboost(self, classifier: Any):
        import xgboost

        params = classifier.get_xgb_params()
        rounds = classifier.get_num_boosting_rounds()
        train, valid = self._data(classifier.max_bin, classifier.n_jobs)
        stopping = self.early_stopping_rounds or None
        booster = xgboost.train(
            params,
            train,
            rounds,
            evals=[(valid, "valid")] if stopping else (),
            early_stopping_rounds=stopping,
            verbose_eval=False,
        )
        trees = booster.best_iteration + 1 if stopping else rounds

        def predict() -> tuple[np.ndarray, int | None]:
            scores = booster.inplace_predict(
                self.matrices.valid, iteration_range=(0, trees), missing=classifier.missing
            )
            return scores, trees

        return predict
