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

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mlops_assets.core import synthetic
from mlops_assets.core.schema import binary_label
from mlops_assets.core.sources import TargetSpec


@dataclass(frozen=True)
class DriftInjection:
    """Drift applied to traffic from row ``after_rows`` on (0: from the first row).

    Attributes:
        spec: What changes (shifts, scales, fraud pattern, positive rate).
        after_rows: Clean rows sent before the drift starts.
    """

    spec: synthetic.DriftSpec
    after_rows: int = 0

    def __post_init__(self) -> None:
        if self.after_rows < 0:
            raise ValueError(f"drift after_rows={self.after_rows} must be >= 0")

    def describe(self) -> str:
        """One line: what drifts, from which row."""
        parts = [f"shift {dict(self.spec.shift)}"] if self.spec.shift else []
        parts += [f"scale {dict(self.spec.scale)}"] if self.spec.scale else []
        if self.spec.fraud_pattern_change:
            parts.append(f"fraud pattern change {self.spec.fraud_pattern_change:g}")
        if self.spec.positive_rate is not None:
            parts.append(f"positive rate {self.spec.positive_rate:g}")
        return f"{', '.join(parts) or 'no change'} after row {self.after_rows}"


def parse_assignments(text: str, option: str) -> dict[str, float]:
    """Parse ``V3=2.0,V14=-1.5`` into ``{"V3": 2.0, "V14": -1.5}``.

    Args:
        text: Comma-separated ``COLUMN=NUMBER`` items (empty: none).
        option: The option's name, for error messages (``--drift-shift``).

    Raises:
        ValueError: An item is not ``COLUMN=NUMBER`` or a column repeats; the message names
            the option and the item.
    """
    values: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, number = (piece.strip() for piece in item.partition("="))
        if not sep or not name:
            raise ValueError(f"{option}: item {item!r} is not COLUMN=NUMBER")
        try:
            value = float(number)
        except ValueError:
            raise ValueError(f"{option}: item {item!r}: {number!r} is not a number") from None
        if not math.isfinite(value):
            raise ValueError(f"{option}: item {item!r}: the value must be finite")
        if name in values:
            raise ValueError(f"{option}: column {name!r} appears twice")
        values[name] = value
    return values


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
    labels = binary_label(frame, target, where).to_numpy(dtype=np.int64)
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


def inject_drift(
    features: pd.DataFrame,
    labels: np.ndarray,
    spec: synthetic.DriftSpec,
    seed: int,
    where: str = "traffic rows",
) -> tuple[pd.DataFrame, np.ndarray]:
    """Apply ``spec`` to real rows (the synthetic generator applies it while drawing).

    The positive rate is changed first by resampling rows of each class (order kept);
    a pattern change ``c`` then, for a share ``c`` of the fraud rows, replaces the values of
    the usual fraud columns with those of random legitimate rows and moves the signature
    onto other columns (``synthetic.CHANGED_PATTERN``); shifts and scales come last.
    ``Amount`` is shifted on the log scale.

    Returns:
        The drifted features and their labels.

    Raises:
        ValueError: A column the spec or the pattern change needs is missing.
    """
    rng = np.random.default_rng(seed)
    needed = set(spec.shift) | set(spec.scale)
    if spec.fraud_pattern_change:
        needed |= set(synthetic.ORIGINAL_PATTERN) | set(synthetic.CHANGED_PATTERN)
    missing = sorted(needed - set(features.columns))
    if missing:
        raise ValueError(f"{where}: drift needs column(s) {missing} the rows do not have")
    frame, labels = features.reset_index(drop=True).copy(), np.asarray(labels)
    if spec.positive_rate is not None:
        frame, labels = _resample_rate(frame, labels, spec.positive_rate, rng, where)
    fraud = np.flatnonzero(labels == 1)
    legit = np.flatnonzero(labels == 0)
    changed = fraud[rng.random(len(fraud)) < spec.fraud_pattern_change]
    if len(changed) and len(legit):
        spread = frame.iloc[legit][list(synthetic.CHANGED_PATTERN)].std(ddof=0)
        donors = rng.choice(legit, size=len(changed))
        for name in synthetic.ORIGINAL_PATTERN:
            frame.loc[changed, name] = frame.loc[donors, name].to_numpy()
        intensity = rng.uniform(0.25, 1.5, size=len(changed))
        for name, shift in synthetic.CHANGED_PATTERN.items():
            frame.loc[changed, name] += shift * float(spread[name]) * intensity
    for name, factor in spec.scale.items():
        mean = frame[name].mean()
        frame[name] = mean + (frame[name] - mean) * factor
    for name, shift in spec.shift.items():
        if name == "Amount":
            logged = np.log1p(frame[name].clip(lower=0))
            frame[name] = np.round(np.expm1(logged + shift * logged.std(ddof=0)), 2)
        else:
            frame[name] = frame[name] + shift * frame[name].std(ddof=0)
    return frame, labels


def _resample_rate(
    frame: pd.DataFrame, labels: np.ndarray, rate: float, rng: np.random.Generator, where: str
) -> tuple[pd.DataFrame, np.ndarray]:
    positives, negatives = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    if not len(positives) or not len(negatives):
        raise ValueError(f"{where}: a drifted positive rate needs rows of both classes")
    wanted = max(1, round(rate * len(labels)))
    chosen = np.sort(
        np.concatenate(
            [
                rng.choice(positives, size=wanted, replace=wanted > len(positives)),
                rng.choice(negatives, size=len(labels) - wanted, replace=False),
            ]
        )
    )
    return frame.iloc[chosen].reset_index(drop=True), labels[chosen]
