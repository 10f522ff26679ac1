"""Metrics at a threshold, curve images and the markdown table."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, cohen_kappa_score, f1_score, roc_auc_score

from mlops_assets.core.evaluation import curve_images, evaluate, metrics_table


@pytest.fixture()
def scored() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    labels = (rng.random(400) < 0.1).astype(int)
    scores = np.clip(0.25 * labels + rng.random(400) * 0.8, 0, 1)
    return labels, scores


def test_metrics_match_scikit_learn(scored) -> None:
    labels, scores = scored
    result = evaluate(labels, scores, 0.6, "split 'test'")
    predicted = scores >= 0.6
    assert result.kappa == pytest.approx(cohen_kappa_score(labels, predicted))
    assert result.f1 == pytest.approx(f1_score(labels, predicted))
    assert result.roc_auc == pytest.approx(roc_auc_score(labels, scores))
    assert result.pr_auc == pytest.approx(average_precision_score(labels, scores))
    assert result.tp == int((predicted & (labels == 1)).sum())
    assert result.fp == int((predicted & (labels == 0)).sum())
    assert result.rows == 400 and result.tp + result.fn == labels.sum()
    assert result.precision == pytest.approx(result.tp / (result.tp + result.fp))
    assert set(result.metrics("test_")) >= {"test_kappa", "test_pr_auc", "test_tn", "test_recall"}


def test_no_positive_predictions_give_zero_not_an_error(scored) -> None:
    labels, scores = scored
    result = evaluate(labels, scores, 2.0, "split 'test'")
    assert result.tp == result.fp == 0 and result.precision == 0.0 and result.f1 == 0.0


@pytest.mark.parametrize(
    ("labels", "message"), [([0, 0, 0], "split 'test' has no positives"), ([0, 1], "2 labels")]
)
def test_bad_labels_name_the_split(labels, message) -> None:
    scores = np.array([0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match=message):
        evaluate(np.array(labels), scores, 0.5, "split 'test'")


def test_images_are_pngs_and_the_table_lists_every_metric(scored) -> None:
    labels, scores = scored
    result = evaluate(labels, scores, 0.6, "split 'test'")
    images = curve_images(labels, scores, result)
    assert set(images) == {"roc_curve.png", "pr_curve.png", "confusion_matrix.png"}
    assert all(png.startswith(b"\x89PNG") and len(png) > 2000 for png in images.values())
    table = metrics_table({"valid": result, "test": result})
    assert table.splitlines()[0] == "| metric | valid | test |"
    for metric in ("kappa", "f1", "roc_auc", "pr_auc", "precision", "recall", "threshold", "tp"):
        assert f"| {metric} |" in table
