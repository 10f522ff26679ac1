"""Shared shapes of the benchmark suite: settings in, figures out, repetitions with spread.

Every suite benchmark is a module exposing ``suite(settings: Settings) -> list[Figure]``.
The entry point (``python -m benchmarks``) calls them in order, prints one table and writes
the JSON results and ``BENCHMARKS.md``.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_assets.core.paths import PROJECT_ROOT

DEFAULT_DATA = PROJECT_ROOT.parent / "shared" / "data" / "creditcard.csv.gz"


@dataclass(frozen=True)
class Settings:
    """What every benchmark gets.

    Attributes:
        data: the labelled CSV (gzip allowed) to benchmark on; the credit-card file by default.
        target: name of the label column in ``data``.
        workdir: a scratch folder owned by this run (tables, registries, logs).
        smoke: tiny data and one repetition, so the suite runs in seconds in the test command.
        warmup: untimed runs before the timed ones.
        reps: timed repetitions; figures report their median and spread.
        positive: the positive label of ``target`` as text (``1``, ``yes``...).
        full: run the long variants for real instead of projecting them (100 tuning trials).
    """

    data: Path = DEFAULT_DATA
    target: str = "Class"
    workdir: Path = Path("/tmp/mlops-benchmarks")
    smoke: bool = False
    warmup: int = 1
    reps: int = 3
    positive: str = "1"
    full: bool = False

    @property
    def timed_reps(self) -> int:
        """Timed repetitions actually run: one in smoke mode."""
        return 1 if self.smoke else max(1, self.reps)

    @property
    def warmup_runs(self) -> int:
        """Untimed runs actually made: none in smoke mode."""
        return 0 if self.smoke else max(0, self.warmup)


@dataclass(frozen=True)
class Stats:
    """Median and spread of repeated measurements."""

    values: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def spread(self) -> float:
        """Max minus min of the repetitions (0 for a single one)."""
        return max(self.values) - min(self.values)


@dataclass(frozen=True)
class Figure:
    """One reported number.

    Attributes:
        benchmark: the suite benchmark that measured it (``serving``, ``scaling``...).
        name: what was measured, e.g. ``rps c=8 logging on`` or ``ratio this/mlflow c=8``.
        value: the median (or the single value).
        unit: ``s``, ``MiB``, ``rps``, ``ms``, ``x`` (ratio), ``%``...
        spread: max - min over the repetitions, or None when not repeated.
        target: the target as text (``<= 5 s``), or None.
        met: whether the target is met, or None when there is no target.
        note: anything a reader needs (rows, engine, caveats).
        status: ``ok``, ``skipped`` (value NaN, the reason in ``note``) or ``failed``
            (value NaN, the error in ``note``).
        extra: further machine-readable details, written to the JSON only.
    """

    benchmark: str
    name: str
    value: float
    unit: str
    spread: float | None = None
    target: str | None = None
    met: bool | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    status: str = "ok"


def skipped(benchmark: str, name: str, reason: str) -> Figure:
    """A figure that was deliberately not measured (e.g. Spark in smoke mode)."""
    return Figure(benchmark, name, math.nan, "", note=reason, status="skipped")


def failed(benchmark: str, error: BaseException) -> Figure:
    """The figure standing for a benchmark that raised: the suite reports it and goes on."""
    text = f"{type(error).__name__}: {error}".strip()
    return Figure(benchmark, "benchmark failed", math.nan, "", note=text[:2000], status="failed")


def timing(
    benchmark: str,
    name: str,
    stats: Stats,
    unit: str = "s",
    target: float | None = None,
    note: str = "",
    scale: float = 1.0,
) -> Figure:
    """A repeated timing as a figure, checked against an upper-bound ``target`` if given."""
    value = stats.median * scale
    return Figure(
        benchmark,
        name,
        value,
        unit,
        spread=stats.spread * scale if len(stats.values) > 1 else None,
        target=None if target is None else f"<= {target:g} {unit}",
        met=None if target is None else at_most(value, target),
        note=note,
        extra={"values": [v * scale for v in stats.values]},
    )


def ratio(
    benchmark: str, name: str, numerator: float, denominator: float, note: str = ""
) -> Figure:
    """``numerator / denominator`` as an ``x`` figure (NaN when the denominator is 0)."""
    value = numerator / denominator if denominator else math.nan
    return Figure(benchmark, name, value, "x", note=note)


def repeat(function: Callable[[], Any], settings: Settings) -> tuple[Stats, Any]:
    """Run ``function`` ``settings.warmup`` times untimed, then ``settings.reps`` times timed.

    Returns:
        The wall-clock seconds of the timed runs and the last run's return value.
    """
    result = None
    for _ in range(settings.warmup_runs):
        result = function()
    seconds = []
    for _ in range(settings.timed_reps):
        started = time.perf_counter()
        result = function()
        seconds.append(time.perf_counter() - started)
    return Stats(tuple(seconds)), result


def at_most(value: float, bound: float) -> bool:
    """Target check ``value <= bound``."""
    return value <= bound


def at_least(value: float, bound: float) -> bool:
    """Target check ``value >= bound``."""
    return value >= bound


def smoke_sample(settings: Settings, rows: int = 3000, positives: int = 150) -> Path:
    """Write a tiny labelled sample of ``settings.data`` for smoke runs; return its path.

    The positives are enriched (up to ``positives`` of them) so that splits, resampling and
    tuning have enough of each class; files already that small are used as they are.

    Raises:
        ValueError: The file lacks the target column or has no positive rows.
    """
    import pandas as pd

    frame = pd.read_csv(settings.data)
    if settings.target not in frame.columns:
        raise ValueError(
            f"{settings.data}: target column {settings.target!r} not found; "
            f"columns are {list(frame.columns)}"
        )
    if len(frame) <= rows:
        return settings.data
    is_positive = frame[settings.target].astype(str) == settings.positive
    if not is_positive.any():
        raise ValueError(f"{settings.data}: no row has {settings.target} == {settings.positive!r}")
    positive = frame[is_positive]
    positive = positive.sample(n=min(positives, len(positive)), random_state=0)
    negative = frame[~is_positive]
    negative = negative.sample(n=min(rows - len(positive), len(negative)), random_state=0)
    sample = pd.concat([positive, negative]).sort_index()
    settings.workdir.mkdir(parents=True, exist_ok=True)
    path = settings.workdir / "smoke-sample.csv"
    sample.to_csv(path, index=False)
    return path
