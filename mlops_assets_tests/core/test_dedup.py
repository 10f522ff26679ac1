"""Exact-duplicate detection by row hash agrees with pandas ``duplicated`` on every kind."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlops_assets.core.dedup import drop_exact_duplicates, duplicated_rows


def _check(frame: pd.DataFrame) -> None:
    expected = frame.duplicated(keep="first").to_numpy()
    assert duplicated_rows(frame).tolist() == expected.tolist()
    pd.testing.assert_frame_equal(drop_exact_duplicates(frame), frame.drop_duplicates())


def test_signed_zero_and_every_nan_count_as_equal_like_pandas() -> None:
    other_nan = np.frombuffer(np.uint64(0x7FF8000000000001).tobytes(), dtype=np.float64)[0]
    frame = pd.DataFrame({"a": [0.0, -0.0, np.nan, other_nan, 1.0], "b": [1, 1, 2, 2, 3]})
    assert duplicated_rows(frame).tolist() == [False, True, False, True, False]
    _check(frame)


def test_text_nulls_booleans_categories_and_nullable_ints() -> None:
    frame = pd.DataFrame(
        {
            "text": ["x", "x", None, None, "y", "x"],
            "flag": [True, True, False, False, True, False],
            "kind": pd.Categorical(["a", "a", "b", "b", "a", "a"]),
            "count": pd.array([1, 1, None, None, 2, 1], dtype="Int64"),
        }
    )
    assert duplicated_rows(frame).tolist() == [False, True, False, True, False, False]
    _check(frame)


@pytest.mark.parametrize("seed", range(5))
def test_random_frames_with_planted_duplicates_match_pandas(seed: int) -> None:
    rng = np.random.default_rng(seed)
    rows = 2000
    frame = pd.DataFrame(
        {
            "f": rng.choice([0.0, -0.0, 1.5, np.nan], rows),
            "i": rng.integers(0, 3, rows),
            "s": rng.choice(["a", "b", None], rows),
            "g": rng.normal(size=rows).round(1),
        }
    )
    _check(frame)
    _check(pd.concat([frame, frame.sample(300, random_state=seed)], ignore_index=True))


def test_empty_frame_and_no_duplicates() -> None:
    _check(pd.DataFrame({"a": pd.Series([], dtype=float)}))
    unique = pd.DataFrame({"a": np.arange(10.0), "b": list("abcdefghij")})
    assert not duplicated_rows(unique).any()
    _check(unique)
