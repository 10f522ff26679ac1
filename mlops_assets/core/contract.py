"""The serving input contract of a model: its feature columns, their kinds and nullability.

A contract is derived from the training frame, stored as JSON next to the model, checked by
the promotion guardrails (a challenger must keep the champion's contract unless a change is
declared) and enforced by the serving endpoint before a row reaches the model.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Literal

import pandas as pd

ColumnKind = Literal["number", "integer", "string", "boolean"]


@dataclass(frozen=True)
class ColumnSpec:
    """One input column.

    Attributes:
        name: Column name as it arrives in a request.
        kind: ``number`` (float), ``integer``, ``string`` (categorical) or ``boolean``.
        nullable: Whether a missing value (null) is accepted; the pipeline imputes it.
    """

    name: str
    kind: ColumnKind
    nullable: bool = True


@dataclass(frozen=True)
class InputContract:
    """Ordered feature columns a model expects.

    Attributes:
        columns: Column specs in the order the pipeline was fitted on.
    """

    columns: tuple[ColumnSpec, ...]

    @property
    def names(self) -> list[str]:
        """Column names in order."""
        return [column.name for column in self.columns]

    def to_json(self) -> str:
        """Serialise to JSON."""
        return json.dumps({"columns": [asdict(column) for column in self.columns]}, indent=2)

    @classmethod
    def from_json(cls, text: str) -> InputContract:
        """Parse the JSON written by :meth:`to_json`."""
        payload = json.loads(text)
        return cls(columns=tuple(ColumnSpec(**column) for column in payload["columns"]))

    def differences(self, other: InputContract) -> list[str]:
        """Describe how ``other`` differs from this contract; empty when compatible."""
        mine = {column.name: column for column in self.columns}
        theirs = {column.name: column for column in other.columns}
        problems = [f"column {name!r} removed" for name in mine if name not in theirs]
        problems += [f"column {name!r} added" for name in theirs if name not in mine]
        problems += [
            f"column {name!r} changed kind {mine[name].kind} -> {theirs[name].kind}"
            for name in mine
            if name in theirs and mine[name].kind != theirs[name].kind
        ]
        return problems


def _kind_of(series: pd.Series) -> ColumnKind:
    if pd.api.types.is_bool_dtype(series):
        return "boolean"
    if pd.api.types.is_integer_dtype(series):
        return "integer"
    if pd.api.types.is_numeric_dtype(series):
        return "number"
    return "string"


def contract_from_frame(features: pd.DataFrame) -> InputContract:
    """Derive the contract of a feature frame (every column nullable: the pipeline imputes).

    Args:
        features: The training features, without the label column.

    Returns:
        The contract, columns in frame order.
    """
    return InputContract(
        columns=tuple(
            ColumnSpec(name=str(name), kind=_kind_of(features[name])) for name in features
        )
    )
