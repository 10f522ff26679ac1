"""The pipeline on raw mixed-type rows, the swappable classifier, the kappa threshold."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import cohen_kappa_score

from mlops_assets.constants import LABEL_COLUMN
from mlops_assets.core.contract import contract_from_frame
from mlops_assets.core.model import as_float, as_text, build_pipeline, xgboost_classifier
from mlops_assets.core.model_bundle import ModelBundle, load_bundle, save_bundle
from mlops_assets.core.splits import feature_columns
from mlops_assets.core.thresholds import best_kappa_threshold, check_binary_labels, kappa_curve
from mlops_assets_tests.core.training_fixtures import bank_frame


@pytest.fixture(scope="module")
def bank(shared_data: Path) -> pd.DataFrame:
    return bank_frame(shared_data, rows=1200)


def test_pipeline_fits_mixed_types_with_missing_values(bank: pd.DataFrame) -> None:
    columns = feature_columns(bank)
    features = bank[columns]
    assert features["age"].isna().any() and features["job"].isna().any()
    assert features.dtypes.map(pd.api.types.is_object_dtype).sum() >= 5  # categoricals
    pipeline = build_pipeline(features, xgboost_classifier({"n_estimators": 30, "seed": 1}))
    pipeline.fit(features, bank[LABEL_COLUMN])

    # Raw rows as production sends them: nulls of every flavour, an unseen category,
    # numbers as objects.
    raw = features.head(4).copy()
    raw["job"] = ["astronaut", None, np.nan, "admin."]
    raw["age"] = pd.Series([None, pd.NA, 41, 33.5], dtype=object)
    probability = pipeline.predict_proba(raw)[:, 1]
    assert probability.shape == (4,)
    assert np.isfinite(probability).all() and ((probability >= 0) & (probability <= 1)).all()
    names = pipeline.named_steps["preprocess"].get_feature_names_out()
    assert any(name.startswith("categorical__job_") for name in names)
    assert any("missingindicator_age" in name for name in names)


def test_classifier_is_swappable_without_touching_the_pipeline(bank: pd.DataFrame) -> None:
    features = bank[feature_columns(bank)]
    pipeline = build_pipeline(features, LogisticRegression(solver="liblinear"))
    pipeline.fit(features, bank[LABEL_COLUMN])
    assert pipeline.predict_proba(features.head(3)).shape == (3, 2)
    with pytest.raises(TypeError, match="has no predict_proba"):
        build_pipeline(features, object())


def test_pipeline_without_features_is_refused() -> None:
    with pytest.raises(ValueError, match="no feature columns"):
        build_pipeline(pd.DataFrame(index=range(3)), LogisticRegression())


def test_fitted_pipeline_round_trips_through_skops_allowlist(
    bank: pd.DataFrame, tmp_path: Path
) -> None:
    features = bank[feature_columns(bank)]
    pipeline = build_pipeline(features, xgboost_classifier({"n_estimators": 20}))
    pipeline.fit(features, bank[LABEL_COLUMN])
    bundle = ModelBundle(pipeline, 0.4, contract_from_frame(features))
    loaded = load_bundle(save_bundle(bundle, tmp_path / "bundle"))
    assert np.allclose(loaded.predict_proba(features), bundle.predict_proba(features))


def test_converters_normalise_nulls() -> None:
    frame = pd.DataFrame({"n": pd.Series([1, None], dtype="Int64"), "b": [True, None]})
    assert np.array_equal(as_float(frame), np.array([[1.0, 1.0], [np.nan, np.nan]]), True)
    text = as_text(pd.DataFrame({"c": ["a", None, np.nan, pd.NA, 3]}, dtype=object))
    assert text.ravel().tolist() == ["a", "missing", "missing", "missing", "3"]


def brute_force_best(labels: np.ndarray, scores: np.ndarray) -> float:
    return max(cohen_kappa_score(labels, scores >= t) for t in np.unique(scores))


def test_threshold_maximises_kappa_on_a_known_case() -> None:
    labels = np.array([0, 0, 0, 0, 1, 0, 1, 1])
    scores = np.array([0.1, 0.2, 0.3, 0.35, 0.4, 0.5, 0.8, 0.9])
    choice = best_kappa_threshold(labels, scores)
    assert choice.kappa == pytest.approx(brute_force_best(labels, scores))
    assert cohen_kappa_score(labels, scores >= choice.threshold) == pytest.approx(choice.kappa)
    assert choice.threshold == pytest.approx(0.375)  # halfway from the winning 0.4 to 0.35
    assert choice.candidates == 8


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 1), st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.7, 0.9, 1.0])),
        min_size=2,
        max_size=40,
    )
)
def test_vectorised_kappa_matches_sklearn_at_every_threshold(pairs) -> None:
    labels = np.array([label for label, _ in pairs])
    scores = np.array([score for _, score in pairs])
    if labels.min() == labels.max():
        return
    thresholds, kappas = kappa_curve(labels, scores)
    for threshold, kappa in zip(thresholds, kappas, strict=True):
        assert kappa == pytest.approx(cohen_kappa_score(labels, scores >= threshold), abs=1e-9)
    choice = best_kappa_threshold(labels, scores)
    assert choice.kappa == pytest.approx(brute_force_best(labels, scores), abs=1e-9)
    assert cohen_kappa_score(labels, scores >= choice.threshold) == pytest.approx(choice.kappa)


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ([0, 0, 0], "has no positives"),
        ([1, 1], "has no negatives"),
        ([], "has no rows"),
        ([0, 2, 1], "labels must be 0/1"),
    ],
)
def test_threshold_split_without_both_classes_is_refused(labels, message) -> None:
    with pytest.raises(ValueError, match=message):
        check_binary_labels(np.array(labels), "split 'valid'")
    if labels:
        with pytest.raises(ValueError, match=message):
            best_kappa_threshold(np.array(labels), np.linspace(0, 1, len(labels)))


def test_nan_scores_are_refused() -> None:
    with pytest.raises(ValueError, match="NaN"):
        best_kappa_threshold(np.array([0, 1]), np.array([0.1, np.nan]))
