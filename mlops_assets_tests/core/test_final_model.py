"""The final model: winning trees, refit rows, threshold from the train-only fit on valid."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops_assets.core.final_model import final_parameters, refit_final
from mlops_assets.core.model import build_pipeline, positive_probability, xgboost_classifier
from mlops_assets.core.thresholds import best_kappa_threshold
from mlops_assets.core.trial_fit import TREES_METRIC
from mlops_assets.core.trials import TrialOutcome
from mlops_assets.core.tuning import TrainingSplits
from mlops_assets_tests.core.training_fixtures import bank_splits

PARAMS = {"max_depth": 3, "n_estimators": 40, "learning_rate": 0.2, "seed": 3, "nthread": 1}


@pytest.fixture(scope="module")
def splits(shared_data: Path) -> TrainingSplits:
    return bank_splits(shared_data, rows=1500)


def test_final_parameters_use_the_trees_the_trial_kept() -> None:
    kept = TrialOutcome(1, {"n_estimators": 500, "max_depth": 4}, True, {TREES_METRIC: 87.0})
    assert final_parameters(kept) == {"n_estimators": 87, "max_depth": 4}
    plain = TrialOutcome(2, {"C": 1.0}, True, {"valid_kappa": 0.5})
    assert final_parameters(plain) == {"C": 1.0}


def test_train_refit_is_the_model_its_threshold_was_chosen_for(splits: TrainingSplits) -> None:
    final = refit_final(splits, xgboost_classifier, PARAMS, "train")
    scores = final.bundle.predict_proba(splits.valid.features)
    choice = best_kappa_threshold(splits.valid.labels, scores)
    assert final.refit_rows == "train"
    assert final.bundle.threshold == pytest.approx(choice.threshold)
    assert final.valid.kappa == pytest.approx(choice.kappa)


def test_train_valid_refit_keeps_the_train_only_threshold_and_metrics(
    splits: TrainingSplits,
) -> None:
    only_train = refit_final(splits, xgboost_classifier, PARAMS, "train")
    final = refit_final(splits, xgboost_classifier, PARAMS, "train+valid")
    assert final.refit_rows == "train+valid"
    assert final.bundle.threshold == only_train.bundle.threshold
    assert final.valid == only_train.valid  # honest figures: the train-only model on valid
    assert final.bundle.pipeline[-1].get_booster().num_boosted_rounds() == PARAMS["n_estimators"]
    features = pd.concat([splits.train.features, splits.valid.features], ignore_index=True)
    labels = np.concatenate([splits.train.labels, splits.valid.labels])
    expected = build_pipeline(features, xgboost_classifier(PARAMS)).fit(features, labels)
    np.testing.assert_allclose(
        final.bundle.predict_proba(splits.test.features),
        positive_probability(expected, splits.test.features),
        atol=1e-6,
    )
    train_only = only_train.bundle.predict_proba(splits.test.features)
    assert not np.allclose(final.bundle.predict_proba(splits.test.features), train_only)


def test_unknown_refit_rows_are_refused(splits: TrainingSplits) -> None:
    with pytest.raises(ValueError, match="refit_rows must be one of .* got 'all'"):
        refit_final(splits, xgboost_classifier, PARAMS, "all")
