"""Silver typing: every column float, int, text or bool, and the target as ``label`` 0/1.

:func:`type_columns` and :func:`binary_label` raise :class:`DataValidationError` for rows
that cannot become a valid silver table (unparsable values, a target that is missing or not
binary); the message names where the rows came from, the column and the problem.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd

from mlops_assets.constants import LABEL_COLUMN

if TYPE_CHECKING:
    from mlops_assets.core.sources import TargetSpec

ColumnType = Literal["float", "int", "string", "bool"]
COLUMN_TYPES: tuple[str, ...] = ("float", "int", "string", "bool")
NUMERIC_MAJORITY = 0.9  # a text column this share of which parses as numbers is numeric


class DataValidationError(ValueError):
    """Rows that cannot become a valid silver table; the message says where and why."""


def kind_of(series: pd.Series) -> str:
    """Return the silver type of a column: float, int, string, bool or ``other:<dtype>``."""
    if pd.api.types.is_bool_dtype(series):
        return "bool"
    if pd.api.types.is_integer_dtype(series):
        return "int"
    if pd.api.types.is_float_dtype(series):
        return "float"
    if pd.api.types.is_string_dtype(series) or pd.api.types.is_object_dtype(series):
        non_null = series.dropna()
        if non_null.map(lambda value: isinstance(value, str)).all():
            return "string"
    return f"other:{series.dtype}"


def _examples(series: pd.Series, mask: pd.Series, limit: int = 3) -> str:
    shown = [f"{value!r} at row {index}" for index, value in series[mask].head(limit).items()]
    return ", ".join(shown)


def _cast(series: pd.Series, wanted: str, origin: str) -> pd.Series:
    name = series.name
    if wanted not in COLUMN_TYPES:
        raise DataValidationError(
            f"{origin}, column {name!r}: declared type {wanted!r} is not one of {COLUMN_TYPES}"
        )
    if wanted == "string":
        return series.map(lambda value: value if pd.isna(value) else str(value)).astype(object)
    if wanted == "bool":
        if pd.api.types.is_bool_dtype(series):
            return series
        text = series.map(lambda value: value if pd.isna(value) else str(value).strip().lower())
        mapped = text.map({"true": True, "false": False, "1": True, "0": False, "1.0": True})
        bad = series.notna() & mapped.isna()
        if bad.any():
            raise DataValidationError(
                f"{origin}, column {name!r}: {int(bad.sum())} value(s) are not booleans "
                f"(e.g. {_examples(series, bad)})"
            )
        return mapped.astype("boolean")
    numbers = pd.to_numeric(series, errors="coerce")
    bad = series.notna() & numbers.isna()
    if bad.any():
        raise DataValidationError(
            f"{origin}, column {name!r}: {int(bad.sum())} of {len(series)} value(s) are not "
            f"numbers (e.g. {_examples(series, bad)})"
        )
    if wanted == "float":
        return numbers.astype("float64")
    if numbers.isna().any():
        raise DataValidationError(
            f"{origin}, column {name!r}: {int(numbers.isna().sum())} missing value(s) in an "
            f"int column; declare it float"
        )
    fractional = numbers != numbers.round()
    if fractional.any():
        raise DataValidationError(
            f"{origin}, column {name!r}: {int(fractional.sum())} value(s) are not whole "
            f"numbers (e.g. {_examples(series, fractional)})"
        )
    return numbers.astype("int64")


def _infer(series: pd.Series, origin: str) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(series):
        return series.map(lambda value: value if pd.isna(value) else value.isoformat())
    kind = kind_of(series)
    if kind in {"float", "int", "bool"}:
        return series
    non_null = series.notna()
    if not non_null.any():
        return series.astype("float64")
    if kind != "string":  # e.g. dates from a CSV reader, mixed Python objects
        return _cast(series, "string", origin)
    numbers = pd.to_numeric(series, errors="coerce")
    parsed = int((non_null & numbers.notna()).sum())
    if parsed == int(non_null.sum()):
        return numbers
    if parsed >= NUMERIC_MAJORITY * int(non_null.sum()):
        bad = non_null & numbers.isna()
        raise DataValidationError(
            f"{origin}, column {series.name!r}: {int(bad.sum())} of {len(series)} value(s) are "
            f"not numbers in an otherwise numeric column (e.g. {_examples(series, bad)})"
        )
    return series


def type_columns(frame: pd.DataFrame, column_types: Mapping[str, str], origin: str) -> pd.DataFrame:
    """Cast declared columns strictly and infer the rest.

    Args:
        frame: Raw rows (target included; it is left as is).
        column_types: Declared types per column (``float``/``int``/``string``/``bool``).
        origin: Where the rows came from, for messages (file, table and version).

    Returns:
        A new frame whose columns are float64, int64, bool or text.

    Raises:
        DataValidationError: A declared column is missing or has unparsable values, or an
            undeclared column is mostly numeric with a few values that are not.
    """
    missing = [name for name in column_types if name not in frame.columns]
    if missing:
        raise DataValidationError(
            f"{origin}, column(s) {missing}: declared but not present; columns are {list(frame)}"
        )
    typed = {
        name: _cast(frame[name], column_types[name], origin)
        if name in column_types
        else _infer(frame[name], origin)
        for name in frame.columns
    }
    return pd.DataFrame(typed, index=frame.index)


def binary_label(frame: pd.DataFrame, target: TargetSpec, origin: str) -> pd.Series:
    """Return the target as int64 0/1, 1 where it equals the positive label.

    Raises:
        DataValidationError: The target column is missing, has missing values, does not
            have exactly two classes, or lacks the positive label.
    """
    column = target.column
    if column not in frame.columns:
        raise DataValidationError(
            f"{origin}, column {column!r}: target column not found; columns are {list(frame)}"
        )
    values = frame[column]
    missing = values.isna()
    if missing.any():
        first = values.index[missing.to_numpy()][0]
        raise DataValidationError(
            f"{origin}, column {column!r}: {int(missing.sum())} row(s) have no target value "
            f"(first at row {first})"
        )
    if pd.api.types.is_bool_dtype(values):
        values = values.astype("int64")
    if pd.api.types.is_numeric_dtype(values):
        try:
            positive: Any = float(target.positive_label)
        except ValueError as error:
            raise DataValidationError(
                f"{origin}, column {column!r}: positive label {target.positive_label!r} is not "
                f"a number but the target is numeric"
            ) from error
        compared = values.astype("float64")
    else:
        positive, compared = target.positive_label.strip(), values.astype(str).str.strip()
    counts = compared.value_counts()
    shown = {str(key): int(count) for key, count in counts.head(5).items()}
    if len(counts) != 2:
        problem = "only one class" if len(counts) == 1 else f"{len(counts)} classes"
        raise DataValidationError(
            f"{origin}, column {column!r}: {problem} present {shown}; a binary target needs "
            f"exactly two"
        )
    if positive not in counts.index:
        raise DataValidationError(
            f"{origin}, column {column!r}: positive label {target.positive_label!r} not among "
            f"the target values {shown}"
        )
    return (compared == positive).astype("int64").rename(LABEL_COLUMN)
