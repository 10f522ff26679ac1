"""Keep the champion's own training rows out of the champion/challenger comparison.

Row-stable splits (:func:`~mlops_assets.core.splits.assign_splits`) keep every row in its
split while the table grows, so a champion trained on an older ``training_splits`` version
meets none of its train or valid rows in the challenger's test split. That holds only while
the split seed, the fractions and the feature columns stay the same: after such a change
many test rows may be rows the champion was fitted (or thresholded) on, and it would be
scored on them, an unfair edge in the comparison.

This guard reads the champion's lineage (the ``training_splits`` version it was trained
from), and drops every test row equal, in each feature both versions share, to one of the
champion's train or valid rows. In normal operation it drops nothing and says so. When it
cannot check (no lineage tags, another table, an unreadable version) the comparison goes on
with every test row and the reason is reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mlops_assets.constants import LABEL_COLUMN, SPLIT_COLUMN
from mlops_assets.core.comparison import TestRows
from mlops_assets.core.lineage import Lineage
from mlops_assets.core.tables import DeltaEngine
from mlops_assets.core.thresholds import check_binary_labels

SEEN_SPLITS = ("train", "valid")


@dataclass(frozen=True)
class SeenRowsCheck:
    """What the guard did.

    Attributes:
        checked: Whether the champion's training rows could be read and compared.
        dropped: Test rows dropped as rows the champion trained on.
        detail: One sentence for the run log and the materialization metadata.
    """

    checked: bool
    dropped: int
    detail: str


def drop_seen_rows(rows: TestRows, seen: pd.DataFrame, seen_source: str) -> tuple[TestRows, int]:
    """Drop the test rows equal to a row of ``seen`` in every shared feature column.

    Args:
        rows: The test rows of the comparison.
        seen: Rows a model was trained on (feature columns; others are ignored).
        seen_source: Where ``seen`` comes from, for the new ``source`` and errors.

    Returns:
        The remaining rows (``source`` names what was dropped) and how many were dropped.

    Raises:
        ValueError: When ``seen`` shares no feature column with the test rows, or when the
            remaining rows lack a class.
    """
    shared = [column for column in rows.features.columns if column in seen.columns]
    if not shared:
        raise ValueError(f"{seen_source} shares no feature column with {rows.source}")
    mine = rows.features[shared]
    theirs = seen[shared]
    try:  # compare values, not storage types (a column read back as int64 vs float64)
        theirs = theirs.astype(mine.dtypes.to_dict())
    except (TypeError, ValueError):
        pass
    keys = pd.util.hash_pandas_object(mine, index=False).to_numpy()
    seen_keys = pd.util.hash_pandas_object(theirs, index=False).to_numpy()
    keep = ~np.isin(keys, seen_keys)
    dropped = int((~keep).sum())
    if not dropped:
        return rows, 0
    source = f"{rows.source} minus {dropped} row(s) in {seen_source}"
    labels = check_binary_labels(rows.labels[keep], source)
    return TestRows(rows.features[keep].reset_index(drop=True), labels, source), dropped


def exclude_champion_rows(
    client: Any,
    engine: DeltaEngine,
    model_name: str,
    champion_version: int,
    splits_name: str,
    rows: TestRows,
) -> tuple[TestRows, SeenRowsCheck]:
    """Drop the test rows the champion was trained or thresholded on (see the module doc).

    Args:
        client: ``MlflowClient`` bound to the registry.
        engine: Delta engine holding ``splits_name``.
        model_name: Registered model name.
        champion_version: The champion's version.
        splits_name: Name of the ``training_splits`` table the test rows come from.
        rows: The challenger's test rows.

    Returns:
        The rows to compare on and what the guard did.

    Raises:
        ValueError: When dropping the champion's rows leaves a class without rows.
    """
    try:
        tags = client.get_model_version(model_name, str(champion_version)).tags
        lineage = Lineage.from_tags(dict(tags))
    except (KeyError, ValueError) as error:  # no lineage tags, or a malformed one
        return rows, _unchecked(champion_version, f"it has no usable lineage ({error})")
    current_uri = engine.uri(splits_name)
    if lineage.splits_uri != current_uri:
        where = f"{lineage.splits_uri}, not {current_uri}"
        return rows, _unchecked(champion_version, f"it was trained from {where}")
    seen_source = f"{splits_name}@v{lineage.splits_version} train/valid (champion's)"
    try:
        splits = engine.read(splits_name, lineage.splits_version)
    except Exception as error:  # a vacuumed or broken version: report, compare on all rows
        reason = f"{splits_name}@v{lineage.splits_version} is unreadable ({error})"
        return rows, _unchecked(champion_version, reason)
    if SPLIT_COLUMN not in splits.columns:
        reason = f"{splits_name}@v{lineage.splits_version} has no {SPLIT_COLUMN!r} column"
        return rows, _unchecked(champion_version, reason)
    seen = splits[splits[SPLIT_COLUMN].isin(SEEN_SPLITS)].drop(
        columns=[SPLIT_COLUMN, LABEL_COLUMN], errors="ignore"
    )
    kept, dropped = drop_seen_rows(rows, seen, seen_source)
    detail = (
        f"{dropped} of {len(rows.labels)} test row(s) were train/valid rows of champion "
        f"v{champion_version} ({seen_source}) and were left out"
    )
    return kept, SeenRowsCheck(checked=True, dropped=dropped, detail=detail)


def _unchecked(champion_version: int, reason: str) -> SeenRowsCheck:
    detail = (
        f"not checked whether champion v{champion_version} trained on test rows: {reason}; "
        "compared on every test row"
    )
    return SeenRowsCheck(checked=False, dropped=0, detail=detail)
