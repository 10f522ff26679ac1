"""A trial's threshold and every validation metric from one sort of its scores.

:func:`mlops_assets.core.evaluation.evaluate` calls six scikit-learn metrics and a confusion
matrix, each validating its input and most sorting the scores again; per trial that cost
about as much as predicting the validation split. Here the scores are sorted once
(:func:`mlops_assets.core.thresholds.kappa_curve` order): the confusion counts at every
distinct threshold give the kappa-optimal threshold, kappa, precision, recall and F1 there,
and the same cumulative counts give ROC AUC (trapezoids over the ROC points) and average
precision (precision at each distinct threshold weighted by its recall step), the
definitions scikit-learn uses. A test pins the results to :func:`evaluate`'s.
"""

from __future__ import annotations

import numpy as np

from mlops_assets.core.evaluation import Evaluation
from mlops_assets.core.thresholds import ThresholdChoice, check_binary_labels, choose_threshold


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else 0.0


def threshold_and_metrics(
    y_true: np.ndarray, scores: np.ndarray, where: str
) -> tuple[ThresholdChoice, Evaluation]:
    """Choose the kappa-optimal threshold and evaluate the split at it, in one pass.

    Args:
        y_true: 0/1 labels (both classes present).
        scores: Positive-class probabilities, no NaN.
        where: What is evaluated (e.g. ``"split 'valid'"``), named in errors.

    Returns:
        The threshold choice (as :func:`best_kappa_threshold`) and the evaluation at it (as
        :func:`mlops_assets.core.evaluation.evaluate`).
    """
    labels = check_binary_labels(y_true, where)
    values = np.asarray(scores, dtype=np.float64)
    if values.shape != labels.shape:
        raise ValueError(f"{where}: {labels.size} labels but {values.size} scores")
    if np.isnan(values).any():
        raise ValueError(f"{where}: scores contain NaN")
    order = np.argsort(-values, kind="mergesort")
    ordered = values[order]
    last_of_run = np.r_[ordered[1:] != ordered[:-1], True]
    tp = np.cumsum(labels[order])[last_of_run].astype(np.float64)
    fp = (np.flatnonzero(last_of_run) + 1).astype(np.float64) - tp
    positives = float(labels.sum())
    negatives = float(labels.size) - positives
    choice, best = choose_threshold(ordered[last_of_run], tp, fp, positives, negatives)
    tpr, fpr = np.r_[0.0, tp / positives], np.r_[0.0, fp / negatives]
    recall_steps = np.diff(tpr)
    precision = tp / (tp + fp)
    true_pos, false_pos = tp[best], fp[best]
    false_neg, true_neg = positives - true_pos, negatives - false_pos
    evaluation = Evaluation(
        kappa=choice.kappa,
        f1=_ratio(2 * true_pos, 2 * true_pos + false_pos + false_neg),
        roc_auc=float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2.0)),
        pr_auc=float(np.sum(recall_steps * precision)),
        precision=_ratio(true_pos, true_pos + false_pos),
        recall=_ratio(true_pos, positives),
        threshold=choice.threshold,
        tn=int(true_neg),
        fp=int(false_pos),
        fn=int(false_neg),
        tp=int(true_pos),
    )
    return choice, evaluation
