"""Seeded synthetic transactions with the credit-card fraud schema, optionally drifted.

The frame has the columns of the public credit-card data (``Time``, ``V1``..``V28``,
``Amount``, ``Class``). The ``V`` columns are centred with decreasing spread, like PCA
components; ``Amount`` is log-normal; ``Time`` is seconds over two days with a daily cycle.
Fraud rows carry a learnable signature: shifted means on a few ``V`` columns (scaled by a
per-row intensity, so some frauds are subtle), small correlated noise and a different
``Amount`` distribution. A gradient-boosted model separates them far better than chance
but not perfectly.

A :class:`DriftSpec` produces data for monitoring simulations: shifted or rescaled feature
distributions for chosen columns, a changed fraud pattern (the signature moves to other
columns) and a different positive rate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

V_COLUMNS = tuple(f"V{index}" for index in range(1, 29))
FEATURE_COLUMNS = ("Time", *V_COLUMNS, "Amount")
TARGET_COLUMN = "Class"
COLUMNS = (*FEATURE_COLUMNS, TARGET_COLUMN)
POSITIVE_RATE = 0.00173  # 492 / 284,807 in the public data
SECONDS_PER_DAY = 86_400

# Mean shift (in units of the column's spread) of a fully intense fraud row.
ORIGINAL_PATTERN: Mapping[str, float] = {
    "V14": -3.0,
    "V12": -2.6,
    "V10": -2.2,
    "V17": -2.6,
    "V4": 2.0,
    "V11": 1.8,
    "V3": -1.6,
}
# After a pattern change the fraud signature lives on other columns.
CHANGED_PATTERN: Mapping[str, float] = {
    "V2": 2.4,
    "V5": -2.2,
    "V7": 2.0,
    "V9": -1.8,
    "V16": 2.2,
    "V21": 1.8,
    "V26": -1.6,
}


@dataclass(frozen=True)
class DriftSpec:
    """How drifted data differs from the reference distribution.

    Attributes:
        shift: Additive shift per column, in units of that column's standard deviation
            (``{"V1": 1.5}``); ``Amount`` is shifted on the log scale.
        scale: Multiplicative factor on the spread of a column around its mean.
        fraud_pattern_change: 0 keeps the original fraud signature, 1 moves it entirely to
            other columns; values in between mix both.
        positive_rate: Positive rate of the drifted data; None keeps the generator's rate.
    """

    shift: Mapping[str, float] = field(default_factory=dict)
    scale: Mapping[str, float] = field(default_factory=dict)
    fraud_pattern_change: float = 0.0
    positive_rate: float | None = None

    def __post_init__(self) -> None:
        unknown = sorted((set(self.shift) | set(self.scale)) - set(FEATURE_COLUMNS))
        if unknown:
            raise ValueError(
                f"DriftSpec: unknown column(s) {unknown}; drift applies to {list(FEATURE_COLUMNS)}"
            )
        if not 0.0 <= self.fraud_pattern_change <= 1.0:
            raise ValueError(
                f"DriftSpec.fraud_pattern_change={self.fraud_pattern_change} must be in [0, 1]"
            )
        bad_scales = {name: value for name, value in self.scale.items() if value <= 0}
        if bad_scales:
            raise ValueError(f"DriftSpec.scale must be positive, got {bad_scales}")
        if self.positive_rate is not None and not 0.0 < self.positive_rate < 1.0:
            raise ValueError(f"DriftSpec.positive_rate={self.positive_rate} must be in (0, 1)")


def _spreads() -> np.ndarray:
    # PCA-like: the first components carry the most variance.
    return np.linspace(1.9, 0.3, len(V_COLUMNS))


def generate(
    rows: int,
    seed: int = 0,
    positive_rate: float = POSITIVE_RATE,
    drift: DriftSpec | None = None,
) -> pd.DataFrame:
    """Generate ``rows`` seeded transactions with the credit-card schema.

    Args:
        rows: Number of rows (at least 1).
        seed: Random seed; the same arguments always give the same frame.
        positive_rate: Expected share of fraud rows (``Class == 1``); at least one positive
            and one negative are always present when ``rows >= 2``.
        drift: Optional drift to apply (feature shifts, fraud pattern change, positive rate).

    Returns:
        Frame with columns ``Time``, ``V1``..``V28``, ``Amount`` (float64) and ``Class``
        (int64, 0/1).

    Raises:
        ValueError: When ``rows`` or ``positive_rate`` is out of range.
    """
    if rows < 1:
        raise ValueError(f"synthetic rows must be at least 1, got {rows}")
    rate = drift.positive_rate if drift and drift.positive_rate is not None else positive_rate
    if not 0.0 < rate < 1.0:
        raise ValueError(f"synthetic positive_rate must be in (0, 1), got {rate}")
    rng = np.random.default_rng(seed)
    labels = (rng.random(rows) < rate).astype(np.int64)
    if rows >= 2 and labels.sum() == 0:
        labels[rng.integers(rows)] = 1
    if rows >= 2 and labels.sum() == rows:
        labels[rng.integers(rows)] = 0
    fraud = labels == 1

    spreads = _spreads()
    values = rng.standard_normal((rows, len(V_COLUMNS))) * spreads
    frame = pd.DataFrame(values, columns=list(V_COLUMNS))

    change = drift.fraud_pattern_change if drift else 0.0
    intensity = rng.uniform(0.25, 1.5, size=int(fraud.sum()))
    for pattern, weight in ((ORIGINAL_PATTERN, 1.0 - change), (CHANGED_PATTERN, change)):
        if weight == 0.0:
            continue
        for name, shift in pattern.items():
            spread = spreads[V_COLUMNS.index(name)]
            frame.loc[fraud, name] += weight * shift * spread * intensity

    time = np.sort(rng.uniform(0, 2 * SECONDS_PER_DAY, rows))
    daily = np.sin(2 * np.pi * time / SECONDS_PER_DAY)
    frame["V1"] += 0.3 * daily  # a mild daily rhythm in the first component
    amount = rng.lognormal(mean=3.0, sigma=1.4, size=rows)
    amount[fraud] = rng.lognormal(mean=2.2, sigma=2.0, size=int(fraud.sum()))
    frame.insert(0, "Time", np.round(time))
    frame["Amount"] = np.round(amount, 2)

    if drift:
        for name, factor in drift.scale.items():
            mean = frame[name].mean()
            frame[name] = mean + (frame[name] - mean) * factor
        for name, shift in drift.shift.items():
            if name == "Amount":
                frame[name] = np.round(frame[name] * float(np.exp(shift * 1.4)), 2)
            else:
                frame[name] = frame[name] + shift * frame[name].std(ddof=0)
    frame[TARGET_COLUMN] = labels
    return frame.astype({name: "float64" for name in FEATURE_COLUMNS})
