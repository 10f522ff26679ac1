from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler

from mlops_assets.core.contract import contract_from_frame
from mlops_assets.core.model_bundle import ModelBundle
from mlops_assets.serving.scorer import (
    UnsupportedPipelineError,
    build_scorer,
    compile_pipeline,
    to_frame,
    warm_batch,
)
from mlops_assets.serving.validation import ContractValidator
from mlops_assets_tests.serving.registry import (
    categorical_bundle,
    feature_frame,
    logistic_bundle,
    xgb_bundle,
)


def rows_of(frame: pd.DataFrame) -> list[dict]:
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


@pytest.mark.parametrize("make", [xgb_bundle, logistic_bundle], ids=["xgboost", "logistic"])
def test_compiled_path_equals_the_pipeline(make) -> None:
    bundle = make()
    frame, _ = feature_frame(rows=200, seed=42)  # unseen rows, with missing values
    validator = ContractValidator(bundle.contract)
    scorer = build_scorer(bundle, validator.validate(warm_batch(bundle)))
    assert scorer.path == "numpy" and scorer.reason == ""
    fast = scorer.probabilities(validator.validate(rows_of(frame)))
    reference = bundle.predict_proba(frame).astype(np.float64)
    if make is xgb_bundle:  # same float32 inputs to the same trees: bit-identical
        assert np.array_equal(fast, reference)
    else:  # float64 arithmetic in another order: equal to rounding
        assert np.max(np.abs(fast - reference)) < 1e-12
    assert np.array_equal(scorer.labels(fast), bundle.predict(frame))


def test_string_columns_use_the_exact_pandas_path() -> None:
    bundle = categorical_bundle()
    validator = ContractValidator(bundle.contract)
    scorer = build_scorer(bundle, validator.validate(warm_batch(bundle)))
    assert scorer.path == "pandas" and "string" in scorer.reason
    frame, _ = feature_frame(rows=20, seed=3)
    frame["channel"] = ["web", "pos"] * 10
    batch = validator.validate(rows_of(frame))
    assert np.allclose(scorer.probabilities(batch), bundle.predict_proba(frame))


def test_unsupported_parts_fall_back_to_the_pipeline() -> None:
    frame, labels = feature_frame()
    base = xgb_bundle()
    scaled = Pipeline(
        [
            ("preprocess", ColumnTransformer([("num", MinMaxScaler(), list(frame))])),
            ("classifier", base.pipeline.steps[-1][1]),
        ]
    ).fit(frame.fillna(0), labels)
    bundle = ModelBundle(scaled, 0.5, contract_from_frame(frame))
    with pytest.raises(UnsupportedPipelineError, match="MinMaxScaler"):
        compile_pipeline(bundle)
    validator = ContractValidator(bundle.contract)
    rows = [row for row in warm_batch(bundle) if None not in row.values()]
    scorer = build_scorer(bundle, validator.validate(rows))
    assert scorer.path == "pandas" and "MinMaxScaler" in scorer.reason


def test_a_compiled_path_that_disagrees_is_not_used(monkeypatch) -> None:
    import mlops_assets.serving.scorer as scorer_module

    bundle = xgb_bundle()
    monkeypatch.setattr(
        scorer_module, "compile_pipeline", lambda bundle: lambda matrix: np.zeros(len(matrix))
    )
    scorer = build_scorer(bundle, ContractValidator(bundle.contract).validate(warm_batch(bundle)))
    assert scorer.path == "pandas" and "differs" in scorer.reason


def test_to_frame_restores_training_dtypes() -> None:
    bundle = categorical_bundle()
    validator = ContractValidator(bundle.contract)
    rows = warm_batch(bundle, rows=8)
    frame = to_frame(bundle, validator.validate(rows))
    assert list(frame.columns) == bundle.contract.names
    assert frame["channel"].dtype == object and frame["V1"].dtype == np.float64
    complete = [row for row in rows if None not in row.values()]
    assert to_frame(bundle, validator.validate(complete))["count"].dtype == np.int64


def test_warm_rows_follow_the_logged_example() -> None:
    bundle = categorical_bundle()
    example = {"V1": 100.0, "V2": 0.0, "V3": 1.0, "Amount": 5.0, "count": 7, "channel": "pos"}
    rows = warm_batch(bundle, [example], rows=14)
    assert {row["channel"] for row in rows} <= {"pos", None}
    assert np.mean([row["V1"] for row in rows if row["V1"] is not None]) > 50
    assert any(row["V1"] is None for row in rows)  # nullable columns get missing values


def test_direct_xgboost_predictor_matches_predict_proba_with_early_stopping() -> None:
    from xgboost import XGBClassifier

    from mlops_assets.serving.xgb_predict import dense_predictor, public_predictor

    frame, labels = feature_frame(rows=400, seed=5)
    matrix = frame.to_numpy(dtype=np.float64)
    classifier = XGBClassifier(
        n_estimators=60, max_depth=3, n_jobs=1, early_stopping_rounds=3, eval_metric="logloss"
    ).fit(matrix[:300], labels[:300], eval_set=[(matrix[300:], labels[300:])], verbose=False)
    assert classifier.best_iteration < 59  # stopped early: fewer trees than were fitted
    expected = classifier.predict_proba(matrix)[:, 1]
    for predictor in (dense_predictor(classifier), public_predictor(classifier)):
        assert np.array_equal(predictor(matrix), expected)
        assert np.array_equal(predictor(matrix[:1]), expected[:1])
