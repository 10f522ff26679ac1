from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops_assets.core.splits import (
    SplitError,
    SplitFractions,
    Splits,
    assign_splits,
    canonical_order,
    feature_columns,
    split_frames,
    split_table,
)
from mlops_assets.core.synthetic import generate
from mlops_assets.core.tables import DeltaRsEngine


def _silver(rows: int = 5_000, seed: int = 0, rate: float = 0.03) -> pd.DataFrame:
    frame = generate(rows, seed=seed, positive_rate=rate)
    return frame.rename(columns={"Class": "label"}).assign(row_id=range(rows))


def test_assign_splits_sizes_rates_and_coverage() -> None:
    frame = _silver(20_000)
    assigned = assign_splits(frame, SplitFractions(0.6, 0.2, 0.2), seed=1)
    assert len(assigned) == len(frame) and assigned["row_id"].tolist() == list(range(20_000))
    shares = assigned["split"].value_counts(normalize=True)
    assert shares.to_dict() == pytest.approx({"train": 0.6, "valid": 0.2, "test": 0.2}, abs=0.01)
    overall = frame["label"].mean()
    for name, rate in assigned.groupby("split")["label"].mean().items():
        assert rate == pytest.approx(overall, abs=0.005), name
    parts = split_frames(assigned)
    ids = [set(part["row_id"]) for part in (parts.train, parts.valid, parts.test)]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    assert set().union(*ids) == set(range(20_000))


def test_rows_keep_their_split_when_the_table_grows() -> None:
    old = _silver(3_000, seed=4)
    grown = pd.concat([old, _silver(2_000, seed=5).assign(row_id=range(3_000, 5_000))])
    grown = grown.sample(frac=1.0, random_state=3)  # new rows interleaved, another order
    before = assign_splits(old, SplitFractions(), seed=42).set_index("row_id")["split"]
    after = assign_splits(grown, SplitFractions(), seed=42).set_index("row_id")["split"]
    pd.testing.assert_series_equal(after.loc[before.index], before)
    new_rows = after.drop(before.index)
    assert set(new_rows) == {"train", "valid", "test"}


def test_the_split_ignores_the_label_and_keeps_identical_rows_together() -> None:
    frame = _silver(2_000, seed=6)
    twins = pd.concat([frame, frame.assign(label=1 - frame["label"])])
    assigned = assign_splits(twins, SplitFractions(), seed=0)["split"].to_numpy()
    assert (assigned[:2_000] == assigned[2_000:]).all()


def test_split_is_seeded() -> None:
    frame = _silver(1_000)
    first = assign_splits(frame, SplitFractions(), seed=7)["split"]
    assert first.equals(assign_splits(frame, SplitFractions(), seed=7)["split"])
    second = assign_splits(frame, SplitFractions(), seed=8)["split"]
    assert (first != second).mean() > 0.4  # an independent assignment, not a small change
    negative = assign_splits(frame, SplitFractions(), seed=-7)["split"]
    assert (negative != first).mean() > 0.4


def test_other_fractions() -> None:
    assigned = assign_splits(_silver(10_000), SplitFractions(0.8, 0.1, 0.1), seed=0)
    shares = assigned["split"].value_counts(normalize=True).to_dict()
    assert shares == pytest.approx({"train": 0.8, "valid": 0.1, "test": 0.1}, abs=0.01)


@pytest.mark.parametrize(
    ("fractions", "message"),
    [((0.6, 0.3, 0.2), "sum to 1"), ((1.0, 0.0, 0.0), r"each be in \(0, 1\)")],
)
def test_bad_fractions(fractions, message) -> None:
    with pytest.raises(SplitError, match=message):
        SplitFractions(*fractions)


def test_too_few_positives_named() -> None:
    frame = pd.DataFrame({"x": range(100), "label": [1, 1] + [0] * 98})
    with pytest.raises(SplitError, match=r"column 'label': class\(es\) \{1: \[.*\]\}") as error:
        assign_splits(frame, SplitFractions(), seed=0)
    assert "{0: 98, 1: 2}" in str(error.value)
    with pytest.raises(SplitError, match="column 'label' missing"):
        assign_splits(frame.drop(columns=["label"]), SplitFractions(), seed=0)


def test_split_frames_and_feature_columns() -> None:
    assigned = assign_splits(_silver(500), SplitFractions(), seed=0)
    parts = split_frames(assigned)
    assert isinstance(parts, Splits) and "split" not in parts.train.columns
    assert feature_columns(assigned, exclude=("Time", "row_id", "absent"))[:2] == ["V1", "V2"]
    assert "label" not in feature_columns(parts.train) and "Time" in feature_columns(parts.train)
    with pytest.raises(SplitError, match="column 'split' missing"):
        split_frames(parts.train)
    with pytest.raises(SplitError, match=r"unknown values \['dev'\]"):
        split_frames(assigned.assign(split="dev"))
    with pytest.raises(SplitError, match=r"split\(s\) \['test'\] have no rows"):
        split_frames(assigned[assigned["split"] != "test"])


def test_split_table_time_travels_to_the_pinned_version(tmp_path: Path) -> None:
    engine = DeltaRsEngine(str(tmp_path))
    old = engine.write("transactions", _silver(1_000, seed=1), mode="overwrite")
    newer = engine.write("transactions", _silver(3_000, seed=2), mode="overwrite")
    assert newer.version == old.version + 1
    result = split_table(engine, old, SplitFractions(), seed=0)
    assert result.source_ref == old and result.rows == 1_000
    stored = engine.read("training_splits", result.ref.version)
    expected = engine.read("transactions", old.version)
    pd.testing.assert_frame_equal(
        canonical_order(stored.drop(columns=["split"])), canonical_order(expected)
    )
    assert result.rows == 1_000 and set(result.sizes) == {"train", "valid", "test"}
    assert stored["split"].value_counts().to_dict() == result.sizes
    assert set(result.positive_rates) == {"train", "valid", "test"}


def test_split_does_not_depend_on_the_order_rows_are_read_in(tmp_path: Path) -> None:
    engine = DeltaRsEngine(str(tmp_path))
    frame = _silver(2_000, seed=3)
    shuffled = frame.sample(frac=1.0, random_state=9).reset_index(drop=True)
    assert not shuffled["row_id"].equals(frame["row_id"])
    first = split_table(engine, engine.write("a", frame), SplitFractions(), 5, table="sa")
    second = split_table(engine, engine.write("b", shuffled), SplitFractions(), 5, table="sb")
    left = engine.read("sa", first.ref.version).set_index("row_id")["split"].sort_index()
    right = engine.read("sb", second.ref.version).set_index("row_id")["split"].sort_index()
    assert left.equals(right)
    ordered = canonical_order(shuffled)
    assert ordered.equals(canonical_order(frame))


def test_a_grown_table_splits_old_rows_as_before(tmp_path: Path) -> None:
    engine = DeltaRsEngine(str(tmp_path))
    old = engine.write("transactions", _silver(2_000, seed=7), mode="overwrite")
    extra = _silver(500, seed=8).assign(row_id=range(2_000, 2_500))
    grown = engine.write("transactions", extra, mode="append")
    first = split_table(engine, old, SplitFractions(), seed=42)
    second = split_table(engine, grown, SplitFractions(), seed=42)
    before = engine.read("training_splits", first.ref.version).set_index("row_id")["split"]
    after = engine.read("training_splits", second.ref.version).set_index("row_id")["split"]
    assert second.rows == 2_500
    pd.testing.assert_series_equal(after.loc[before.index].sort_index(), before.sort_index())


@pytest.mark.spark
def test_spark_and_delta_rs_give_every_row_the_same_split(spark, tmp_path: Path) -> None:
    from mlops_assets.core.spark_tables import SparkDeltaEngine

    root = str(tmp_path / "lake")
    on_rs, on_spark = DeltaRsEngine(root), SparkDeltaEngine(root, spark)
    frame = _silver(1_500, seed=9).assign(
        channel=lambda f: np.where(f["row_id"] % 3 == 0, None, np.where(f["V1"] > 0, "web", "pos"))
    )
    frame.loc[frame["row_id"] % 7 == 0, "Amount"] = np.nan
    source = on_rs.write("transactions", frame)
    by_rs = split_table(on_rs, source, SplitFractions(), seed=3, table="splits_rs")
    by_spark = split_table(on_spark, source, SplitFractions(), seed=3, table="splits_spark")
    left = on_rs.read("splits_rs", by_rs.ref.version).set_index("row_id")["split"].sort_index()
    right = on_rs.read("splits_spark", by_spark.ref.version).set_index("row_id")["split"]
    pd.testing.assert_series_equal(right.sort_index(), left)
