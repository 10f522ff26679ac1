"""Single-row XGBoost prediction with less Python around the C call.

``Booster.inplace_predict`` spends about as long in Python (argument JSON, type dispatch,
array-interface objects) as in the C predictor for one row: ~0.12 ms against ~0.05 ms here.
:func:`dense_predictor` prepares the predictor's JSON arguments once and calls XGBoost's
``XGBoosterPredictFromDense`` entry point directly, as ``inplace_predict`` does for a numpy
array. It uses XGBoost internals (pinned version), so it is only ever used after the scorer
checked it reproduces the pipeline's probabilities bit for bit; if the internals are not
there, the public ``inplace_predict`` is used.
"""

from __future__ import annotations

import ctypes
import logging
from collections.abc import Callable

import numpy as np

logger = logging.getLogger(__name__)


def _iteration_end(classifier) -> int:
    """Trees the sklearn wrapper would use: up to ``best_iteration`` after early stopping."""
    try:
        return int(classifier.best_iteration) + 1
    except AttributeError:
        return 0  # all trees


def public_predictor(classifier) -> Callable[[np.ndarray], np.ndarray]:
    """Positive-class probability through the public ``inplace_predict``."""
    booster, end = classifier.get_booster(), _iteration_end(classifier)
    missing = classifier.missing

    def predict(matrix: np.ndarray) -> np.ndarray:
        return booster.inplace_predict(
            np.ascontiguousarray(matrix, dtype=np.float32),
            iteration_range=(0, end),
            missing=missing,
            validate_features=False,
        )

    return predict


def dense_predictor(classifier) -> Callable[[np.ndarray], np.ndarray]:
    """Positive-class probability through ``XGBoosterPredictFromDense`` (public one if absent)."""
    try:
        from xgboost._data_utils import array_interface
        from xgboost.core import _LIB, _check_call, c_bst_ulong, make_jcargs
    except ImportError:
        logger.info("xgboost internals not found; using Booster.inplace_predict")
        return public_predictor(classifier)
    booster = classifier.get_booster()
    arguments = make_jcargs(
        type=0,
        training=False,
        iteration_begin=0,
        iteration_end=_iteration_end(classifier),
        missing=classifier.missing,
        strict_shape=False,
        cache_id=0,
    )
    entry = _LIB.XGBoosterPredictFromDense

    def predict(matrix: np.ndarray) -> np.ndarray:
        data = np.ascontiguousarray(matrix, dtype=np.float32)
        shape, dims = ctypes.POINTER(c_bst_ulong)(), c_bst_ulong()
        output = ctypes.POINTER(ctypes.c_float)()
        _check_call(
            entry(
                booster.handle,
                array_interface(data),
                arguments,
                None,
                ctypes.byref(shape),
                ctypes.byref(dims),
                ctypes.byref(output),
            )
        )
        size = int(np.prod([shape[index] for index in range(dims.value)]))
        if size != len(data):
            raise ValueError(f"XGBoost returned {size} values for {len(data)} rows")
        return np.ctypeslib.as_array(output, shape=(size,)).copy()  # XGBoost reuses the buffer

    return predict
