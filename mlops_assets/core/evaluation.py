"""Classification metrics at a decision threshold, curve images and a markdown summary.

Metrics come from scikit-learn; PR AUC is average precision (the step-wise area, not the
trapezoidal one, which is optimistic on rare positives). Images are drawn with
matplotlib's object API on the Agg canvas (no pyplot global state, safe off the main
thread).
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np
from sklearn.metrics import (
    average_precision_score,
    cohen_kappa_score,
    confusion_matrix,
    f1_score,
    precision_recall_curve,
    precision_score,
    recall_score,
    roc_auc_score,
    roc_curve,
)

from mlops_assets.core.thresholds import check_binary_labels

METRIC_NAMES = ("kappa", "f1", "roc_auc", "pr_auc", "precision", "recall")


@dataclass(frozen=True)
class Evaluation:
    """Metrics of one model on one labelled split at one threshold.

    Attributes:
        kappa: Cohen's kappa of the thresholded labels.
        f1: F1 score of the positive class.
        roc_auc: Area under the ROC curve (threshold-free).
        pr_auc: Average precision (threshold-free).
        precision: Precision of the positive class.
        recall: Recall of the positive class.
        threshold: The decision threshold used.
        tn: True negatives.
        fp: False positives.
        fn: False negatives.
        tp: True positives.
    """

    kappa: float
    f1: float
    roc_auc: float
    pr_auc: float
    precision: float
    recall: float
    threshold: float
    tn: int
    fp: int
    fn: int
    tp: int

    @property
    def rows(self) -> int:
        """Rows evaluated."""
        return self.tn + self.fp + self.fn + self.tp

    def metrics(self, prefix: str = "") -> dict[str, float]:
        """Return the scalar metrics (and confusion counts) keyed ``<prefix><name>``."""
        return {f"{prefix}{key}": float(value) for key, value in asdict(self).items()}


def evaluate(y_true: np.ndarray, scores: np.ndarray, threshold: float, where: str) -> Evaluation:
    """Score probabilities against labels at ``threshold``.

    Args:
        y_true: 0/1 labels.
        scores: Positive-class probabilities.
        threshold: Rows with ``score >= threshold`` are predicted positive.
        where: What is evaluated (e.g. ``"split 'test'"``), named in errors.

    Returns:
        The metrics.

    Raises:
        ValueError: When the labels are not 0/1 with both classes, or lengths differ.
    """
    labels = check_binary_labels(y_true, where)
    values = np.asarray(scores, dtype=np.float64)
    if values.shape != labels.shape:
        raise ValueError(f"{where}: {labels.size} labels but {values.size} scores")
    predicted = (values >= threshold).astype(np.int64)
    tn, fp, fn, tp = confusion_matrix(labels, predicted, labels=[0, 1]).ravel()
    return Evaluation(
        kappa=float(cohen_kappa_score(labels, predicted)),
        f1=float(f1_score(labels, predicted, zero_division=0)),
        roc_auc=float(roc_auc_score(labels, values)),
        pr_auc=float(average_precision_score(labels, values)),
        precision=float(precision_score(labels, predicted, zero_division=0)),
        recall=float(recall_score(labels, predicted, zero_division=0)),
        threshold=float(threshold),
        tn=int(tn),
        fp=int(fp),
        fn=int(fn),
        tp=int(tp),
    )


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return buffer.getvalue()


def _figure(title: str):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(4.2, 3.6))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.set_title(title)
    return figure, axes


def curve_images(
    y_true: np.ndarray, scores: np.ndarray, evaluation: Evaluation, split: str = "test"
) -> dict[str, bytes]:
    """Draw the ROC curve, the PR curve and the confusion matrix as PNG images.

    Args:
        y_true: 0/1 labels.
        scores: Positive-class probabilities.
        evaluation: Metrics at the chosen threshold (for legends and the matrix).
        split: Split name used in titles.

    Returns:
        ``{"roc_curve.png": ..., "pr_curve.png": ..., "confusion_matrix.png": ...}``.
    """
    labels = np.asarray(y_true, dtype=np.int64)
    values = np.asarray(scores, dtype=np.float64)
    images: dict[str, bytes] = {}

    figure, axes = _figure(f"ROC curve ({split})")
    fpr, tpr, _ = roc_curve(labels, values)
    axes.plot(fpr, tpr, label=f"AUC = {evaluation.roc_auc:.3f}")
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=0.8)
    axes.set_xlabel("false positive rate")
    axes.set_ylabel("true positive rate")
    axes.legend(loc="lower right")
    images["roc_curve.png"] = _png(figure)

    figure, axes = _figure(f"Precision-recall curve ({split})")
    precision, recall, _ = precision_recall_curve(labels, values)
    axes.step(recall, precision, where="post", label=f"AP = {evaluation.pr_auc:.3f}")
    axes.scatter([evaluation.recall], [evaluation.precision], color="red", zorder=3, s=18)
    axes.set_xlabel("recall")
    axes.set_ylabel("precision")
    axes.set_ylim(0.0, 1.02)
    axes.legend(loc="lower left")
    images["pr_curve.png"] = _png(figure)

    figure, axes = _figure(f"Confusion matrix ({split}, t={evaluation.threshold:.3f})")
    matrix = np.array([[evaluation.tn, evaluation.fp], [evaluation.fn, evaluation.tp]])
    axes.imshow(np.log1p(matrix), cmap="Blues")
    for (row, column), count in np.ndenumerate(matrix):
        axes.text(column, row, f"{count:,}", ha="center", va="center", fontsize=12)
    axes.set_xticks([0, 1], labels=["predicted 0", "predicted 1"])
    axes.set_yticks([0, 1], labels=["actual 0", "actual 1"])
    images["confusion_matrix.png"] = _png(figure)
    return images


def metrics_table(evaluations: Mapping[str, Evaluation]) -> str:
    """Render evaluations side by side as a markdown table (one column per split)."""
    names = list(evaluations)
    lines = [
        "| metric | " + " | ".join(names) + " |",
        "| --- | " + " | ".join("---:" for _ in names) + " |",
    ]
    for metric in (*METRIC_NAMES, "threshold"):
        cells = [f"{getattr(evaluations[name], metric):.4f}" for name in names]
        lines.append(f"| {metric} | " + " | ".join(cells) + " |")
    for metric in ("tp", "fp", "fn", "tn"):
        cells = [f"{getattr(evaluations[name], metric):,}" for name in names]
        lines.append(f"| {metric} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
