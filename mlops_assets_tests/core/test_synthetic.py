from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score
from xgboost import XGBClassifier

from mlops_assets.core.synthetic import COLUMNS, FEATURE_COLUMNS, DriftSpec, generate


def _model(frame):
    model = XGBClassifier(n_estimators=50, max_depth=3, n_jobs=1, random_state=0)
    return model.fit(frame[list(FEATURE_COLUMNS)], frame["Class"])


def _pr_auc(model, frame) -> float:
    scores = model.predict_proba(frame[list(FEATURE_COLUMNS)])[:, 1]
    return float(average_precision_score(frame["Class"], scores))


def test_schema_types_and_determinism() -> None:
    frame = generate(2_000, seed=3)
    assert tuple(frame.columns) == COLUMNS
    assert all(frame[name].dtype == np.float64 for name in FEATURE_COLUMNS)
    assert frame["Class"].dtype == np.int64
    assert set(frame["Class"].unique()) <= {0, 1}
    assert frame.equals(generate(2_000, seed=3))
    assert not frame.equals(generate(2_000, seed=4))
    assert frame["Time"].is_monotonic_increasing
    assert (frame["Amount"] >= 0).all()


def test_positive_rate_is_close_to_the_credit_card_rate() -> None:
    frame = generate(200_000, seed=1)
    assert 0.0013 < frame["Class"].mean() < 0.0022


def test_tiny_frames_still_have_both_classes() -> None:
    assert set(generate(2, seed=0, positive_rate=0.001)["Class"]) == {0, 1}


def test_fraud_signal_is_learnable_far_above_chance() -> None:
    train = generate(10_000, seed=1, positive_rate=0.03)
    test = generate(5_000, seed=2, positive_rate=0.03)
    pr_auc = _pr_auc(_model(train), test)
    chance = test["Class"].mean()
    assert pr_auc > 0.6, pr_auc
    assert pr_auc > 20 * chance


def test_drift_shifts_chosen_columns_only() -> None:
    reference = generate(20_000, seed=5)
    drifted = generate(20_000, seed=5, drift=DriftSpec(shift={"V1": 2.0}, scale={"V2": 3.0}))
    std = reference["V1"].std()
    assert drifted["V1"].mean() - reference["V1"].mean() == pytest.approx(2.0 * std, rel=0.05)
    assert drifted["V2"].std() == pytest.approx(3.0 * reference["V2"].std(), rel=0.05)
    assert drifted["V3"].equals(reference["V3"])


def test_changed_fraud_pattern_defeats_a_model_trained_before() -> None:
    model = _model(generate(10_000, seed=1, positive_rate=0.03))
    same = _pr_auc(model, generate(5_000, seed=2, positive_rate=0.03))
    changed = _pr_auc(
        model,
        generate(5_000, seed=2, drift=DriftSpec(fraud_pattern_change=1.0, positive_rate=0.03)),
    )
    assert changed < same / 2, (same, changed)


def test_drift_positive_rate_and_bad_specs() -> None:
    assert generate(20_000, seed=0, drift=DriftSpec(positive_rate=0.05))["Class"].mean() > 0.04
    with pytest.raises(ValueError, match="unknown column"):
        DriftSpec(shift={"V99": 1.0})
    with pytest.raises(ValueError, match="fraud_pattern_change"):
        DriftSpec(fraud_pattern_change=2.0)
    with pytest.raises(ValueError, match="scale must be positive"):
        DriftSpec(scale={"V1": 0.0})
    with pytest.raises(ValueError, match="rows must be at least 1"):
        generate(0)
    with pytest.raises(ValueError, match="positive_rate"):
        generate(10, positive_rate=1.5)
