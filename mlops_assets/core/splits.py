"""Stratified train / valid / test splits, pinned to the silver table version they read.

The splits table holds every ``transactions`` column plus ``split`` (``train``, ``valid``
or ``test``). Rows are put in a canonical order (by a hash of their content) before the
seeded split, because a Delta table has no row order: Spark may read rows in another order
than delta-rs, and the same rows and seed must give the same split on either engine.
:func:`split_frames` and :func:`feature_columns` are how downstream code reads it back.
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


def stratified_split(frame: pd.DataFrame, fractions: SplitFractions, seed: int) -> pd.DataFrame:
    """Assign each row to train, valid or test, stratified on ``label``, seeded.

    Args:
        frame: Silver rows with ``label``.
        fractions: Shares per split.
        seed: Random seed; the same rows and seed always give the same assignment.

    Returns:
        ``frame`` (original order, fresh index) with a ``split`` column added.

    Raises:
        SplitError: ``label`` missing or ``split`` already present, or a class too small
            to appear in every split.
    """
    from sklearn.model_selection import train_test_split

    if LABEL_COLUMN not in frame.columns:
        raise SplitError(f"column {LABEL_COLUMN!r} missing; columns are {list(frame)}")
    if SPLIT_COLUMN in frame.columns:
        raise SplitError(f"column {SPLIT_COLUMN!r} already present")
    counts = frame[LABEL_COLUMN].value_counts()
    smallest = min(fractions.train, fractions.valid, fractions.test)
    too_small = {
        int(label): int(count)
        for label, count in counts.items()
        if round(count * smallest) < 1 or count < 3
    }
    if too_small:
        raise SplitError(
            f"column {LABEL_COLUMN!r}: class(es) {too_small} (rows per class) are too small to "
            f"appear in every split with fractions {fractions}"
        )
    frame = frame.reset_index(drop=True)
    rest, test = train_test_split(
        frame.index, test_size=fractions.test, stratify=frame[LABEL_COLUMN], random_state=seed
    )
    valid_share = fractions.valid / (fractions.train + fractions.valid)
    train, valid = train_test_split(
        rest,
        test_size=valid_share,
        stratify=frame.loc[rest, LABEL_COLUMN],
        random_state=seed,
    )
    split = pd.Series("train", index=frame.index, dtype=object)
    split[valid] = "valid"
    split[test] = "test"
    return frame.assign(**{SPLIT_COLUMN: split})


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

    Rows are written in canonical order (see :func:`canonical_order`).

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
    assigned = stratified_split(frame, fractions, seed)
    ref = engine.write(table, assigned, mode="overwrite")
    grouped = assigned.groupby(SPLIT_COLUMN)[LABEL_COLUMN]
    sizes, positives = grouped.size(), grouped.sum()
    return SplitResult(
        ref=ref,
        source_ref=source_ref,
        sizes={name: int(sizes.get(name, 0)) for name in SPLIT_NAMES},
        positives={name: int(positives.get(name, 0)) for name in SPLIT_NAMES},
    )
