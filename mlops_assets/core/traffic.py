"""Production traffic for the simulator: which rows, which drift, when to send, when to label.

Traffic is made of rows no model trained on: for a real source, the held-out tail of its
order column (see :mod:`mlops_assets.core.holdout`), replayed in order; for the synthetic
source, fresh rows drawn with another seed. Drift can be injected from a given row on:
feature shifts and rescaling in standard deviations, a changed fraud pattern (the fraud
signature leaves its usual columns and appears on others) and a different positive rate.
Pacing, feedback scheduling, progress and the summary live in
:mod:`mlops_assets.core.traffic_run`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mlops_assets.core import synthetic
from mlops_assets.core.sources import TargetSpec
from mlops_assets.core.traffic_drift import DriftInjection, inject_drift


@dataclass(frozen=True)
class TrafficRows:
    """The rows a simulation sends, in order.

    Attributes:
        features: Input columns only (what ``/predict`` receives), one row per request row.
        labels: True 0/1 labels (what ``/feedback`` receives later).
        drifted: Whether each row carries injected drift.
        description: Where the rows come from and what was injected.
    """

    features: pd.DataFrame
    labels: np.ndarray
    drifted: np.ndarray
    description: str

    def __post_init__(self) -> None:
        if not len(self.features) == len(self.labels) == len(self.drifted):
            raise ValueError("TrafficRows: features, labels and drifted differ in length")

    @property
    def rows(self) -> int:
        """Number of rows."""
        return len(self.features)

    @property
    def drift_onset_row(self) -> int | None:
        """Index of the first drifted row, or None without drift."""
        hits = np.flatnonzero(self.drifted)
        return int(hits[0]) if len(hits) else None

    def slice(self, start: int, stop: int, description: str) -> TrafficRows:
        """Rows ``start`` to ``stop`` (a phase of the traffic) under a new description."""
        return TrafficRows(
            self.features.iloc[start:stop].reset_index(drop=True),
            self.labels[start:stop],
            self.drifted[start:stop],
            description,
        )

    def project(self, columns: list[str]) -> TrafficRows:
        """Keep only ``columns`` (a model's input contract), in that order.

        Raises:
            ValueError: A contract column is absent from the traffic rows.
        """
        missing = [name for name in columns if name not in self.features.columns]
        if missing:
            raise ValueError(
                f"traffic rows lack the model's input column(s) {missing}; "
                f"they have {list(self.features.columns)}"
            )
        return TrafficRows(self.features[columns], self.labels, self.drifted, self.description)


def synthetic_rows(
    rows: int,
    seed: int,
    positive_rate: float = synthetic.POSITIVE_RATE,
    drift: DriftInjection | None = None,
) -> TrafficRows:
    """Fresh synthetic traffic: clean rows, then drifted rows drawn with the drift applied.

    Args:
        rows: Rows in all (>= 1).
        seed: Seed; use one other than the training data's so no row repeats.
        positive_rate: Share of fraud rows before the drift.
        drift: Optional drift; the drifted part is drawn from the drifted generator.
    """
    if rows < 1:
        raise ValueError(f"traffic rows must be at least 1, got {rows}")
    clean_rows = rows if drift is None else min(rows, drift.after_rows)
    parts, marks = [], []
    if clean_rows:
        parts.append(synthetic.generate(clean_rows, seed=seed, positive_rate=positive_rate))
        marks.append(np.zeros(clean_rows, dtype=bool))
    if drift is not None and rows > clean_rows:
        drifted = synthetic.generate(
            rows - clean_rows, seed=seed + 1, positive_rate=positive_rate, drift=drift.spec
        )
        if parts:  # the drifted stretch follows the clean one in time
            drifted["Time"] += parts[0]["Time"].max() + 1.0
        parts.append(drifted)
        marks.append(np.ones(rows - clean_rows, dtype=bool))
    frame = pd.concat(parts, ignore_index=True)
    labels = frame.pop(synthetic.TARGET_COLUMN).to_numpy(dtype=np.int64)
    where = f"synthetic traffic, {rows} rows, seed {seed}"
    if drift is not None:
        where += f"; drift: {drift.describe()}"
    return TrafficRows(frame, labels, np.concatenate(marks), where)


def replay_rows(
    tail: pd.DataFrame,
    target: TargetSpec,
    where: str,
    rows: int | None = None,
    drift: DriftInjection | None = None,
    seed: int = 0,
) -> TrafficRows:
    """Replay a held-out tail in order, optionally drifted from ``drift.after_rows`` on.

    Args:
        tail: Held-out rows, in order (features and target).
        target: Target column and positive label of ``tail``.
        where: Where the rows come from, for messages.
        rows: How many rows to send (None: the whole tail).
        drift: Optional drift injected into the rows after ``drift.after_rows``.
        seed: Seed of the drift injection.

    Raises:
        ValueError: More rows are asked than the tail holds, or the drift names columns
            the rows lack.
    """
    if rows is not None and not 1 <= rows <= len(tail):
        raise ValueError(f"{where}: asked for {rows} rows; the held-out tail has {len(tail)}")
    frame = tail.iloc[: rows or len(tail)].reset_index(drop=True)
    labels = true_labels(frame, target, where)
    features = frame.drop(columns=[target.column])
    drifted = np.zeros(len(frame), dtype=bool)
    if drift is not None and drift.after_rows < len(frame):
        start = drift.after_rows
        shifted, new_labels = inject_drift(
            features.iloc[start:], labels[start:], drift.spec, seed, where
        )
        features = pd.concat([features.iloc[:start], shifted], ignore_index=True)
        labels = np.concatenate([labels[:start], new_labels])
        drifted[start:] = True
        where += f"; drift: {drift.describe()}"
    return TrafficRows(features, labels, drifted, where)


def true_labels(frame: pd.DataFrame, target: TargetSpec, where: str) -> np.ndarray:
    """The target as 0/1 (1 where it equals the positive label); one class is fine here.

    Raises:
        ValueError: The target column is missing, has missing values, or is numeric while
            the positive label is not a number.
    """
    if target.column not in frame.columns:
        raise ValueError(f"{where}, column {target.column!r}: target column not found")
    values = frame[target.column]
    if values.isna().any():
        raise ValueError(
            f"{where}, column {target.column!r}: {int(values.isna().sum())} row(s) lack a label"
        )
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        try:
            positive = float(target.positive_label)
        except ValueError:
            raise ValueError(
                f"{where}, column {target.column!r}: positive label "
                f"{target.positive_label!r} is not a number but the target is numeric"
            ) from None
        return (values.astype("float64") == positive).to_numpy(dtype=np.int64)
    stripped = values.astype(str).str.strip()
    return (stripped == target.positive_label.strip()).to_numpy(dtype=np.int64)
