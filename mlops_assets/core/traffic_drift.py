"""Drift injected into traffic: what changes, from which row, and how on real rows.

Feature shifts and rescaling are in standard deviations; a changed fraud pattern moves the
fraud signature off its usual columns onto others (``synthetic.CHANGED_PATTERN``); a
drifted positive rate is a fraud wave. The synthetic generator applies a
:class:`~mlops_assets.core.synthetic.DriftSpec` while drawing rows; :func:`inject_drift`
applies one to real rows (the held-out tail of a file).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mlops_assets.core import synthetic


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
