"""Over-sampling of the training split only: ADASYN, SMOTE, SMOTENC or none.

Only the ``train`` rows of the splits table are read; validation and test rows never reach
the sampler. The output keeps every original train row unchanged, in order, followed by the
synthetic minority rows, each interpolated between training rows.

Categorical (text or boolean) columns: ADASYN and SMOTE work on numbers only, so when a
frame has any, SMOTENC is used instead (numeric columns interpolated, categories taken from
the nearest neighbours) and the result says so. Missing values are filled (medians, a
placeholder category) for the neighbour search only; original rows keep their missing
values and synthetic rows get them back where the placeholder was chosen.

Scale: ADASYN searches each positive's neighbours among all rows, so at a fixed positive rate
its cost grows with rows squared (exponent 1.39 measured from 1x to 16x the credit-card data).
A training split above ``max_chunk_rows`` is therefore cut into random, stratified chunks of
at most that many rows and each chunk is resampled on its own (its positives' neighbours come
from its own rows, a uniform sample of the split, so the local class balance ADASYN estimates
is kept): the cost grows linearly and the peak memory is bounded. At or below the bound (the
credit-card training split has 170,235 rows) the result is exactly that of one sampler call.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from mlops_assets.constants import LABEL_COLUMN, RESAMPLED_TRAIN_TABLE
from mlops_assets.core.splits import canonical_order, split_frames
from mlops_assets.core.tables import DeltaEngine, TableRef

ResamplingMethod = Literal["adasyn", "smote", "none"]
METHODS = ("adasyn", "smote", "none")
MAX_CHUNK_ROWS = 200_000
MISSING_CATEGORY = "__missing__"


class ResamplingError(ValueError):
    """Resampling is not possible as configured; the message says why."""


@dataclass(frozen=True)
class ResampleResult:
    """Resampled training rows and what was done.

    Attributes:
        frame: Original train rows (unchanged, in order) then the synthetic ones.
        requested: Method asked for.
        method: Method applied: adasyn, smote, smotenc or none.
        note: Why ``method`` differs from ``requested``, or other remarks; empty if none.
        rows_before: Train rows in.
        rows_after: Rows out.
        positives_before: Positive rows in.
        positives_after: Positive rows out.
        seconds: Time taken by the sampler.
    """

    frame: pd.DataFrame
    requested: str
    method: str
    note: str
    rows_before: int
    rows_after: int
    positives_before: int
    positives_after: int
    seconds: float


def _sampler(method: str, categorical: list[int], ratio: float, neighbours: int, seed: int):
    from imblearn.over_sampling import ADASYN, SMOTE, SMOTENC

    if categorical:
        return SMOTENC(
            categorical_features=categorical,
            sampling_strategy=ratio,
            k_neighbors=neighbours,
            random_state=seed,
        )
    if method == "adasyn":
        return ADASYN(sampling_strategy=ratio, n_neighbors=neighbours, random_state=seed)
    return SMOTE(sampling_strategy=ratio, k_neighbors=neighbours, random_state=seed)


def resample(
    train: pd.DataFrame,
    method: ResamplingMethod = "adasyn",
    seed: int = 0,
    sampling_ratio: float = 0.1,
    k_neighbors: int = 5,
    max_chunk_rows: int = MAX_CHUNK_ROWS,
) -> ResampleResult:
    """Over-sample the positive class of ``train``.

    Args:
        train: Training rows: features and ``label`` (0/1).
        method: ``adasyn``, ``smote`` or ``none``.
        seed: Random seed of the sampler.
        sampling_ratio: Positive-to-negative ratio after resampling (1.0 balances fully).
        k_neighbors: Neighbours used to interpolate (lowered to positives - 1 if needed).
        max_chunk_rows: Larger inputs are resampled in random stratified chunks of at most
            this many rows (see the module docstring).

    Returns:
        The resampled rows and figures.

    Raises:
        ResamplingError: Unknown method, ratio out of range, fewer than two positives,
            only categorical features, or the sampler cannot generate rows.
    """
    if method not in METHODS:
        raise ResamplingError(f"resampling method {method!r} is not one of {METHODS}")
    if not 0.0 < sampling_ratio <= 1.0:
        raise ResamplingError(f"sampling_ratio must be in (0, 1], got {sampling_ratio}")
    if LABEL_COLUMN not in train.columns:
        raise ResamplingError(f"column {LABEL_COLUMN!r} missing; columns are {list(train)}")
    started = time.perf_counter()
    labels = train[LABEL_COLUMN].astype("int64")
    positives, negatives = int(labels.sum()), int((labels == 0).sum())
    features = train.drop(columns=[LABEL_COLUMN])
    result = dict(
        requested=method,
        rows_before=len(train),
        positives_before=positives,
    )
    current_ratio = positives / negatives if negatives else float("inf")
    if method == "none" or current_ratio >= sampling_ratio:
        note = "" if method == "none" else f"ratio {current_ratio:.4f} already >= {sampling_ratio}"
        return ResampleResult(
            frame=train.reset_index(drop=True),
            method="none",
            note=note,
            rows_after=len(train),
            positives_after=positives,
            seconds=round(time.perf_counter() - started, 3),
            **result,
        )
    if positives < 2:
        raise ResamplingError(
            f"column {LABEL_COLUMN!r}: {positives} positive row(s) in train; "
            f"{method} needs at least 2 (use method 'none')"
        )
    categorical = [
        index
        for index, name in enumerate(features.columns)
        if not pd.api.types.is_numeric_dtype(features[name])
        or pd.api.types.is_bool_dtype(features[name])
    ]
    if len(categorical) == len(features.columns):
        raise ResamplingError(
            f"all feature columns are categorical ({list(features)}); {method} interpolates "
            f"numbers, so use method 'none'"
        )
    # copies of the whole split dominate SMOTE's time at scale: relabel rows without copying
    positions = pd.RangeIndex(len(train))
    filled = _fill_missing(features, categorical).set_axis(positions, axis=0, copy=False)
    labels = labels.set_axis(positions, copy=False)
    chunks = _chunks(labels.to_numpy(), max_chunk_rows, seed)
    synthetic_parts = []
    for index, rows in enumerate(chunks):
        chunk_positives = int(labels.iloc[rows].sum())
        neighbours = min(k_neighbors, chunk_positives - 1)
        sampler = _sampler(method, categorical, sampling_ratio, neighbours, seed + index)
        try:
            sampled_x, _ = sampler.fit_resample(filled.iloc[rows], labels.iloc[rows])
        except (ValueError, RuntimeError) as error:
            raise ResamplingError(
                f"{type(sampler).__name__} could not resample: {error}"
            ) from error
        synthetic_parts.append(pd.DataFrame(sampled_x, columns=features.columns).iloc[len(rows) :])
    synthetic = pd.concat(synthetic_parts, ignore_index=True)
    synthetic = _restore_types(synthetic, features)
    synthetic[LABEL_COLUMN] = np.ones(len(synthetic), dtype="int64")  # only positives are made
    original = train.set_axis(positions, axis=0, copy=False)
    if original[LABEL_COLUMN].dtype != "int64":
        original = original.assign(**{LABEL_COLUMN: labels.to_numpy()})
    frame = pd.concat([original, synthetic[original.columns]], ignore_index=True)
    used = "smotenc" if categorical else method
    notes = [
        f"{method} interpolates numbers only; categorical column(s) "
        f"{[features.columns[index] for index in categorical]} present, so SMOTENC was used"
        if categorical
        else "",
        f"resampled in {len(chunks)} stratified chunks of at most {max_chunk_rows:,} rows"
        if len(chunks) > 1
        else "",
    ]
    note = "; ".join(part for part in notes if part)
    return ResampleResult(
        frame=frame,
        method=used,
        note=note,
        rows_after=len(frame),
        positives_after=int(frame[LABEL_COLUMN].sum()),
        seconds=round(time.perf_counter() - started, 3),
        **result,
    )


def _chunks(labels: np.ndarray, max_rows: int, seed: int) -> list[np.ndarray]:
    """Row positions of random stratified chunks of at most ``max_rows`` rows (one if it fits).

    Each class is shuffled (seeded) and dealt evenly over the chunks, so every chunk has the
    split's positive rate and the chunks differ in size by at most one row per class.
    """
    count = -(-len(labels) // max(1, max_rows))
    if count <= 1:
        return [np.arange(len(labels))]
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[] for _ in range(count)]
    for label in (0, 1):
        rows = np.flatnonzero(labels == label)
        rng.shuffle(rows)
        for part, share in zip(parts, np.array_split(rows, count), strict=True):
            part.append(share)
    chunks = [np.sort(np.concatenate(part)) for part in parts]
    short = [len(chunk) for chunk in chunks if labels[chunk].sum() < 2]
    if short:
        raise ResamplingError(
            f"{len(labels):,} train rows in {count} chunks of at most {max_rows:,} leave "
            f"{len(short)} chunk(s) with fewer than 2 positives: raise max_chunk_rows"
        )
    return chunks


def _fill_missing(features: pd.DataFrame, categorical: list[int]) -> pd.DataFrame:
    if not categorical and not features.isna().to_numpy().any():
        return features  # nothing to fill: no copy
    filled = features.copy()
    for index, name in enumerate(features.columns):
        if not filled[name].isna().any():
            continue
        if index in categorical:
            filled[name] = filled[name].astype(object).where(filled[name].notna(), MISSING_CATEGORY)
        else:
            median = filled[name].median()
            filled[name] = filled[name].fillna(0.0 if pd.isna(median) else median)
    for index in categorical:
        name = features.columns[index]
        filled[name] = filled[name].astype(str)
    return filled


def _restore_types(synthetic: pd.DataFrame, features: pd.DataFrame) -> pd.DataFrame:
    restored = {}
    for name in features.columns:
        column, dtype = synthetic[name], features[name].dtype
        if pd.api.types.is_bool_dtype(dtype):
            restored[name] = column.map({"True": True, "False": False}).astype(dtype)
        elif pd.api.types.is_integer_dtype(dtype):
            restored[name] = pd.to_numeric(column).round().astype(dtype)
        elif pd.api.types.is_numeric_dtype(dtype):
            restored[name] = pd.to_numeric(column).astype(dtype)
        else:
            restored[name] = column.astype(object).where(column != MISSING_CATEGORY, None)
    return pd.DataFrame(restored, index=synthetic.index)


@dataclass(frozen=True)
class ResampledTable:
    """What the resampling step wrote.

    Attributes:
        ref: The new version of the resampled table.
        source_ref: The splits table version read.
        result: The resampling figures.
    """

    ref: TableRef
    source_ref: TableRef
    result: ResampleResult


def resample_table(
    engine: DeltaEngine,
    splits_ref: TableRef,
    method: ResamplingMethod = "adasyn",
    seed: int = 0,
    sampling_ratio: float = 0.1,
    table: str = RESAMPLED_TRAIN_TABLE,
) -> ResampledTable:
    """Read the train rows of ``splits_ref`` (exact version), resample, write ``table``.

    Train rows are put in canonical order first, so the seeded result does not depend on
    the order the engine returned them in.
    """
    train = canonical_order(split_frames(engine.read(splits_ref.name, splits_ref.version)).train)
    result = resample(train, method=method, seed=seed, sampling_ratio=sampling_ratio)
    ref = engine.write(table, result.frame, mode="overwrite")
    return ResampledTable(ref=ref, source_ref=splits_ref, result=result)
