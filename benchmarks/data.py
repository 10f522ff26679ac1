"""The suite's data: the labelled file through the data layer's own silver and split steps."""

from __future__ import annotations

import pandas as pd

from benchmarks.harness import Settings
from mlops_assets.core.ingestion import silver_frame
from mlops_assets.core.sources import FileSource, TargetSpec, load_source
from mlops_assets.core.splits import (
    SplitFractions,
    Splits,
    assign_splits,
    feature_columns,
    split_frames,
)

CREDIT_CARD_TARGET = TargetSpec("Class", "1")
EXCLUDED = ("Time",)
"""Columns that are not model features when present (the credit-card row clock)."""


def target_spec(settings: Settings) -> TargetSpec:
    """The label column and positive label the suite was given."""
    return TargetSpec(settings.target, settings.positive)


def silver(settings: Settings) -> pd.DataFrame:
    """Typed rows with ``label`` 0/1 and exact duplicates dropped, as the silver table has."""
    return silver_from_csv(str(settings.data), target_spec(settings))


def silver_from_csv(
    csv: str, spec: TargetSpec = CREDIT_CARD_TARGET, rows: int | None = None
) -> pd.DataFrame:
    """:func:`silver` of a file (the credit-card target by default); ``rows``: the first N only."""
    raw = load_source(FileSource(csv, spec)).frame
    raw = raw if rows is None else raw.head(rows)
    return silver_frame(raw, spec, {}, "drop_exact", csv).frame


def splits(settings: Settings, seed: int = 42) -> Splits:
    """The 60/20/20 row-hash train/valid/test split of :func:`silver` (seed 42: the default)."""
    return split_frames(assign_splits(silver(settings), SplitFractions(), seed))


def features(frame: pd.DataFrame) -> list[str]:
    """Model feature columns of a split frame (``label``, ``split`` and ``Time`` excluded)."""
    return feature_columns(frame, EXCLUDED)
