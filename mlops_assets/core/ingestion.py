"""Bronze and silver: a source's rows to ``raw_transactions``, then to ``transactions``.

``raw_transactions`` keeps the rows as the source has them (categoricals as text). The
silver step reads the raw table at the exact version it is given, types every column,
normalises the target to ``label`` (int 0/1), applies an explicit deduplication policy and
writes a new version. Everything that makes rows unusable raises before anything is
written, so the previous version of each table stays readable and intact.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import pandas as pd

from mlops_assets.constants import LABEL_COLUMN, RAW_TRANSACTIONS_TABLE, TRANSACTIONS_TABLE
from mlops_assets.core.schema import DataValidationError, binary_label, kind_of, type_columns
from mlops_assets.core.tables import DeltaEngine, TableRef

if TYPE_CHECKING:
    from mlops_assets.core.sources import LoadedSource, TargetSpec

DedupPolicy = Literal["drop_exact", "keep"]
RESERVED_COLUMNS = ("label", "split")
INVALID_NAME_CHARS = " ,;{}()\n\t="  # not allowed in Delta column names without column mapping


@dataclass(frozen=True)
class RawIngest:
    """What the bronze step wrote.

    Attributes:
        ref: The new version of the raw table.
        rows: Row count.
        columns: Column names.
        source_kind: Source actually used (openml, file, synthetic).
        source_description: What was used and why (fallback reason included).
    """

    ref: TableRef
    rows: int
    columns: tuple[str, ...]
    source_kind: str
    source_description: str


def write_raw(
    engine: DeltaEngine, loaded: LoadedSource, table: str = RAW_TRANSACTIONS_TABLE
) -> RawIngest:
    """Write a loaded source as a new version (overwrite) of the bronze table."""
    frame = loaded.frame.copy()
    for name in frame.columns:
        if isinstance(frame[name].dtype, pd.CategoricalDtype):
            frame[name] = frame[name].astype(object).where(frame[name].notna(), None)
    frame.columns = [str(name) for name in frame.columns]
    ref = engine.write(table, frame, mode="overwrite")
    return RawIngest(ref, len(frame), tuple(frame.columns), loaded.kind, loaded.description)


@dataclass(frozen=True)
class SilverFrame:
    """Typed silver rows.

    Attributes:
        frame: Features (typed) followed by ``label`` (int64 0/1).
        duplicates_dropped: Exact duplicate rows removed by the policy.
        renamed: Columns renamed to be valid Delta names (old -> new).
    """

    frame: pd.DataFrame
    duplicates_dropped: int
    renamed: Mapping[str, str] = field(default_factory=dict)


def _clean_names(columns: list[str], origin: str) -> dict[str, str]:
    renamed = {}
    for name in columns:
        clean = "".join("_" if char in INVALID_NAME_CHARS else char for char in name)
        if clean != name:
            renamed[name] = clean
    final = [renamed.get(name, name) for name in columns]
    clashes = sorted({name for name in final if final.count(name) > 1})
    if clashes:
        raise DataValidationError(f"{origin}: column names clash after cleaning: {clashes}")
    return renamed


def silver_frame(
    raw: pd.DataFrame,
    target: TargetSpec,
    column_types: Mapping[str, str],
    dedup: DedupPolicy,
    origin: str,
) -> SilverFrame:
    """Type raw rows, normalise the target to ``label`` and apply the dedup policy.

    Args:
        raw: Rows as the source has them.
        target: Target column and positive label.
        column_types: Declared feature types; the rest are inferred.
        dedup: ``drop_exact`` drops rows identical in every column; ``keep`` keeps all.
        origin: Where the rows came from, for messages.

    Returns:
        The typed rows and what was changed.

    Raises:
        DataValidationError: No rows, a reserved column name, unparsable values, or a
            target that is missing or not binary.
    """
    if dedup not in ("drop_exact", "keep"):
        raise DataValidationError(f"dedup policy {dedup!r} is not one of drop_exact, keep")
    if raw.empty:
        raise DataValidationError(f"{origin}: no rows")
    label = binary_label(raw, target, origin)
    reserved = [name for name in raw.columns if name in RESERVED_COLUMNS and name != target.column]
    if reserved:
        raise DataValidationError(
            f"{origin}, column(s) {reserved}: reserved for the silver table; drop or rename them"
        )
    features = raw.drop(columns=[target.column])
    declared = {name: kind for name, kind in column_types.items() if name != target.column}
    typed = type_columns(features, declared, origin)
    renamed = _clean_names([str(name) for name in typed.columns], origin)
    typed = typed.rename(columns=renamed)
    typed[LABEL_COLUMN] = label.to_numpy()
    before = len(typed)
    if dedup == "drop_exact":
        typed = typed.drop_duplicates(keep="first")
    return SilverFrame(typed.reset_index(drop=True), before - len(typed), renamed)


@dataclass(frozen=True)
class SilverResult:
    """What the silver step wrote.

    Attributes:
        ref: The new version of the silver table.
        raw_ref: The raw table version it was built from.
        rows: Row count written.
        positives: Rows with label 1.
        duplicates_dropped: Rows dropped by the dedup policy.
        dedup: The dedup policy applied.
        schema: Column name -> silver type.
        renamed: Columns renamed to valid Delta names.
    """

    ref: TableRef
    raw_ref: TableRef
    rows: int
    positives: int
    duplicates_dropped: int
    dedup: str
    schema: Mapping[str, str]
    renamed: Mapping[str, str] = field(default_factory=dict)

    @property
    def negatives(self) -> int:
        """Rows with label 0."""
        return self.rows - self.positives

    @property
    def positive_rate(self) -> float:
        """Share of rows with label 1."""
        return self.positives / self.rows if self.rows else 0.0


def refine_transactions(
    engine: DeltaEngine,
    raw_ref: TableRef,
    target: TargetSpec,
    column_types: Mapping[str, str],
    dedup: DedupPolicy = "drop_exact",
    origin: str = "",
    table: str = TRANSACTIONS_TABLE,
) -> SilverResult:
    """Read ``raw_ref`` at its exact version, build silver rows, write a new version.

    Args:
        engine: Delta engine.
        raw_ref: The raw table version to read (time travel, not latest).
        target: Target column and positive label.
        column_types: Declared feature types.
        dedup: Deduplication policy.
        origin: Description of the source, prefixed to messages.
        table: Silver table name.

    Returns:
        The written version and its figures.
    """
    where = f"{raw_ref.describe()}" + (f" ({origin})" if origin else "")
    raw = engine.read(raw_ref.name, raw_ref.version)
    silver = silver_frame(raw, target, column_types, dedup, where)
    ref = engine.write(table, silver.frame, mode="overwrite")
    frame = silver.frame
    return SilverResult(
        ref=ref,
        raw_ref=raw_ref,
        rows=len(frame),
        positives=int(frame[LABEL_COLUMN].sum()),
        duplicates_dropped=silver.duplicates_dropped,
        dedup=dedup,
        schema={str(name): kind_of(frame[name]) for name in frame.columns},
        renamed=dict(silver.renamed),
    )
