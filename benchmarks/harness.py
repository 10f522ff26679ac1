"""Shared shapes of the benchmark suite: settings in, figures out, repetitions with spread.

Every suite benchmark is a module exposing ``suite(settings: Settings) -> list[Figure]``.
The entry point (``python -m benchmarks``) calls them in order, prints one table and writes
the JSON results and ``BENCHMARKS.md``.
"""

from __future__ import annotations

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
    """

    data: Path = DEFAULT_DATA
    target: str = "Class"
    workdir: Path = Path("/tmp/mlops-benchmarks")
    smoke: bool = False
    warmup: int = 1
    reps: int = 3


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


def repeat(function: Callable[[], Any], settings: Settings) -> tuple[Stats, Any]:
    """Run ``function`` ``settings.warmup`` times untimed, then ``settings.reps`` times timed.

    Returns:
        The wall-clock seconds of the timed runs and the last run's return value.
    """
    result = None
    for _ in range(0 if settings.smoke else settings.warmup):
        result = function()
    seconds = []
    for _ in range(1 if settings.smoke else max(1, settings.reps)):
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
