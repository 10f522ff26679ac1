"""Bronze and silver: a source's rows to ``raw_transactions``, then to ``transactions``.

``raw_transactions`` keeps the rows as the source has them (categoricals as text). The
silver step reads the raw table at the exact version it is given, types every column,
normalises the target to ``label`` (int 0/1), applies an explicit deduplication policy and
writes a new version. Everything that makes rows unusable raises before anything is
written, so the previous version of each table stays readable and intact.

Given a feedback table (``labeled_feedback``: rows production served, with their true
``label``), the silver step appends its latest version to the refined raw rows, aligned to
the silver columns: a silver column the feedback lacks (e.g. ``Time``, which the model does
not take, so the server never saw it) is null in those rows, feedback-only columns
(provenance such as ``request_id``) are left out. Deduplication then applies to the union.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import pandas as pd

from mlops_assets.constants import LABEL_COLUMN, RAW_TRANSACTIONS_TABLE, TRANSACTIONS_TABLE
from mlops_assets.core.dedup import drop_exact_duplicates
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
        typed = drop_exact_duplicates(typed)
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
        feedback_ref: The feedback table version appended (None: none).
        feedback_rows: Feedback rows appended (before deduplication).
        feedback_missing_columns: Silver columns the feedback lacks (null in its rows).
    """

    ref: TableRef
    raw_ref: TableRef
    rows: int
    positives: int
    duplicates_dropped: int
    dedup: str
    schema: Mapping[str, str]
    renamed: Mapping[str, str] = field(default_factory=dict)
    feedback_ref: TableRef | None = None
    feedback_rows: int = 0
    feedback_missing_columns: tuple[str, ...] = ()

    @property
    def negatives(self) -> int:
        """Rows with label 0."""
        return self.rows - self.positives

    @property
    def positive_rate(self) -> float:
        """Share of rows with label 1."""
        return self.positives / self.rows if self.rows else 0.0


def align_feedback(
    silver: pd.DataFrame, feedback: pd.DataFrame, origin: str
) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """Shape feedback rows like the silver rows: same columns, types and 0/1 ``label``.

    Args:
        silver: Silver rows (features and ``label``).
        feedback: Labeled production rows (features, ``label``, maybe provenance columns).
        origin: Where the feedback came from, for messages.

    Returns:
        The aligned rows and the silver columns the feedback lacks (null in its rows).

    Raises:
        DataValidationError: No ``label`` or a label outside 0/1, no feature in common, or a
            value that does not fit the silver type of its column.
    """
    if LABEL_COLUMN not in feedback.columns:
        raise DataValidationError(f"{origin}: column {LABEL_COLUMN!r} missing")
    labels = feedback[LABEL_COLUMN]
    bad = sorted(set(labels.dropna().unique().tolist()) - {0, 1})
    if bad or labels.isna().any():
        raise DataValidationError(f"{origin}, column {LABEL_COLUMN!r}: values {bad} not 0/1")
    features = [name for name in silver.columns if name != LABEL_COLUMN]
    missing = tuple(name for name in features if name not in feedback.columns)
    if len(missing) == len(features):
        raise DataValidationError(f"{origin}: no feature column in common with {features}")
    aligned = {}
    for name in features:
        if name in missing:  # numbers: NaN (an integer column becomes float); else None
            dtype = silver[name].dtype
            numeric = pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)
            nulls = [float("nan") if numeric else None] * len(feedback)
            aligned[name] = pd.Series(nulls, dtype="float64" if numeric else object)
            continue
        try:
            aligned[name] = feedback[name].astype(silver[name].dtype).reset_index(drop=True)
        except (ValueError, TypeError) as error:
            raise DataValidationError(
                f"{origin}, column {name!r}: values do not fit the silver type "
                f"{silver[name].dtype}: {error}"
            ) from error
    aligned[LABEL_COLUMN] = labels.astype("int64").reset_index(drop=True)
    return pd.DataFrame(aligned, columns=[*features, LABEL_COLUMN]), missing


def refine_transactions(
    engine: DeltaEngine,
    raw_ref: TableRef,
    target: TargetSpec,
    column_types: Mapping[str, str],
    dedup: DedupPolicy = "drop_exact",
    origin: str = "",
    table: str = TRANSACTIONS_TABLE,
    feedback_table: str | None = None,
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
        feedback_table: Labeled production rows to append (its latest version; nothing
            when None or when the table does not exist yet).

    Returns:
        The written version and its figures.
    """
    where = f"{raw_ref.describe()}" + (f" ({origin})" if origin else "")
    raw = engine.read(raw_ref.name, raw_ref.version)
    silver = silver_frame(raw, target, column_types, dedup, where)
    frame, dropped = silver.frame, silver.duplicates_dropped
    feedback_version = engine.latest_version(feedback_table) if feedback_table else None
    feedback_ref, feedback_rows, missing = None, 0, ()
    if feedback_table and feedback_version is not None:
        feedback_ref = TableRef(feedback_table, engine.uri(feedback_table), feedback_version)
        feedback = engine.read(feedback_table, feedback_version)
        if not feedback.empty:
            aligned, missing = align_feedback(frame, feedback, feedback_ref.describe())
            feedback_rows = len(aligned)
            frame = pd.concat([frame, aligned], ignore_index=True)
            if dedup == "drop_exact":
                before = len(frame)
                frame = drop_exact_duplicates(frame).reset_index(drop=True)
                dropped += before - len(frame)
    ref = engine.write(table, frame, mode="overwrite")
    return SilverResult(
        ref=ref,
        raw_ref=raw_ref,
        rows=len(frame),
        positives=int(frame[LABEL_COLUMN].sum()),
        duplicates_dropped=dropped,
        dedup=dedup,
        schema={str(name): kind_of(frame[name]) for name in frame.columns},
        renamed=dict(silver.renamed),
        feedback_ref=feedback_ref,
        feedback_rows=feedback_rows,
        feedback_missing_columns=missing,
    )
