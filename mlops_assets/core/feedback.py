"""Served rows joined with their late true labels, accumulated in ``labeled_feedback``.

Feedback (``feedback``: request_id, true label, timestamp) joins served rows on
``request_id``; a request labelled twice keeps its latest label, a request id served twice
(a retried batch) keeps its first answer. ``labeled_feedback`` holds one row per labeled
request: the features as served, the true ``label`` (0/1) and provenance columns.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from mlops_assets.constants import FEEDBACK_TABLE, INFERENCE_LOG_TABLE, LABELED_FEEDBACK_TABLE
from mlops_assets.core.monitoring import REQUEST_ID, MonitoringError, feature_names
from mlops_assets.core.tables import DeltaEngine, TableRef

TRUE_LABEL = "true_label"
# Provenance columns of ``labeled_feedback`` besides the features and the true ``label``.
PROVENANCE_COLUMNS = (
    "request_id",
    "served_at",
    "model_name",
    "model_version",
    "probability",
    "predicted_label",
    "feedback_at",
)


def latest_labels(feedback: pd.DataFrame) -> pd.DataFrame:
    """One row per request id: its latest label (``true_label``) and when it came (``feedback_at``).

    Raises:
        MonitoringError: When a feedback column is missing or a label is not 0/1.
    """
    missing = [name for name in (REQUEST_ID, "label", "timestamp") if name not in feedback]
    if missing:
        raise MonitoringError(f"table {FEEDBACK_TABLE!r} lacks column(s) {missing}")
    bad = sorted(set(feedback["label"].dropna().unique().tolist()) - {0, 1})
    if bad or feedback["label"].isna().any():
        raise MonitoringError(f"table {FEEDBACK_TABLE!r}, column 'label': values {bad} not 0/1")
    ordered = feedback.sort_values("timestamp", kind="stable")
    latest = ordered.drop_duplicates(REQUEST_ID, keep="last")
    return latest.rename(columns={"label": TRUE_LABEL, "timestamp": "feedback_at"})[
        [REQUEST_ID, TRUE_LABEL, "feedback_at"]
    ]


def join_feedback(predictions: pd.DataFrame, feedback: pd.DataFrame) -> pd.DataFrame:
    """Served rows that have a feedback label: prediction columns + ``true_label``, ``feedback_at``.

    A request id served twice (a retried batch) keeps its first answer.
    """
    if predictions.empty or feedback.empty:
        return pd.DataFrame()
    if REQUEST_ID not in predictions:
        raise MonitoringError(f"table {INFERENCE_LOG_TABLE!r} lacks column {REQUEST_ID!r}")
    served = predictions.drop_duplicates(REQUEST_ID, keep="first")
    return served.merge(latest_labels(feedback), on=REQUEST_ID, how="inner")


def labeled_rows(joined: pd.DataFrame) -> pd.DataFrame:
    """Rows of ``labeled_feedback`` from joined rows: features, true ``label``, provenance."""
    features = feature_names(joined.drop(columns=[TRUE_LABEL, "feedback_at"]))
    clashes = [name for name in features if name in PROVENANCE_COLUMNS]
    if clashes:
        raise MonitoringError(f"feature column(s) {clashes} clash with labeled_feedback columns")
    rows = joined[features].copy()
    rows["label"] = joined[TRUE_LABEL].astype("int64")
    rows["request_id"] = joined[REQUEST_ID].astype(str)
    rows["served_at"] = joined["timestamp"]
    rows["model_name"] = joined["model_name"]
    rows["model_version"] = joined["model_version"].astype("int64")
    rows["probability"] = joined["probability"].astype("float64")
    rows["predicted_label"] = joined["label"].astype("int64")
    rows["feedback_at"] = joined["feedback_at"]
    return rows.reset_index(drop=True)


@dataclass(frozen=True)
class FeedbackUpdate:
    """What :func:`update_labeled_feedback` did.

    Attributes:
        ref: The ``labeled_feedback`` version now current (None: no labeled row yet).
        appended: Rows appended by this call.
        total: Rows in the table afterwards.
        inference_log_version: Version of ``inference_log`` read (-1: absent).
        feedback_version: Version of ``feedback`` read (-1: absent).
        positives: Rows with true label 1 among the appended ones.
    """

    ref: TableRef | None
    appended: int
    total: int
    inference_log_version: int
    feedback_version: int
    positives: int = 0


def update_labeled_feedback(
    engine: DeltaEngine,
    log_table: str = INFERENCE_LOG_TABLE,
    feedback_table: str = FEEDBACK_TABLE,
    table: str = LABELED_FEEDBACK_TABLE,
) -> FeedbackUpdate:
    """Append served rows that got a label since the last call to ``labeled_feedback``.

    Both source tables are read in full at their latest versions, because a late label may
    belong to a request served long ago; rows whose ``request_id`` is already in the table
    are skipped, so each labeled request appears once. Nothing is written when nothing is new.

    Returns:
        The current version and the figures.
    """
    log_version = engine.latest_version(log_table)
    feedback_version = engine.latest_version(feedback_table)
    current_version = engine.latest_version(table)
    existing = engine.read(table, current_version) if current_version is not None else None
    current_ref = (
        TableRef(table, engine.uri(table), current_version) if current_version is not None else None
    )
    total = len(existing) if existing is not None else 0
    versions = {
        "inference_log_version": -1 if log_version is None else log_version,
        "feedback_version": -1 if feedback_version is None else feedback_version,
    }
    if log_version is None or feedback_version is None:
        return FeedbackUpdate(current_ref, 0, total, **versions)
    joined = join_feedback(
        engine.read(log_table, log_version), engine.read(feedback_table, feedback_version)
    )
    if existing is not None and not joined.empty:
        joined = joined[~joined[REQUEST_ID].astype(str).isin(existing[REQUEST_ID])]
    if joined.empty:
        return FeedbackUpdate(current_ref, 0, total, **versions)
    rows = labeled_rows(joined)
    ref = engine.write(table, rows, mode="append")
    positives = int(rows["label"].sum())
    return FeedbackUpdate(ref, len(rows), total + len(rows), positives=positives, **versions)
