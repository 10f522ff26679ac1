"""Request rows -> validated feature batch, checked against the model's input contract.

A contract whose columns are all ``number`` or ``integer`` takes the fast path: one pass that
writes each row straight into a float64 matrix in contract order, then vectorised checks for
NaN, infinity and non-integral values. Anything that fails the fast path (and every other
contract) goes through the per-value checker, which collects every problem with its row and
column so the 4xx answer names them all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from mlops_assets.core.contract import ColumnSpec, InputContract
from mlops_assets.serving.formats import Problem, RequestError, json_type, refuse

UnexpectedPolicy = Literal["reject", "ignore"]
_NUMERIC_KINDS = frozenset({"number", "integer"})
_FAST_TYPES = frozenset({float, int})
_INT64_MAX = 2**63 - 1
MAX_PROBLEMS = 50


@dataclass(frozen=True)
class FeatureBatch:
    """Validated rows, in the contract's column order.

    Attributes:
        rows: Number of rows.
        matrix: float64 array (rows x columns) for all-numeric contracts (NaN = missing).
        columns: Otherwise one list of values per column (NaN = missing).
    """

    rows: int
    matrix: np.ndarray | None = None
    columns: dict[str, list] | None = None


class _Invalid(Exception):
    def __init__(self, problem: str):
        self.problem = problem


def check_value(spec: ColumnSpec, value: Any) -> Any:
    """Return ``value`` converted for ``spec`` (NaN for missing), or raise ``_Invalid``."""
    if value is None or (type(value) is float and math.isnan(value)):
        if not spec.nullable:
            raise _Invalid(f"is {'null' if value is None else 'NaN'} but the column is required")
        return math.nan
    kind, got = spec.kind, type(value)
    if kind in _NUMERIC_KINDS and got not in _FAST_TYPES:
        raise _Invalid(
            f"expects a{'n integer' if kind == 'integer' else ' number'}, got {json_type(value)}"
        )
    if kind == "number":
        try:
            number = float(value)
        except OverflowError:
            raise _Invalid(f"number {value} is out of range") from None
        if math.isinf(number):
            raise _Invalid(f"is {value} (only finite numbers are allowed)")
        return number
    if kind == "integer":
        if got is float and not (math.isfinite(value) and value.is_integer()):
            raise _Invalid(f"expects an integer, got {value}")
        if abs(int(value)) > _INT64_MAX:
            raise _Invalid(f"integer {value} is out of the 64-bit range")
        return int(value)
    if kind == "string":
        if got is not str:
            raise _Invalid(f"expects a string, got {json_type(value)}")
        return value
    if got is not bool:
        raise _Invalid(f"expects true or false, got {json_type(value)}")
    return value


class ContractValidator:
    """Validates request rows against one model's input contract."""

    def __init__(
        self, contract: InputContract, unexpected: UnexpectedPolicy = "reject", max_rows: int = 1000
    ) -> None:
        """Precompute column order and kinds.

        Args:
            contract: The model's input contract.
            unexpected: ``reject`` a column the contract does not know, or ``ignore`` it.
            max_rows: Most rows accepted in one request (413 above).
        """
        if unexpected not in ("reject", "ignore"):
            raise ValueError(
                f"unexpected-column policy must be reject or ignore, not {unexpected!r}"
            )
        self.contract = contract
        self.unexpected = unexpected
        self.max_rows = max_rows
        self.names = contract.names
        self.known = frozenset(self.names)
        self.numeric = all(column.kind in _NUMERIC_KINDS for column in contract.columns)
        self._required = np.array([not column.nullable for column in contract.columns])
        self._integers = np.array([column.kind == "integer" for column in contract.columns])

    def validate(self, rows: list) -> FeatureBatch:
        """Validate rows (dicts keyed by column name).

        Raises:
            RequestError: 422 naming each row/column problem; 413 for too many rows.
        """
        if not rows:
            raise refuse("no rows: send at least one row object", field="body")
        if len(rows) > self.max_rows:
            raise refuse(
                f"{len(rows)} rows exceed the limit of {self.max_rows}", field="body", status=413
            )
        if self.numeric:
            matrix = self._fast_matrix(rows)
            if matrix is not None:
                return FeatureBatch(rows=len(rows), matrix=matrix)
        columns = self._checked_columns(rows)
        if self.numeric:
            matrix = np.array([columns[name] for name in self.names], dtype=np.float64).T
            return FeatureBatch(rows=len(rows), matrix=np.ascontiguousarray(matrix))
        return FeatureBatch(rows=len(rows), columns=columns)

    def _fast_matrix(self, rows: list) -> np.ndarray | None:
        """One pass for well-formed numeric rows; None sends the rows to the full checker."""
        names, width = self.names, len(self.names)
        matrix = np.empty((len(rows), width), dtype=np.float64)
        strict = self.unexpected == "reject"
        try:
            for index, row in enumerate(rows):
                if strict and len(row) != width:
                    return None
                values = [row[name] for name in names]
                if not set(map(type, values)) <= _FAST_TYPES:
                    return None
                matrix[index] = values
        except (KeyError, TypeError, OverflowError, ValueError):
            return None
        finite = np.isfinite(matrix)
        if not finite.all():
            if np.isinf(matrix).any() or (~finite & self._required).any():
                return None
        if self._integers.any():
            block = matrix[:, self._integers]
            if (np.abs(block[~np.isnan(block)]) > _INT64_MAX).any() or not np.array_equal(
                block, np.round(block), equal_nan=True
            ):
                return None
        return matrix

    def _checked_columns(self, rows: list) -> dict[str, list]:
        problems: list[Problem] = []
        columns: dict[str, list] = {name: [] for name in self.names}
        for index, row in enumerate(rows):
            if not isinstance(row, dict):
                problems.append(Problem("row", f"expected an object, got {json_type(row)}", index))
                continue
            if self.unexpected == "reject":
                problems += [
                    Problem(str(key), "unexpected column (not in the model's contract)", index)
                    for key in row
                    if key not in self.known
                ]
            for spec in self.contract.columns:
                if spec.name not in row:
                    problems.append(Problem(spec.name, "missing column", index))
                    continue
                try:
                    columns[spec.name].append(check_value(spec, row[spec.name]))
                except _Invalid as invalid:
                    problems.append(Problem(spec.name, invalid.problem, index))
            if len(problems) >= MAX_PROBLEMS:
                break
        if problems:
            raise RequestError(422, problems)
        return columns
