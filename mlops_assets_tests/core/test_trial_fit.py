"""Trials on matrices preprocessed once: same model as the full pipeline, early stopping."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from mlops_assets.core.model import build_pipeline, positive_probability, xgboost_classifier
from mlops_assets.core.trial_fit import TrialFitter, search_matrices
from mlops_assets.core.tuning import TrainingSplits
from mlops_assets_tests.core.training_fixtures import bank_splits

PARAMS = {"max_depth": 3, "n_estimators": 120, "learning_rate": 0.3, "seed": 7, "nthread": 1}


@pytest.fixture(scope="module")
def splits(shared_data: Path) -> TrainingSplits:
    return bank_splits(shared_data, rows=1500)


def test_matrices_are_the_pipeline_preprocessing_as_contiguous_float32(
    splits: TrainingSplits,
) -> None:
    matrices = search_matrices(splits.train, splits.valid)
    pipeline = build_pipeline(splits.train.features, xgboost_classifier(PARAMS))
    pipeline.fit(splits.train.features, splits.train.labels)
    expected = pipeline[:-1].transform(splits.valid.features)
    assert matrices.valid.dtype == np.float32 and matrices.valid.flags.c_contiguous
    assert matrices.train.shape == (len(splits.train.labels), expected.shape[1])
    np.testing.assert_allclose(matrices.valid, expected, rtol=1e-6)
    assert not np.isnan(matrices.train).any()  # missing ages imputed, jobs one-hot


def test_native_fit_without_early_stopping_is_the_pipelines_model(splits: TrainingSplits) -> None:
    fitter = TrialFitter(search_matrices(splits.train, splits.valid), early_stopping_rounds=0)
    fit = fitter.fit(xgboost_classifier(PARAMS))
    pipeline = build_pipeline(splits.train.features, xgboost_classifier(PARAMS))
    pipeline.fit(splits.train.features, splits.train.labels)
    assert fit.trees == PARAMS["n_estimators"]
    np.testing.assert_allclose(
        fit.scores, positive_probability(pipeline, splits.valid.features), atol=1e-6
    )


def test_early_stopping_keeps_fewer_trees_and_the_refit_reproduces_them(
    splits: TrainingSplits,
) -> None:
    fitter = TrialFitter(search_matrices(splits.train, splits.valid), early_stopping_rounds=10)
    fit = fitter.fit(xgboost_classifier(PARAMS))
    assert fit.trees is not None and 1 <= fit.trees < PARAMS["n_estimators"]
    refit = build_pipeline(
        splits.train.features, xgboost_classifier({**PARAMS, "n_estimators": fit.trees})
    )
    refit.fit(splits.train.features, splits.train.labels)
    np.testing.assert_allclose(
        fit.scores, positive_probability(refit, splits.valid.features), atol=1e-6
    )
    assert fit.fit_seconds > 0 and fit.fit_cpu_seconds >= 0 and fit.score_seconds >= 0


def test_other_classifiers_fit_on_the_matrices(splits: TrainingSplits) -> None:
    fitter = TrialFitter(search_matrices(splits.train, splits.valid), early_stopping_rounds=10)
    fit = fitter.fit(LogisticRegression(max_iter=500))
    assert fit.trees is None
    assert fit.scores.shape == splits.valid.labels.shape
    assert ((fit.scores >= 0) & (fit.scores <= 1)).all()


def test_fitter_pickles_without_its_native_cache(splits: TrainingSplits) -> None:
    fitter = TrialFitter(search_matrices(splits.train, splits.valid), early_stopping_rounds=5)
    first = fitter.fit(xgboost_classifier(PARAMS))
    copy = pickle.loads(pickle.dumps(fitter))
    assert copy._dmatrices is None and fitter._dmatrices is not None
    np.testing.assert_array_equal(copy.fit(xgboost_classifier(PARAMS)).scores, first.scores)


def test_negative_early_stopping_is_refused(splits: TrainingSplits) -> None:
    with pytest.raises(ValueError, match="early_stopping_rounds must be >= 0, got -1"):
        TrialFitter(search_matrices(splits.train, splits.valid), early_stopping_rounds=-1)


@pytest.mark.parametrize("objective", ["binary:logistic", "binary:logitraw"])
def test_early_stopped_scores_from_the_prediction_cache_match_inplace_predict(
    splits: TrainingSplits, objective: str
) -> None:
    import xgboost

    params = {**PARAMS, "max_depth": 4, "learning_rate": 0.5, "objective": objective}
    fitter = TrialFitter(search_matrices(splits.train, splits.valid), early_stopping_rounds=8)
    fit = fitter.fit(xgboost_classifier(params))
    classifier = xgboost_classifier({**params, "n_estimators": fit.trees})
    train, _ = fitter._data(None, 1)
    booster = xgboost.train(classifier.get_xgb_params(), train, fit.trees)
    expected = booster.inplace_predict(fitter.matrices.valid)
    assert fit.trees is not None and fit.trees + 8 <= PARAMS["n_estimators"]  # it did stop
    np.testing.assert_allclose(fit.scores, expected, atol=1e-6)


def test_early_stopping_lets_a_slow_learner_learn(splits: TrainingSplits) -> None:
    # Early stopping watches validation log loss, which improves while a low learning rate
    # learns; PR AUC (ranking only, noisy on few positives) stopped such trials after a few
    # trees (1 tree here), which taught the search that low learning rates were bad.
    slow = {**PARAMS, "learning_rate": 0.03, "n_estimators": 400}
    fitter = TrialFitter(search_matrices(splits.train, splits.valid), early_stopping_rounds=50)
    fit = fitter.fit(xgboost_classifier(slow))
    assert fit.trees is not None and fit.trees >= 150, fit.trees
