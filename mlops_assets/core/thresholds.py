"""Decision threshold that maximises Cohen's kappa, found in one vectorised pass.

Sorting the scores once gives the confusion matrix at every distinct candidate threshold
through cumulative sums, so kappa is evaluated for all of them at once (O(n log n)), not
by re-scoring the split once per candidate. The chosen threshold sits halfway between the
winning score and the next lower distinct score, so tiny shifts in probability do not
flip the decisions made on the validation rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ThresholdChoice:
    """The kappa-optimal threshold on one split.

    Attributes:
        threshold: Probability at or above which a row is labelled positive.
        kappa: Cohen's kappa at that threshold on the split it was chosen on.
        candidates: How many distinct thresholds were compared.
    """

    threshold: float
    kappa: float
    candidates: int


def check_binary_labels(y_true: np.ndarray, where: str) -> np.ndarray:
    """Return ``y_true`` as int 0/1, or raise naming ``where`` and the problem.

    Args:
        y_true: Labels.
        where: What the labels are (e.g. ``"split 'valid'"``), used in error messages.

    Raises:
        ValueError: Empty labels, values other than 0/1, or no positive / no negative row.
    """
    labels = np.asarray(y_true)
    if labels.size == 0:
        raise ValueError(f"{where} has no rows")
    if not np.isin(labels, (0, 1)).all():
        found = sorted({str(value) for value in np.unique(labels)})[:5]
        raise ValueError(f"{where} labels must be 0/1, found {', '.join(found)}")
    labels = labels.astype(np.int64)
    positives = int(labels.sum())
    if positives == 0:
        raise ValueError(f"{where} has no positives (0 of {labels.size} rows)")
    if positives == labels.size:
        raise ValueError(f"{where} has no negatives ({positives} rows, all positive)")
    return labels


def kappa_curve(y_true: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cohen's kappa at every distinct score used as threshold (``score >= t`` is positive).

    Args:
        y_true: 0/1 labels.
        scores: Scores or probabilities, same length.

    Returns:
        ``(thresholds, kappas)``, thresholds in decreasing order.
    """
    labels = np.asarray(y_true, dtype=np.int64)
    values = np.asarray(scores, dtype=np.float64)
    if labels.shape != values.shape:
        raise ValueError(f"{labels.shape[0]} labels but {values.shape[0]} scores")
    if np.isnan(values).any():
        raise ValueError("scores contain NaN")
    order = np.argsort(-values, kind="mergesort")
    ordered, hits = values[order], labels[order]
    last_of_run = np.r_[ordered[1:] != ordered[:-1], True]
    tp = np.cumsum(hits)[last_of_run].astype(np.float64)
    predicted = (np.flatnonzero(last_of_run) + 1).astype(np.float64)
    positives = float(labels.sum())
    kappas = kappas_of_counts(tp, predicted - tp, positives, float(labels.size) - positives)
    return ordered[last_of_run], kappas


def kappas_of_counts(
    tp: np.ndarray, fp: np.ndarray, positives: float, negatives: float
) -> np.ndarray:
    """Cohen's kappa from true / false positive counts at each threshold."""
    n = positives + negatives
    predicted = tp + fp
    observed = (tp + negatives - fp) / n
    expected = (predicted * positives + (n - predicted) * negatives) / (n * n)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(expected < 1.0, (observed - expected) / (1.0 - expected), 0.0)


def choose_threshold(
    thresholds: np.ndarray, tp: np.ndarray, fp: np.ndarray, positives: float, negatives: float
) -> tuple[ThresholdChoice, int]:
    """The kappa-optimal threshold from counts at distinct thresholds (decreasing order).

    Returns:
        The choice (midpoint to the next lower distinct score; ties go to the highest
        threshold) and the index of the winning threshold.
    """
    kappas = kappas_of_counts(tp, fp, positives, negatives)
    best = int(np.argmax(kappas))
    upper = float(thresholds[best])
    lower = float(thresholds[best + 1]) if best + 1 < thresholds.size else upper
    middle = (upper + lower) / 2.0
    threshold = middle if lower < middle <= upper else upper
    choice = ThresholdChoice(threshold, float(kappas[best]), int(thresholds.size))
    return choice, best


def best_kappa_threshold(y_true: np.ndarray, scores: np.ndarray) -> ThresholdChoice:
    """Choose the threshold that maximises Cohen's kappa on a labelled split.

    Args:
        y_true: 0/1 labels of the split (validation, never test).
        scores: Positive-class probabilities.

    Returns:
        The threshold (midpoint to the next lower distinct score), its kappa and the
        number of candidates compared. Ties go to the highest threshold.

    Raises:
        ValueError: When the labels are not 0/1 with both classes present.
    """
    labels = check_binary_labels(y_true, "the threshold split")
    thresholds, kappas = kappa_curve(labels, scores)
    best = int(np.argmax(kappas))
    upper = float(thresholds[best])
    lower = float(thresholds[best + 1]) if best + 1 < thresholds.size else upper
    middle = (upper + lower) / 2.0
    threshold = middle if lower < middle <= upper else upper
    return ThresholdChoice(
        threshold=threshold, kappa=float(kappas[best]), candidates=int(thresholds.size)
    )
