"""Hold out the tail of an ordered source: rows no model ever trains on (future traffic).

For real data with a time column (the credit-card data's ``Time``), the latest
``fraction`` of the order column's range is never ingested; the traffic simulator replays
exactly those rows. The cut is on a value, so every ingested row orders strictly before
every held-out row, even when values tie at the boundary.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal, Protocol, TypeVar

import pandas as pd

from mlops_assets.core.readers import SourceError

SourcePart = Literal["ingest", "holdout"]


@dataclass(frozen=True)
class Holdout:
    """Which rows of a source are kept back for traffic.

    Attributes:
        fraction: Share of rows (by the order column, latest last) held out, in (0, 1).
        order_column: Column that orders rows in time (numeric or datetime).
    """

    fraction: float
    order_column: str = "Time"

    def __post_init__(self) -> None:
        if not 0.0 < self.fraction < 1.0:
            raise ValueError(f"Holdout.fraction={self.fraction} must be in (0, 1)")
        if not self.order_column:
            raise ValueError("Holdout.order_column is empty")

    def describe(self) -> str:
        """Short description, e.g. ``latest 20% of Time held out``."""
        return f"latest {self.fraction:.0%} of {self.order_column} held out"


@dataclass(frozen=True)
class HoldoutSplit:
    """A source frame cut in two at a value of the order column.

    Attributes:
        ingest: Rows ordering before ``cutoff`` (original row order kept).
        holdout: Rows at or after ``cutoff``, sorted by the order column.
        cutoff: First held-out value of the order column (a number or a timestamp).
    """

    ingest: pd.DataFrame
    holdout: pd.DataFrame
    cutoff: object


def split_tail(frame: pd.DataFrame, holdout: Holdout, where: str) -> HoldoutSplit:
    """Cut ``frame`` at the value below which ``1 - fraction`` of its rows order.

    Args:
        frame: The source's rows.
        holdout: Fraction and order column.
        where: The source, for error messages (``file /data/creditcard.csv.gz``).

    Returns:
        The rows to ingest and the held-out tail.

    Raises:
        SourceError: The order column is missing, not orderable, has gaps, or the cut
            leaves either side empty.
    """
    column = holdout.order_column
    if column not in frame.columns:
        raise SourceError(
            f"{where}, column {column!r}: hold-out order column not found; "
            f"columns are {list(frame.columns)}"
        )
    values = frame[column]
    if not (pd.api.types.is_numeric_dtype(values) or pd.api.types.is_datetime64_any_dtype(values)):
        raise SourceError(
            f"{where}, column {column!r}: hold-out order column must be numeric or datetime, "
            f"got {values.dtype}"
        )
    if values.isna().any():
        raise SourceError(
            f"{where}, column {column!r}: {int(values.isna().sum())} missing value(s) in the "
            "hold-out order column; rows without an order cannot be placed before or after"
        )
    ordered = values.sort_values(kind="mergesort").to_numpy()
    if len(ordered) < 2:
        raise SourceError(f"{where}: {len(ordered)} row(s) cannot be split into ingest + hold-out")
    cutoff = ordered[len(ordered) - max(1, math.ceil(len(ordered) * holdout.fraction))]
    mask = (values >= cutoff).to_numpy()
    if mask.all():
        raise SourceError(
            f"{where}, column {column!r}: every row has {column} >= {cutoff} (the cut for "
            f"{holdout.describe()}), which leaves nothing to ingest"
        )
    return HoldoutSplit(
        ingest=frame.loc[~mask].reset_index(drop=True),
        holdout=frame.loc[mask].sort_values(column, kind="mergesort").reset_index(drop=True),
        cutoff=cutoff.item() if hasattr(cutoff, "item") else cutoff,
    )


class _Loaded(Protocol):
    kind: str
    frame: pd.DataFrame
    description: str


LoadedT = TypeVar("LoadedT", bound=_Loaded)


def apply_holdout(loaded: LoadedT, holdout: Holdout | None, part: SourcePart) -> LoadedT:
    """Keep the part of a loaded source that ``part`` asks for.

    Synthetic rows (configured, or an offline fallback) have no hold-out: ``ingest`` keeps
    them all and ``holdout`` returns none (traffic draws fresh rows from another seed).

    Args:
        loaded: A :class:`~mlops_assets.core.sources.LoadedSource`.
        holdout: The configured hold-out, or None.
        part: ``ingest`` (rows for training) or ``holdout`` (rows for traffic only).

    Returns:
        A copy of ``loaded`` with the chosen rows, the description saying what was cut and
        ``holdout_rows`` the size of the held-out tail.

    Raises:
        SourceError: ``holdout`` was asked of a file or OpenML source without a hold-out.
    """
    if loaded.kind == "synthetic":
        if part == "ingest":
            return loaded
        return replace(
            loaded,
            frame=loaded.frame.iloc[0:0],
            description=f"{loaded.description}; synthetic rows have no hold-out",
        )
    if holdout is None:
        if part == "ingest":
            return loaded
        raise SourceError(
            f"{loaded.description}: no hold-out is configured, so every row is ingested for "
            "training and none is left for traffic; set DataSource.holdout_tail_fraction "
            "(e.g. 0.2) and ingest again"
        )
    cut = split_tail(loaded.frame, holdout, loaded.description)
    facts = f"{holdout.describe()} ({len(cut.holdout)} rows with {holdout.order_column} >= "
    return replace(
        loaded,
        frame=cut.ingest if part == "ingest" else cut.holdout,
        description=f"{loaded.description}; {facts}{cut.cutoff})",
        holdout_rows=len(cut.holdout),
    )
