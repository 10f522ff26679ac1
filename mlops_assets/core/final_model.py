"""The final model of a search: the winning parameters refitted, its threshold chosen on valid.

Two refit modes (:data:`RefitRows`):

* ``"train"``: the pipeline is refitted on the train rows with the winning parameters (and the
  trees its trial kept after early stopping): the very model the trial scored. The threshold
  maximises Cohen's kappa on its validation scores.
* ``"train+valid"`` (default): the same model is fitted on train first, and its validation
  scores choose the threshold exactly as above; then the pipeline is fitted once more, with
  the same parameters and number of trees, on the train and validation rows together, and
  keeps that threshold. The validation rows hold a quarter of the labelled positives, so the
  served model learns from a third more frauds; the threshold still comes from scores of
  rows the scoring model never saw (a threshold chosen on the refitted model's own
  validation scores would be fitted to rows it trained on, far too high). The trade-off:
  the refitted model's probabilities are not exactly those the threshold was chosen on;
  with the same parameters, trees and class balance they are on the same scale, and the
  test split (never seen by either) measures the result. ``valid_*`` metrics are those of
  the train-only model, the only honest validation figures.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from mlops_assets.core.contract import contract_from_frame
from mlops_assets.core.evaluation import Evaluation, evaluate
from mlops_assets.core.model import ClassifierFactory, build_pipeline, positive_probability
from mlops_assets.core.model_bundle import ModelBundle
from mlops_assets.core.thresholds import best_kappa_threshold
from mlops_assets.core.trial_fit import TREES_METRIC
from mlops_assets.core.trials import TrialOutcome

RefitRows = Literal["train", "train+valid"]
REFIT_ROWS: tuple[str, ...] = ("train", "train+valid")


@dataclass(frozen=True)
class FinalModel:
    """The refitted model with its threshold and honest validation metrics.

    Attributes:
        bundle: Pipeline, threshold (kappa-optimal on valid) and input contract.
        valid: Metrics of the train-only model on the validation split at that threshold.
        refit_rows: The rows the bundle's pipeline was fitted on.
        valid_scores: The train-only model's positive-class probabilities on the validation
            rows (what the threshold was chosen on).
    """

    bundle: ModelBundle
    valid: Evaluation
    refit_rows: str
    valid_scores: np.ndarray = field(compare=False, repr=False, default_factory=lambda: np.empty(0))


def final_parameters(best: TrialOutcome) -> dict[str, Any]:
    """The winning trial's parameters with ``n_estimators`` set to the trees it kept."""
    trees = best.metrics.get(TREES_METRIC)
    if trees is None or "n_estimators" not in best.params:
        return dict(best.params)
    return {**best.params, "n_estimators": int(trees)}


def refit_final(
    splits: Any,
    factory: ClassifierFactory,
    params: Mapping[str, Any],
    refit_rows: str = "train+valid",
) -> FinalModel:
    """Refit the winning candidate and choose its threshold on the validation split.

    Args:
        splits: The :class:`~mlops_assets.core.tuning.TrainingSplits` of the search.
        factory: Classifier factory of the search.
        params: Final parameters (:func:`final_parameters`, plus seed and threads).
        refit_rows: ``"train"`` or ``"train+valid"`` (see the module docstring).

    Returns:
        The final model.

    Raises:
        ValueError: For an unknown ``refit_rows``.
    """
    if refit_rows not in REFIT_ROWS:
        raise ValueError(f"refit_rows must be one of {list(REFIT_ROWS)}, got {refit_rows!r}")
    train, valid = splits.train, splits.valid
    pipeline = build_pipeline(train.features, factory(params))
    pipeline.fit(train.features, train.labels)
    valid_scores = positive_probability(pipeline, valid.features)
    choice = best_kappa_threshold(valid.labels, valid_scores)
    evaluation = evaluate(valid.labels, valid_scores, choice.threshold, "split 'valid'")
    if refit_rows == "train+valid":
        features = pd.concat([train.features, valid.features], ignore_index=True)
        labels = np.concatenate([train.labels, valid.labels])
        pipeline = build_pipeline(features, factory(params))
        pipeline.fit(features, labels)
    contract = contract_from_frame(valid.features)
    bundle = ModelBundle(pipeline, choice.threshold, contract)
    return FinalModel(bundle, evaluation, refit_rows, valid_scores)
