"""Exact-duplicate rows in linear time: one row hash, then an exact check of the candidates.

``DataFrame.duplicated`` over many columns combines per-column codes into a group index and
re-factorizes it once per column; on millions of rows with unique floats its cost grows
faster than the row count (measured: 6.7x the CPU for 4x the credit-card rows). Here each
row gets one 64-bit hash, computed column by column with the values normalised to the
equality ``duplicated`` uses (``-0.0`` equals ``0.0``, every NaN equals every NaN, other
columns by their factorized codes); only rows whose hash occurs more than once are compared
exactly with ``duplicated``. The result is the same as ``frame.duplicated(keep="first")``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

_MIX = np.uint64(0x9E3779B97F4A7C15)  # odd 64-bit constant (golden ratio) mixing the columns


def _column_hash(column: pd.Series) -> np.ndarray:
    values = column.to_numpy() if isinstance(column.dtype, np.dtype) else None
    if values is not None and values.dtype.kind == "f":
        normalised = values + 0.0  # -0.0 becomes 0.0
        normalised[np.isnan(normalised)] = np.nan  # one NaN bit pattern
        return pd.util.hash_array(normalised)
    if values is not None and values.dtype.kind in "iub":
        return pd.util.hash_array(values)
    codes, _ = pd.factorize(column, use_na_sentinel=True)  # equality as duplicated sees it
    return pd.util.hash_array(codes)


def duplicated_rows(frame: pd.DataFrame) -> np.ndarray:
    """Boolean mask of rows identical in every column to an earlier row (first one kept).

    Equal to ``frame.duplicated(keep="first").to_numpy()``.
    """
    if len(frame) == 0 or frame.shape[1] == 0:
        return frame.duplicated(keep="first").to_numpy()
    hashes = np.zeros(len(frame), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for position in range(frame.shape[1]):
            hashes = hashes * _MIX ^ _column_hash(frame.iloc[:, position])
    candidates = pd.Series(hashes).duplicated(keep=False).to_numpy()
    mask = np.zeros(len(frame), dtype=bool)
    if candidates.any():
        mask[candidates] = frame[candidates].duplicated(keep="first").to_numpy()
    return mask


def drop_exact_duplicates(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` without rows identical to an earlier row (index kept, like ``drop_duplicates``)."""
    mask = duplicated_rows(frame)
    return frame[~mask] if mask.any() else frame
