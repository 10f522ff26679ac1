"""One-sort validation metrics: the same threshold and figures as scikit-learn's."""

from __future__ import annotations

import numpy as np
import pytest

from mlops_assets.core.evaluation import evaluate
from mlops_assets.core.sorted_metrics import threshold_and_metrics
from mlops_assets.core.thresholds import best_kappa_threshold


@pytest.mark.parametrize(
    ("rows", "positive_rate", "decimals", "seed"),
    [(5000, 0.002, 3, 0), (2000, 0.3, 2, 1), (300, 0.1, 1, 2), (57000, 0.0017, 6, 3)],
)
def test_threshold_and_metrics_match_evaluate(
    rows: int, positive_rate: float, decimals: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    labels = (rng.random(rows) < positive_rate).astype(np.int64)
    labels[:2] = (0, 1)  # both classes
    scores = np.round(np.clip(rng.normal(0.2 + 0.5 * labels, 0.2), 0, 1), decimals)  # ties
    choice, fast = threshold_and_metrics(labels, scores, "split 'valid'")
    expected_choice = best_kappa_threshold(labels, scores)
    expected = evaluate(labels, scores, expected_choice.threshold, "split 'valid'")
    assert choice == expected_choice
    for name, value in expected.metrics().items():
        assert fast.metrics()[name] == pytest.approx(value, abs=1e-12), name


def test_bad_input_is_named() -> None:
    with pytest.raises(ValueError, match="split 'valid' has no positives"):
        threshold_and_metrics(np.zeros(4), np.ones(4), "split 'valid'")
    with pytest.raises(ValueError, match="split 'valid': 3 labels but 2 scores"):
        threshold_and_metrics(np.array([0, 1, 0]), np.ones(2), "split 'valid'")
    with pytest.raises(ValueError, match="split 'valid': scores contain NaN"):
        threshold_and_metrics(np.array([0, 1]), np.array([0.1, np.nan]), "split 'valid'")
