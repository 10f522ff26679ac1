"""Where raw transactions come from: OpenML (cached, checksummed), a local file, or synthetic.

:func:`load_source` returns a :class:`LoadedSource`: the frame as the source has it plus
what was used and why. The OpenML source probes the network with a short timeout first, so
an offline machine learns within seconds that it is offline; it then falls back to the
synthetic generator (same schema as the default OpenML data) and says so.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import pandas as pd

from mlops_assets.core import synthetic
from mlops_assets.core.holdout import Holdout, SourcePart, apply_holdout
from mlops_assets.core.readers import (
    OPENML_HOST,
    SourceError,
    fetch_openml_frame,
    frame_checksum,
    openml_reachable,
    read_table_file,
)

LOGGER = logging.getLogger(__name__)

CREDITCARD_DATA_ID = 1597
CREDITCARD_TYPES: Mapping[str, str] = {name: "float" for name in synthetic.FEATURE_COLUMNS}

SourceKind = Literal["openml", "file", "synthetic"]


@dataclass(frozen=True)
class TargetSpec:
    """Which column is the target and which of its values is the positive class.

    Attributes:
        column: Target column name in the source.
        positive_label: The positive value, as text (``"1"``, ``"yes"``); numeric targets
            are compared numerically.
    """

    column: str
    positive_label: str


SYNTHETIC_TARGET = TargetSpec(column=synthetic.TARGET_COLUMN, positive_label="1")


@dataclass(frozen=True)
class SyntheticSource:
    """The seeded generator of :mod:`mlops_assets.core.synthetic`."""

    rows: int = 100_000
    seed: int = 42
    positive_rate: float = synthetic.POSITIVE_RATE
    drift: synthetic.DriftSpec | None = None


@dataclass(frozen=True)
class FileSource:
    """A local CSV (optionally gzip) or Parquet file.

    Attributes:
        path: File path.
        target: Target column and positive label.
        format: ``csv``, ``parquet`` or ``auto`` (from the file name).
        delimiter: CSV field delimiter.
        drop_columns: Columns removed on read (e.g. leaky ones).
        column_types: Declared types (``float``/``int``/``string``/``bool``) the silver layer
            enforces; undeclared columns are inferred.
        holdout: Latest rows kept back for traffic (never ingested), or None.
    """

    path: str
    target: TargetSpec
    format: Literal["auto", "csv", "parquet"] = "auto"
    delimiter: str = ","
    drop_columns: tuple[str, ...] = ()
    column_types: Mapping[str, str] = field(default_factory=dict)
    holdout: Holdout | None = None


@dataclass(frozen=True)
class OpenMLSource:
    """An OpenML data set, cached under ``cache_dir`` with a content checksum.

    Attributes:
        cache_dir: Cache folder (the state folder's cache dir).
        data_id: OpenML data id; 1597 is the credit-card fraud data.
        target: Target column and positive label.
        timeout_s: Network probe timeout; offline fails within about this time.
        fallback: Synthetic source used when OpenML cannot be reached; None fails instead.
        holdout: Latest rows kept back for traffic (never ingested), or None.
    """

    cache_dir: str
    data_id: int = CREDITCARD_DATA_ID
    target: TargetSpec = SYNTHETIC_TARGET
    timeout_s: float = 3.0
    fallback: SyntheticSource | None = field(default_factory=SyntheticSource)
    holdout: Holdout | None = None


Source = SyntheticSource | FileSource | OpenMLSource


@dataclass(frozen=True)
class LoadedSource:
    """A source's rows and an account of what was used.

    Attributes:
        frame: The rows as the source has them.
        kind: The source actually used.
        description: Human-readable account, including any fallback and its reason.
        target: Target column and positive label of ``frame``.
        column_types: Types the silver layer enforces (empty: infer).
        fallback_reason: Why the configured source was not used, or None.
        seconds: Time taken to load.
        holdout_rows: Rows of the source held out for traffic (not in ``frame`` when ingesting).
    """

    frame: pd.DataFrame
    kind: SourceKind
    description: str
    target: TargetSpec
    column_types: Mapping[str, str] = field(default_factory=dict)
    fallback_reason: str | None = None
    seconds: float = 0.0
    holdout_rows: int = 0


def expected_target(source: Source) -> TargetSpec:
    """Return the target spec the source's rows will have (fallbacks share it)."""
    return SYNTHETIC_TARGET if isinstance(source, SyntheticSource) else source.target


def expected_types(source: Source) -> Mapping[str, str]:
    """Return the column types declared for the source (credit-card schema where known)."""
    if isinstance(source, FileSource):
        return dict(source.column_types)
    if isinstance(source, OpenMLSource) and source.data_id != CREDITCARD_DATA_ID:
        return {}
    return dict(CREDITCARD_TYPES)


def describe(source: Source) -> str:
    """Return a short description of a configured source (before loading it)."""
    if isinstance(source, FileSource):
        return f"file {source.path}"
    if isinstance(source, SyntheticSource):
        return f"synthetic credit-card schema, {source.rows} rows, seed {source.seed}"
    fallback = ", synthetic fallback when offline" if source.fallback else ""
    return f"OpenML data {source.data_id}{fallback}"


def load_source(
    source: Source,
    fetch: Callable[[int, Path], pd.DataFrame] | None = None,
    part: SourcePart = "ingest",
) -> LoadedSource:
    """Load ``source``.

    Args:
        source: What to load.
        fetch: OpenML fetcher ``(data_id, data_home) -> frame`` (tests inject one); defaults
            to scikit-learn's ``fetch_openml``.
        part: ``ingest``: the rows to train on (without a configured hold-out tail);
            ``holdout``: only that tail, for traffic (see :mod:`mlops_assets.core.holdout`).

    Returns:
        The loaded rows and a description of what was used.

    Raises:
        SourceError: The file is missing, empty, truncated or lacks the target column;
            OpenML is unreachable and no fallback is configured; or the hold-out cannot be cut.
    """
    started = time.perf_counter()
    if isinstance(source, SyntheticSource):
        loaded = _load_synthetic(source)
    elif isinstance(source, FileSource):
        loaded = _load_file(source)
    else:
        loaded = _load_openml(source, fetch or fetch_openml_frame)
    loaded = apply_holdout(loaded, getattr(source, "holdout", None), part)
    return replace(loaded, seconds=round(time.perf_counter() - started, 3))


def _load_synthetic(source: SyntheticSource, reason: str | None = None) -> LoadedSource:
    frame = synthetic.generate(
        source.rows, seed=source.seed, positive_rate=source.positive_rate, drift=source.drift
    )
    drift = " with drift" if source.drift else ""
    description = (
        f"synthetic credit-card schema, {source.rows} rows, seed {source.seed}, "
        f"positive rate {source.positive_rate:g}{drift}"
    )
    if reason:
        description = f"{reason}; used {description}"
    return LoadedSource(
        frame=frame,
        kind="synthetic",
        description=description,
        target=SYNTHETIC_TARGET,
        column_types=dict(CREDITCARD_TYPES),
        fallback_reason=reason,
    )


def _load_file(source: FileSource) -> LoadedSource:
    frame = read_table_file(source.path, source.format, source.delimiter)
    missing = [name for name in source.drop_columns if name not in frame.columns]
    if missing:
        raise SourceError(
            f"file {source.path}: drop column(s) {missing} not found; columns are {list(frame)}"
        )
    frame = frame.drop(columns=list(source.drop_columns))
    _require_target(frame, source.target.column, f"file {source.path}")
    return LoadedSource(
        frame=frame,
        kind="file",
        description=f"file {source.path}",
        target=source.target,
        column_types=dict(source.column_types),
    )


def _load_openml(source: OpenMLSource, fetch: Callable[[int, Path], pd.DataFrame]) -> LoadedSource:
    data_home = Path(source.cache_dir) / "openml"
    marker = data_home / f"data-{source.data_id}.sha256.json"
    where = f"OpenML data {source.data_id}"
    if not marker.exists():
        reason = openml_reachable(source.timeout_s)
        if reason is not None:
            return _fallback(source, f"OpenML unreachable ({OPENML_HOST}: {reason})")
    try:
        frame = fetch(source.data_id, data_home)
    except Exception as error:  # network, HTTP or parse errors all mean: not available
        return _fallback(source, f"OpenML fetch of data {source.data_id} failed: {error}")
    checksum = frame_checksum(frame)
    if marker.exists():
        recorded = json.loads(marker.read_text())["sha256"]
        if recorded != checksum:
            raise SourceError(
                f"{where}: cached copy under {data_home} does not match checksum in {marker} "
                f"(recorded {recorded[:12]}..., got {checksum[:12]}...); delete the cache folder"
            )
    else:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps({"data_id": source.data_id, "sha256": checksum}))
    _require_target(frame, source.target.column, where)
    return LoadedSource(
        frame=frame,
        kind="openml",
        description=f"{where} (cached under {data_home}, sha256 {checksum[:12]})",
        target=source.target,
        column_types=expected_types(source),
    )


def _require_target(frame: pd.DataFrame, column: str, where: str) -> None:
    """Raise a SourceError naming ``where`` and the columns when the target is missing."""
    if column not in frame.columns:
        raise SourceError(
            f"{where}, column {column!r}: target column not found; columns are {list(frame)}"
        )


def _fallback(source: OpenMLSource, reason: str) -> LoadedSource:
    if source.fallback is None:
        raise SourceError(f"{reason}; no fallback source configured")
    if source.target != SYNTHETIC_TARGET:
        raise SourceError(
            f"{reason}; the synthetic fallback has target {SYNTHETIC_TARGET.column!r} "
            f"(positive {SYNTHETIC_TARGET.positive_label!r}), not the configured "
            f"{source.target.column!r}, so it cannot stand in"
        )
    LOGGER.warning("%s; using the synthetic source instead", reason)
    return _load_synthetic(source.fallback, reason)
