"""Data-quality checks on the silver table, as plain outcomes.

The ``check_*`` functions evaluate a silver frame against :class:`CheckThresholds` and
return :class:`CheckOutcome` values; the Dagster layer turns them into asset check results.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from mlops_assets.constants import LABEL_COLUMN as LABEL
from mlops_assets.core.schema import kind_of
from mlops_assets.core.tables import DeltaEngine, TableRef


@dataclass(frozen=True)
class CheckThresholds:
    """Thresholds of the data-quality checks on the silver table.

    Attributes:
        min_positives: Fewest positive rows accepted.
        max_null_rate: Highest share of missing values accepted in any column.
        max_row_count_change: Highest relative change of the row count against the
            previous table version (0.5 = +-50 %).
    """

    min_positives: int = 30
    max_null_rate: float = 0.5
    max_row_count_change: float = 0.5


@dataclass(frozen=True)
class CheckOutcome:
    """The result of one check.

    Attributes:
        name: Check name.
        passed: Whether the check passed.
        description: What was found, in one sentence.
        metadata: Figures behind the verdict.
    """

    name: str
    passed: bool
    description: str
    metadata: Mapping[str, Any] = field(default_factory=dict)


def check_columns_and_types(frame: pd.DataFrame, expected: Mapping[str, str]) -> CheckOutcome:
    """Required columns present with their declared types; every column of a silver type."""
    kinds = {str(name): kind_of(frame[name]) for name in frame.columns}
    expected = {**expected, LABEL: "int"}
    missing = [name for name in expected if name not in kinds]
    wrong = {
        name: f"{kinds[name]} (expected {kind})"
        for name, kind in expected.items()
        if name in kinds and kinds[name] != kind
    }
    unsupported = {name: kind for name, kind in kinds.items() if kind.startswith("other")}
    problems = [f"missing {missing}"] if missing else []
    problems += [f"wrong types {wrong}"] if wrong else []
    problems += [f"unsupported types {unsupported}"] if unsupported else []
    return CheckOutcome(
        name="columns_and_types",
        passed=not problems,
        description="; ".join(problems) or f"{len(expected)} required column(s) with types",
        metadata={"schema": kinds, "missing": missing, "wrong_types": wrong},
    )


def check_two_classes(frame: pd.DataFrame) -> CheckOutcome:
    """The label is present and holds exactly the two classes 0 and 1."""
    if LABEL not in frame.columns:
        return CheckOutcome("two_classes", False, f"column {LABEL!r} missing", {})
    counts = {int(key): int(value) for key, value in frame[LABEL].value_counts().items()}
    passed = set(counts) == {0, 1}
    description = f"label classes {counts}" + ("" if passed else "; need exactly {0, 1}")
    return CheckOutcome("two_classes", passed, description, {"class_counts": counts})


def check_min_positives(frame: pd.DataFrame, min_positives: int) -> CheckOutcome:
    """At least ``min_positives`` rows have label 1."""
    positives = int((frame[LABEL] == 1).sum()) if LABEL in frame.columns else 0
    passed = positives >= min_positives
    description = f"{positives} positive row(s), minimum {min_positives}"
    return CheckOutcome("min_positives", passed, description, {"positives": positives})


def check_null_rates(
    frame: pd.DataFrame, max_null_rate: float, lacking: Mapping[str, int] | None = None
) -> CheckOutcome:
    """No column has a larger share of missing values than ``max_null_rate``.

    ``lacking`` maps columns that some rows lack by construction to the number of those rows
    (labeled production rows carry only the model's inputs, not e.g. ``Time``); such a
    column is judged on the other rows, or growing feedback would block retraining.
    """
    rates = {}
    for name, nulls in frame.isna().sum().items():
        known = min(int((lacking or {}).get(str(name), 0)), int(nulls))
        rows = len(frame) - known
        rates[str(name)] = float((nulls - known) / rows) if rows else 0.0
    over = {name: round(rate, 4) for name, rate in rates.items() if rate > max_null_rate}
    worst = max(rates.items(), key=lambda item: item[1], default=("-", 0.0))
    description = (
        f"null rate above {max_null_rate:g} in column(s) {over}"
        if over
        else f"highest null rate {worst[1]:.4f} (column {worst[0]!r}), max {max_null_rate:g}"
    )
    return CheckOutcome("null_rates", not over, description, {"null_rates": rates})


def check_row_count_change(rows: int, previous_rows: int | None, max_change: float) -> CheckOutcome:
    """The row count moved by at most ``max_change`` against the previous version."""
    if previous_rows is None:
        return CheckOutcome("row_count_change", True, "first version: nothing to compare", {})
    change = (rows - previous_rows) / previous_rows if previous_rows else float("inf")
    passed = abs(change) <= max_change
    description = f"{previous_rows} -> {rows} rows ({change:+.1%}), max change {max_change:.0%}"
    return CheckOutcome(
        "row_count_change",
        passed,
        description,
        {"rows": rows, "previous_rows": previous_rows, "change": change},
    )


def check_transactions(
    engine: DeltaEngine,
    ref: TableRef,
    expected: Mapping[str, str],
    thresholds: CheckThresholds,
    lacking: Mapping[str, int] | None = None,
) -> tuple[CheckOutcome, ...]:
    """Run every data-quality check on ``ref`` (its exact version) and its previous version.

    Args:
        engine: Delta engine.
        ref: The silver table version to check.
        expected: Declared column types (the label is always required as int).
        thresholds: Check thresholds.
        lacking: Columns some rows lack by construction, with their count (see
            :func:`check_null_rates`).

    Returns:
        One outcome per check: columns_and_types, two_classes, min_positives, null_rates,
        row_count_change.
    """
    frame = engine.read(ref.name, ref.version)
    previous = len(engine.read(ref.name, ref.version - 1)) if ref.version > 0 else None
    return (
        check_columns_and_types(frame, expected),
        check_two_classes(frame),
        check_min_positives(frame, thresholds.min_positives),
        check_null_rates(frame, thresholds.max_null_rate, lacking),
        check_row_count_change(len(frame), previous, thresholds.max_row_count_change),
    )
