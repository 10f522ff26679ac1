"""The model pipeline: raw feature columns in, positive-class probability out.

The pipeline does every transformation itself, so serving needs no separate preprocessing:

* numeric and boolean columns: coerced to float, missing values imputed with the median
  (plus a missing-value indicator for columns that had gaps during fitting);
* categorical (string) columns: every value turned into text, missing values become the
  category ``"missing"``, then one-hot encoded; a category never seen in training encodes
  as all zeros instead of failing.

The final estimator is XGBoost (``tree_method="hist"``) by default. Any scikit-learn
compatible classifier with ``predict_proba`` can take its place: training code receives a
:data:`ClassifierFactory` (hyperparameters in, unfitted classifier out) and never names
the estimator itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder

ClassifierFactory = Callable[[Mapping[str, Any]], Any]
"""Builds an unfitted classifier from hyperparameters (seed and threads included)."""

MISSING_CATEGORY = "missing"
PREPROCESS_STEP = "preprocess"
CLASSIFIER_STEP = "classifier"


def as_float(frame: Any) -> np.ndarray:
    """Coerce numeric or boolean columns to float64; nulls (None, NaN, pd.NA) become NaN."""
    data = pd.DataFrame(frame)
    return data.apply(pd.to_numeric, errors="coerce").astype("float64").to_numpy()


def as_text(frame: Any) -> np.ndarray:
    """Turn categorical columns into text; nulls (None, NaN, pd.NA) become ``"missing"``."""
    data = pd.DataFrame(frame).astype(object)
    return data.where(data.notna(), MISSING_CATEGORY).astype(str).to_numpy()


def is_categorical(series: pd.Series) -> bool:
    """Whether a column goes through the categorical (one-hot) branch."""
    return not (pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series))


def build_preprocessor(features: pd.DataFrame) -> ColumnTransformer:
    """Build the column transformer for the columns of ``features``.

    Args:
        features: Training features (only dtypes are used).

    Returns:
        An unfitted ``ColumnTransformer`` with a numeric and a categorical branch.

    Raises:
        ValueError: When ``features`` has no columns.
    """
    if features.shape[1] == 0:
        raise ValueError("the training frame has no feature columns")
    categorical = [str(name) for name in features if is_categorical(features[name])]
    numeric = [str(name) for name in features if name not in set(categorical)]
    numeric_steps = Pipeline(
        [
            ("as_float", FunctionTransformer(as_float, feature_names_out="one-to-one")),
            ("impute", SimpleImputer(strategy="median", add_indicator=True)),
        ]
    )
    categorical_steps = Pipeline(
        [
            ("as_text", FunctionTransformer(as_text, feature_names_out="one-to-one")),
            ("one_hot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
        ]
    )
    branches = []
    if numeric:
        branches.append(("numeric", numeric_steps, numeric))
    if categorical:
        branches.append(("categorical", categorical_steps, categorical))
    return ColumnTransformer(branches, remainder="drop", sparse_threshold=0.0)


def build_pipeline(features: pd.DataFrame, classifier: Any) -> Pipeline:
    """Assemble the full pipeline: preprocessing for ``features`` + ``classifier``.

    Args:
        features: Training features (only dtypes are used).
        classifier: An unfitted scikit-learn compatible classifier with ``predict_proba``.

    Returns:
        The unfitted pipeline; it accepts raw frames with the same columns.
    """
    if not hasattr(classifier, "predict_proba"):
        raise TypeError(f"classifier {type(classifier).__name__} has no predict_proba")
    return Pipeline(
        [(PREPROCESS_STEP, build_preprocessor(features)), (CLASSIFIER_STEP, classifier)]
    )


def xgboost_classifier(params: Mapping[str, Any]) -> Any:
    """The default :data:`ClassifierFactory`: XGBoost with the ``hist`` tree method.

    Its ``eval_metric`` is what early stopping watches on the validation split during the
    search: log loss, not PR AUC. PR AUC depends only on the ranking, which a few slow trees
    already get nearly right, and on ~90 validation positives it is noisy: at learning rate
    0.03 it stopped the search's trials after 3-8 trees (no better PR AUC in the next 50),
    so TPE learnt that low learning rates were bad. Log loss keeps improving while the model
    learns and stops those trials after 500-650 trees (``benchmarks/tuning.py`` figures in
    the README).

    Args:
        params: XGBoost hyperparameters; ``seed`` and ``nthread`` map to ``random_state``
            and ``n_jobs`` (defaults 0 and 2).

    Returns:
        An unfitted ``XGBClassifier``.
    """
    from xgboost import XGBClassifier

    options = dict(params)
    seed = int(options.pop("seed", 0))
    nthread = int(options.pop("nthread", 2))
    return XGBClassifier(
        tree_method="hist",
        random_state=seed,
        n_jobs=nthread,
        eval_metric="logloss",
        **options,
    )


def positive_probability(model: Any, features: pd.DataFrame) -> np.ndarray:
    """Return the positive-class probability of each row from a fitted classifier."""
    return np.asarray(model.predict_proba(features))[:, 1]
