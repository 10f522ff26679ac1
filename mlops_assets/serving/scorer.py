"""The scoring hot path: validated batch -> positive-class probabilities, without pandas.

``ModelBundle.predict_proba`` goes through a pandas frame and the ColumnTransformer, about
2 ms for one row here. For pipelines made of parts whose maths is simple and public
(``ColumnTransformer`` of ``SimpleImputer`` / ``StandardScaler`` / passthrough, then an
``XGBClassifier`` or any classifier with ``predict_proba``), :func:`build_scorer` compiles the
preprocessing into numpy operations on the contract-ordered matrix and calls the booster's
``inplace_predict`` (about 0.1 ms). The compiled scorer is only used after it reproduced
``bundle.predict_proba`` on warm-up rows; anything else keeps the exact pandas path.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mlops_assets.core.model_bundle import ModelBundle
from mlops_assets.serving.validation import FeatureBatch
from mlops_assets.serving.xgb_predict import dense_predictor

logger = logging.getLogger(__name__)
Step = Callable[[np.ndarray], np.ndarray]
TOLERANCE = 1e-6


class UnsupportedPipelineError(TypeError):
    """The pipeline has a part the numpy compiler does not know (the pandas path is used)."""


@dataclass(frozen=True)
class Scorer:
    """Scores validated batches for one model version.

    Attributes:
        bundle: The model bundle.
        path: ``numpy`` (compiled) or ``pandas`` (the bundle's own pipeline).
        reason: Why the compiled path is not used (empty when it is).
        compiled: The compiled function (matrix -> probabilities), if any.
    """

    bundle: ModelBundle
    path: str
    reason: str = ""
    compiled: Callable[[np.ndarray], np.ndarray] | None = field(default=None, repr=False)

    def probabilities(self, batch: FeatureBatch) -> np.ndarray:
        """Return float64 positive-class probabilities, one per row."""
        if self.compiled is not None and batch.matrix is not None:
            return np.asarray(self.compiled(batch.matrix), dtype=np.float64)
        return np.asarray(self.bundle.predict_proba(to_frame(self.bundle, batch)), dtype=np.float64)

    def labels(self, probabilities: np.ndarray) -> np.ndarray:
        """Apply the stored threshold."""
        return self.bundle.labels(probabilities)


def to_frame(bundle: ModelBundle, batch: FeatureBatch) -> pd.DataFrame:
    """Build the raw frame the fitted pipeline expects (dtypes as in training)."""
    names = bundle.contract.names
    if batch.matrix is not None:
        frame = pd.DataFrame(batch.matrix, columns=names)
    else:
        assert batch.columns is not None
        frame = pd.DataFrame({name: batch.columns[name] for name in names})
    for spec in bundle.contract.columns:
        column = frame[spec.name]
        if spec.kind == "integer" and not column.isna().any():
            frame[spec.name] = column.astype("int64")
        elif spec.kind in ("string", "boolean"):
            frame[spec.name] = column.astype(object)
    return frame


def _indices(columns, names: list[str]) -> list[int]:
    if isinstance(columns, str):
        columns = [columns]
    if isinstance(columns, slice):
        return list(range(len(names)))[columns]
    position = {name: index for index, name in enumerate(names)}
    chosen = []
    for item in np.atleast_1d(np.asarray(columns)).tolist():
        if isinstance(item, bool):
            raise UnsupportedPipelineError("boolean column masks")
        chosen.append(position[item] if isinstance(item, str) else int(item))
    return chosen


def _compile_transformer(transformer) -> Step:
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    if transformer == "passthrough" or transformer is None:
        return lambda block: block
    if isinstance(transformer, Pipeline):
        steps = [_compile_transformer(step) for _, step in transformer.steps]

        def chain(block: np.ndarray) -> np.ndarray:
            for step in steps:
                block = step(block)
            return block

        return chain
    if isinstance(transformer, SimpleImputer):
        statistics = np.asarray(transformer.statistics_, dtype=np.float64)
        missing = transformer.missing_values
        if transformer.add_indicator or np.isnan(statistics).any():
            raise UnsupportedPipelineError("SimpleImputer with indicators or all-missing columns")
        if not (isinstance(missing, float) and np.isnan(missing)):
            raise UnsupportedPipelineError(f"SimpleImputer(missing_values={missing!r})")
        return lambda block: np.where(np.isnan(block), statistics, block)
    if isinstance(transformer, StandardScaler):
        mean = transformer.mean_ if transformer.with_mean else None
        scale = transformer.scale_ if transformer.with_std else None
        mean = np.zeros(1) if mean is None else np.asarray(mean, dtype=np.float64)
        scale = np.ones(1) if scale is None else np.asarray(scale, dtype=np.float64)
        return lambda block: (block - mean) / scale
    raise UnsupportedPipelineError(type(transformer).__name__)


def _compile_preprocess(preprocess, names: list[str]) -> Step:
    from sklearn.compose import ColumnTransformer

    if not isinstance(preprocess, ColumnTransformer):
        return _compile_transformer(preprocess)
    if getattr(preprocess, "sparse_output_", False):
        raise UnsupportedPipelineError("sparse ColumnTransformer output")
    parts = [
        (_compile_transformer(transformer), _indices(columns, names))
        for _, transformer, columns in preprocess.transformers_
        if transformer != "drop" and len(_indices(columns, names))
    ]
    return lambda matrix: np.hstack([step(matrix[:, index]) for step, index in parts])


def _compile_classifier(classifier) -> Step:
    booster_of = getattr(classifier, "get_booster", None)
    if booster_of is not None:
        if getattr(classifier, "objective", None) != "binary:logistic":
            raise UnsupportedPipelineError(f"XGBoost objective {classifier.objective!r}")
        return dense_predictor(classifier)
    if not hasattr(classifier, "predict_proba"):
        raise UnsupportedPipelineError(f"{type(classifier).__name__} has no predict_proba")
    return lambda matrix: classifier.predict_proba(matrix)[:, 1]


def compile_pipeline(bundle: ModelBundle) -> Callable[[np.ndarray], np.ndarray]:
    """Compile ``bundle.pipeline`` into a matrix -> probability function.

    Raises:
        UnsupportedPipelineError: When a part of the pipeline is not supported.
    """
    from sklearn.pipeline import Pipeline

    pipeline = bundle.pipeline
    if not isinstance(pipeline, Pipeline):
        raise UnsupportedPipelineError(f"{type(pipeline).__name__} is not a Pipeline")
    names = bundle.contract.names
    steps = [_compile_preprocess(step, names) for _, step in pipeline.steps[:-1]]
    classify = _compile_classifier(pipeline.steps[-1][1])

    def score(matrix: np.ndarray) -> np.ndarray:
        for step in steps:
            matrix = step(matrix)
        return classify(matrix)

    return score


def build_scorer(bundle: ModelBundle, warm_rows: FeatureBatch) -> Scorer:
    """Compile the fast path when possible and keep it only if it matches the bundle exactly.

    Args:
        bundle: The model bundle.
        warm_rows: Validated rows used to compare both paths (and to warm them up).

    Returns:
        A scorer; its ``path`` says which path it uses and ``reason`` why not the fast one.
    """
    reference = np.asarray(bundle.predict_proba(to_frame(bundle, warm_rows)), dtype=np.float64)
    if warm_rows.matrix is None:
        return Scorer(bundle, "pandas", "contract has string or boolean columns")
    try:
        compiled = compile_pipeline(bundle)
        fast = np.asarray(compiled(warm_rows.matrix), dtype=np.float64)
    except Exception as error:  # noqa: BLE001 - any failure keeps the exact path
        return Scorer(bundle, "pandas", f"not compiled: {type(error).__name__}: {error}")
    gap = float(np.max(np.abs(fast - reference))) if len(fast) == len(reference) else np.inf
    if not gap <= TOLERANCE:
        logger.warning("compiled scorer differs from the pipeline by %.3g; using pandas", gap)
        return Scorer(bundle, "pandas", f"compiled path differs from the pipeline by {gap:.3g}")
    return Scorer(bundle, "numpy", "", compiled)


def warm_batch(
    bundle: ModelBundle, examples: list[dict] | None = None, rows: int = 64, seed: int = 0
) -> list[dict]:
    """Warm-up request rows covering the contract, with missing values where nullable.

    Numbers vary around the logged input example (or around 0 without one); strings and
    booleans are taken from the example so a fitted encoder knows them.
    """
    rng = np.random.default_rng(seed)
    records: list[dict] = []
    for index in range(rows):
        base = examples[index % len(examples)] if examples else {}
        record = {}
        for spec in bundle.contract.columns:
            seen = base.get(spec.name)
            if spec.nullable and index % 7 == 3:
                value = None
            elif spec.kind == "number":
                center = float(seen) if isinstance(seen, int | float) and seen == seen else 0.0
                value = center + float(rng.normal(scale=1.0 + abs(center) / 2))
            elif spec.kind == "integer":
                center = int(seen) if isinstance(seen, int | float) and seen == seen else 0
                value = center + int(rng.integers(-3, 4))
            elif spec.kind == "boolean":
                value = bool(seen) if isinstance(seen, bool) else bool(index % 2)
            else:
                value = seen if isinstance(seen, str) else f"value{index % 3}"
            record[spec.name] = value
        records.append(record)
    return records
