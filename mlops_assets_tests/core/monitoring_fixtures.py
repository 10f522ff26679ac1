"""Small seeded frames shaped like the serving tables, for the monitoring tests.

``served_rows`` looks like what the server appends to ``inference_log`` (features plus the
log columns); ``feedback_rows`` like ``feedback``; ``splits_rows`` like ``training_splits``.
Features are those of ``mlops_assets_tests.serving.registry.feature_frame`` (the shape of the
test registry's models), so a registered test model can score them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from mlops_assets.constants import LABEL_COLUMN, SPLIT_COLUMN
from mlops_assets.core.inference_log import LOG_COLUMNS
from mlops_assets_tests.serving.registry import MODEL_NAME, feature_frame

START = datetime(2024, 1, 1, tzinfo=UTC)


def splits_rows(rows: int = 1500, seed: int = 0) -> pd.DataFrame:
    """A ``training_splits`` frame: 60/20/20 train/valid/test of the test features + label."""
    features, labels = feature_frame(rows, seed)
    frame = features.assign(**{LABEL_COLUMN: labels.astype("int64")})
    split = np.where(
        np.arange(rows) % 5 < 3, "train", np.where(np.arange(rows) % 5 == 3, "valid", "test")
    )
    return frame.assign(**{SPLIT_COLUMN: split})


def served_rows(
    features: pd.DataFrame,
    batch: str,
    version: int = 1,
    probabilities: np.ndarray | None = None,
    threshold: float = 0.5,
    start: datetime = START,
    model_name: str = MODEL_NAME,
) -> pd.DataFrame:
    """Rows as ``inference_log`` holds them: one request id per row, features as columns."""
    rows = len(features)
    rng = np.random.default_rng(abs(hash(batch)) % 2**32)
    probability = rng.random(rows) if probabilities is None else np.asarray(probabilities)
    log = pd.DataFrame(
        {
            "request_id": [f"{batch}-{index}" for index in range(rows)],
            "batch_id": batch,
            "timestamp": [start + timedelta(seconds=index) for index in range(rows)],
            "model_name": model_name,
            "model_version": np.full(rows, version, dtype="int64"),
            "model_alias": "champion",
            "probability": probability.astype("float64"),
            "label": (probability >= threshold).astype("int32"),
            "latency_ms": np.full(rows, 1.5),
        }
    )
    assert list(log.columns) == list(LOG_COLUMNS)
    return pd.concat([log, features.reset_index(drop=True)], axis=1)


def feedback_rows(
    request_ids: list[str], labels: list[int] | np.ndarray, start=START
) -> pd.DataFrame:
    """Rows as ``feedback`` holds them."""
    return pd.DataFrame(
        {
            "request_id": list(request_ids),
            "label": np.asarray(labels, dtype="int32"),
            "timestamp": [start + timedelta(hours=1, seconds=i) for i in range(len(request_ids))],
        }
    )
