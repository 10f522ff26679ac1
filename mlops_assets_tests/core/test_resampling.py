from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops_assets.core.resampling import ResamplingError, resample, resample_table
from mlops_assets.core.splits import SplitFractions, split_frames, split_table
from mlops_assets.core.synthetic import generate
from mlops_assets.core.tables import DeltaRsEngine


def _silver(rows: int = 3_000, seed: int = 0, rate: float = 0.03) -> pd.DataFrame:
    return generate(rows, seed=seed, positive_rate=rate).rename(columns={"Class": "label"})


def _on_a_segment(point: np.ndarray, sources: np.ndarray) -> bool:
    """Whether ``point`` lies on a segment between two of ``sources`` (SMOTE's construction)."""
    for first in sources:
        direction = sources - first
        offset = point - first
        norms = (direction**2).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            steps = (direction @ offset) / norms
        residual = np.linalg.norm(offset - steps[:, None] * direction, axis=1)
        if np.any((residual < 1e-6) & (steps >= -1e-9) & (steps <= 1 + 1e-9)):
            return True
    return False


@pytest.mark.parametrize("method", ["adasyn", "smote"])
def test_resampling_uses_train_rows_only(tmp_path: Path, method: str) -> None:
    engine = DeltaRsEngine(str(tmp_path))
    silver = engine.write("transactions", _silver(), mode="overwrite")
    splits = split_table(engine, silver, SplitFractions(), seed=0)
    written = resample_table(engine, splits.ref, method=method, seed=0, sampling_ratio=0.2)
    result = written.result
    parts = split_frames(engine.read("training_splits", splits.ref.version))
    out = engine.read("resampled_train", written.ref.version)

    assert "split" not in out.columns and result.method == method
    assert (result.rows_before, result.rows_after) == (len(parts.train), len(out))
    # Every original train row, unchanged and in order, then only synthetic positives.
    pd.testing.assert_frame_equal(out.iloc[: len(parts.train)], parts.train)
    synthetic = out.iloc[len(parts.train) :]
    assert len(synthetic) > 0 and (synthetic["label"] == 1).all()
    assert result.positives_after / (result.rows_after - result.positives_after) > 0.15
    # No valid or test row appears in the output.
    features = [name for name in out.columns if name != "label"]
    seen = set(map(tuple, out[features].to_numpy().round(9)))
    for held_out in (parts.valid, parts.test):
        assert not seen & set(map(tuple, held_out[features].to_numpy().round(9)))
    # Every synthetic row is interpolated between two training positives.
    positives = parts.train.loc[parts.train["label"] == 1, features].to_numpy()
    for row in synthetic[features].to_numpy()[:25]:
        assert _on_a_segment(row, positives)


def test_none_keeps_train_as_is() -> None:
    train = _silver(500)
    result = resample(train, method="none")
    assert result.method == "none" and result.rows_after == 500 and result.frame.equals(train)


def test_already_balanced_enough_is_not_resampled() -> None:
    result = resample(_silver(500, rate=0.3), method="adasyn", sampling_ratio=0.1)
    assert result.method == "none" and "already" in result.note


def test_categorical_columns_switch_to_smotenc_and_missing_values_survive() -> None:
    rng = np.random.default_rng(0)
    rows = 600
    train = pd.DataFrame(
        {
            "amount": rng.normal(size=rows),
            "count": rng.integers(0, 10, rows),
            "city": rng.choice(["a", "b", "c"], rows).astype(object),
            "flag": rng.random(rows) > 0.5,
            "income": np.where(rng.random(rows) < 0.1, np.nan, rng.normal(50, 5, rows)),
            "label": (rng.random(rows) < 0.05).astype("int64"),
        }
    )
    result = resample(train, method="adasyn", sampling_ratio=0.5, seed=1)
    assert result.method == "smotenc" and "'city'" in result.note and "'flag'" in result.note
    out = result.frame
    pd.testing.assert_frame_equal(out.iloc[:rows], train)
    synthetic = out.iloc[rows:]
    assert set(synthetic["city"]) <= {"a", "b", "c"}
    assert synthetic["flag"].dtype == bool and synthetic["count"].dtype == "int64"
    assert out["income"].iloc[:rows].isna().sum() == train["income"].isna().sum()
    assert result.positives_after / (rows - train["label"].sum()) == pytest.approx(0.5, abs=0.01)


def test_real_bank_slice_with_categoricals(shared_data: Path) -> None:
    bank = pd.read_csv(shared_data / "bank-additional-full.csv", sep=";", nrows=3_000)
    train = bank.assign(label=(bank.pop("y") == "yes").astype("int64"))
    result = resample(train, method="smote", sampling_ratio=0.5, seed=0)
    assert result.method == "smotenc" and result.rows_after > result.rows_before
    assert set(result.frame["job"]) <= set(train["job"])


@pytest.mark.parametrize(
    ("frame", "kwargs", "message"),
    [
        (_silver(100), {"method": "rose"}, "method 'rose' is not one of"),
        (_silver(100), {"sampling_ratio": 2.0}, r"sampling_ratio must be in \(0, 1\]"),
        (pd.DataFrame({"a": range(30), "label": [1] + [0] * 29}), {}, r"1 positive row\(s\)"),
        (pd.DataFrame({"a": ["x"] * 4, "label": [1, 1, 0, 0]}), {"sampling_ratio": 1.0}, None),
        (pd.DataFrame({"a": ["x", "y"] * 20, "label": [1, 1] + [0] * 38}), {}, "all feature"),
        (pd.DataFrame({"a": [1.0]}), {}, "column 'label' missing"),
    ],
)
def test_impossible_resampling_says_why(frame, kwargs, message) -> None:
    if message is None:  # already balanced: nothing to do, not an error
        assert resample(frame, **kwargs).method == "none"
        return
    with pytest.raises(ResamplingError, match=message):
        resample(frame, **kwargs)


@pytest.mark.parametrize("method", ["adasyn", "smote"])
def test_a_large_split_is_resampled_in_stratified_chunks(method: str) -> None:
    """Above ``max_chunk_rows`` each chunk is resampled alone: the cost stays linear in rows."""
    train = _silver(3_000, rate=0.05)
    chunked = resample(train, method=method, seed=1, sampling_ratio=0.2, max_chunk_rows=1_000)
    whole = resample(train, method=method, seed=1, sampling_ratio=0.2)
    assert "3 stratified chunks of at most 1,000 rows" in chunked.note and whole.note == ""
    original = train.reset_index(drop=True)
    pd.testing.assert_frame_equal(chunked.frame.iloc[: len(train)], original, check_dtype=False)
    synthetic = chunked.frame.iloc[len(train) :]
    assert (synthetic["label"] == 1).all() and synthetic.notna().all().all()
    # every chunk reaches the ratio, so the whole does (ADASYN's counts are approximate)
    ratio = chunked.positives_after / (chunked.rows_after - chunked.positives_after)
    assert ratio == pytest.approx(0.2, abs=0.02)
    assert abs(chunked.rows_after - whole.rows_after) <= 0.02 * len(train)
    assert resample(train, method=method, seed=1, max_chunk_rows=1_000).frame.equals(
        resample(train, method=method, seed=1, max_chunk_rows=1_000).frame
    )  # seeded


def test_one_chunk_is_exactly_one_sampler_call() -> None:
    train = _silver(2_000)
    fits = resample(train, seed=3, max_chunk_rows=2_000)
    assert fits.frame.equals(resample(train, seed=3, max_chunk_rows=10**9).frame)
    assert "chunk" not in fits.note


def test_chunks_too_small_for_the_positives_say_so() -> None:
    train = _silver(2_000, rate=0.003)  # 6 positives over 10 chunks
    with pytest.raises(ResamplingError, match="fewer than 2 positives: raise max_chunk_rows"):
        resample(train, seed=0, max_chunk_rows=200)
