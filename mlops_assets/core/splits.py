"""Row-stable train / valid / test splits, pinned to the silver table version they read.

The splits table holds every ``transactions`` column plus ``split`` (``train``, ``valid``
or ``test``). A row's split is fixed by a seeded hash of its feature values
(:func:`assign_splits`), so it does not change when rows are added, and it does not
depend on the order a reader returns rows in (Spark and delta-rs give the same split). The
table is written in a canonical order (by a hash of each row's content), so the same rows
give the same table on either engine. :func:`split_frames` and :func:`feature_columns` are
how downstream code reads it back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mlops_assets.constants import LABEL_COLUMN, SPLIT_COLUMN, SPLITS_TABLE
from mlops_assets.core.tables import DeltaEngine, TableRef

SPLIT_NAMES = ("train", "valid", "test")


class SplitError(ValueError):
    """The rows cannot be split as asked; the message says which class or fraction."""


@dataclass(frozen=True)
class SplitFractions:
    """Shares of rows per split; each in (0, 1), summing to 1.

    Attributes:
        train: Training share.
        valid: Validation share (threshold choice, early stopping, tuning).
        test: Test share (final, untouched evaluation).
    """

    train: float = 0.6
    valid: float = 0.2
    test: float = 0.2

    def __post_init__(self) -> None:
        shares = {"train": self.train, "valid": self.valid, "test": self.test}
        outside = {name: value for name, value in shares.items() if not 0.0 < value < 1.0}
        if outside:
            raise SplitError(f"split fractions must each be in (0, 1), got {outside}")
        if abs(sum(shares.values()) - 1.0) > 1e-6:
            total = sum(shares.values())
            raise SplitError(f"split fractions must sum to 1, got {shares} = {total:g}")


@dataclass(frozen=True)
class Splits:
    """The three splits as frames (without the ``split`` column), features and ``label``."""

    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame


def assign_splits(frame: pd.DataFrame, fractions: SplitFractions, seed: int) -> pd.DataFrame:
    """Assign each row to train, valid or test by a seeded hash of its feature values.

    A row's split depends only on its own feature values and ``seed``, never on the other
    rows. So when the table grows (new data, labeled feedback), every row keeps its split:
    a model trained on an older version never finds its training rows in a newer test split,
    and champion/challenger comparisons stay on rows neither model has seen. Rows identical
    in every feature always share a split, whatever their labels. Each class is spread over
    the splits in proportion to ``fractions`` up to sampling noise (stratified in
    expectation; :class:`SplitResult` reports the positives per split).

    Args:
        frame: Silver rows with ``label``.
        fractions: Shares per split.
        seed: Random seed; the same row and seed always get the same split.

    Returns:
        ``frame`` (original order, fresh index) with a ``split`` column added.

    Raises:
        SplitError: ``label`` missing or ``split`` already present, or a class with no row
            in some split (too few rows of that class for these fractions).
    """
    if LABEL_COLUMN not in frame.columns:
        raise SplitError(f"column {LABEL_COLUMN!r} missing; columns are {list(frame)}")
    if SPLIT_COLUMN in frame.columns:
        raise SplitError(f"column {SPLIT_COLUMN!r} already present")
    frame = frame.reset_index(drop=True)
    position = row_positions(frame.drop(columns=[LABEL_COLUMN]), seed)
    bounds = [fractions.test, fractions.test + fractions.valid]
    split = np.array(["test", "valid", "train"], dtype=object)[np.searchsorted(bounds, position)]
    assigned = frame.assign(**{SPLIT_COLUMN: split})
    counts = pd.crosstab(assigned[LABEL_COLUMN], assigned[SPLIT_COLUMN])
    counts = counts.reindex(columns=list(SPLIT_NAMES), fill_value=0)
    missing = {
        int(label): [name for name in SPLIT_NAMES if row[name] == 0]
        for label, row in counts.iterrows()
        if (row == 0).any()
    }
    if missing:
        rows = {int(label): int(total) for label, total in counts.sum(axis=1).items()}
        raise SplitError(
            f"column {LABEL_COLUMN!r}: class(es) {missing} (class: splits without a row) have "
            f"too few rows ({rows}) to appear in every split with fractions {fractions}"
        )
    return assigned


def row_positions(features: pd.DataFrame, seed: int) -> np.ndarray:
    """Return a number in [0, 1) per row, uniform and fixed by the row's values and ``seed``.

    The pandas content hash of each row is mixed with the seed by the SplitMix64 finaliser,
    so every seed gives an independent, evenly spread assignment.
    """
    hashes = pd.util.hash_pandas_object(features, index=False).to_numpy(dtype=np.uint64)
    salt = _splitmix64(np.array([seed % 2**64], dtype=np.uint64))  # any int, negative too
    return (_splitmix64(hashes ^ salt) >> np.uint64(11)) / float(2**53)


def _splitmix64(values: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser over a uint64 array (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        z = values + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def canonical_order(frame: pd.DataFrame) -> pd.DataFrame:
    """Return ``frame`` sorted by a hash of each row's values (fresh index).

    The order depends only on the rows' content, not on the order a reader returned them.
    """
    hashes = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    return frame.iloc[np.argsort(hashes, kind="stable")].reset_index(drop=True)


def split_frames(frame: pd.DataFrame) -> Splits:
    """Return the train, valid and test rows of a splits-table frame (``split`` dropped).

    Raises:
        SplitError: The ``split`` column is missing, has unknown values, or a split is empty.
    """
    if SPLIT_COLUMN not in frame.columns:
        raise SplitError(f"column {SPLIT_COLUMN!r} missing; columns are {list(frame)}")
    unknown = sorted(set(frame[SPLIT_COLUMN].dropna().unique()) - set(SPLIT_NAMES))
    if unknown or frame[SPLIT_COLUMN].isna().any():
        raise SplitError(f"column {SPLIT_COLUMN!r}: unknown values {unknown or ['<null>']}")
    parts = {
        name: frame[frame[SPLIT_COLUMN] == name].drop(columns=[SPLIT_COLUMN]).reset_index(drop=True)
        for name in SPLIT_NAMES
    }
    empty = [name for name, part in parts.items() if part.empty]
    if empty:
        raise SplitError(f"column {SPLIT_COLUMN!r}: split(s) {empty} have no rows")
    return Splits(**parts)


def feature_columns(frame: pd.DataFrame, exclude: Iterable[str] = ()) -> list[str]:
    """Return every column except ``label``, ``split`` and ``exclude`` (absent names ignored)."""
    dropped = {LABEL_COLUMN, SPLIT_COLUMN, *exclude}
    return [str(name) for name in frame.columns if name not in dropped]


@dataclass(frozen=True)
class SplitResult:
    """What the split step wrote.

    Attributes:
        ref: The new version of the splits table.
        source_ref: The silver table version the rows were read from.
        sizes: Rows per split.
        positives: Positive rows per split.
    """

    ref: TableRef
    source_ref: TableRef
    sizes: Mapping[str, int]
    positives: Mapping[str, int]

    @property
    def positive_rates(self) -> dict[str, float]:
        """Positive share per split."""
        return {name: self.positives[name] / self.sizes[name] for name in self.sizes}

    @property
    def rows(self) -> int:
        """Rows over all splits."""
        return sum(self.sizes.values())


def split_table(
    engine: DeltaEngine,
    source_ref: TableRef,
    fractions: SplitFractions,
    seed: int,
    table: str = SPLITS_TABLE,
) -> SplitResult:
    """Read ``source_ref`` at its exact version, split it, write the splits table.

    Rows are written in canonical order (see :func:`canonical_order`); each row's split is
    fixed by its own values (see :func:`assign_splits`).

    Args:
        engine: Delta engine.
        source_ref: The silver table version (time travel: never "latest").
        fractions: Shares per split.
        seed: Random seed.
        table: Splits table name.

    Returns:
        The written version and per-split figures.
    """
    frame = canonical_order(engine.read(source_ref.name, source_ref.version))
    assigned = assign_splits(frame, fractions, seed)
    ref = engine.write(table, assigned, mode="overwrite")
    grouped = assigned.groupby(SPLIT_COLUMN)[LABEL_COLUMN]
    sizes, positives = grouped.size(), grouped.sum()
    return SplitResult(
        ref=ref,
        source_ref=source_ref,
        sizes={name: int(sizes.get(name, 0)) for name in SPLIT_NAMES},
        positives={name: int(positives.get(name, 0)) for name in SPLIT_NAMES},
    )
