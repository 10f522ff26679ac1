"""The hold-out tail: ingestion never sees it, traffic replays exactly it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops_assets.core.holdout import Holdout, split_tail
from mlops_assets.core.readers import SourceError
from mlops_assets.core.sources import (
    FileSource,
    OpenMLSource,
    SyntheticSource,
    TargetSpec,
    load_source,
)

TARGET = TargetSpec("Class", "1")


def ordered_frame(rows: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "Time": rng.integers(0, 1000, rows).astype(float),
            "V1": rng.normal(size=rows),
            "Class": (rng.random(rows) < 0.1).astype(int),
        }
    )


def test_split_tail_cuts_on_a_value_and_keeps_every_row() -> None:
    frame = ordered_frame()
    frame.loc[:9, "Time"] = 900.0  # ties straddling the boundary all go to one side
    cut = split_tail(frame, Holdout(0.25), "test frame")
    assert cut.ingest["Time"].max() < cut.cutoff <= cut.holdout["Time"].min()
    assert len(cut.ingest) + len(cut.holdout) == len(frame)
    assert len(cut.holdout) >= 50
    assert cut.holdout["Time"].is_monotonic_increasing
    key = ["Time", "V1"]
    assert set(map(tuple, pd.concat([cut.ingest, cut.holdout])[key].to_numpy())) == set(
        map(tuple, frame[key].to_numpy())
    )


def test_split_tail_orders_datetimes() -> None:
    frame = pd.DataFrame({"at": pd.date_range("2024-01-01", periods=10, freq="h"), "x": range(10)})
    cut = split_tail(frame.sample(frac=1, random_state=0), Holdout(0.3, "at"), "events")
    assert list(cut.holdout["x"]) == [7, 8, 9]
    assert sorted(cut.ingest["x"]) == list(range(7))


@pytest.mark.parametrize(
    ("frame", "holdout", "message"),
    [
        (ordered_frame(), Holdout(0.2, "Step"), "column 'Step': hold-out order column not found"),
        (
            ordered_frame().assign(Time=lambda f: f["Time"].astype(str)),
            Holdout(0.2),
            "must be numeric or datetime",
        ),
        (
            ordered_frame().assign(Time=lambda f: f["Time"].where(f.index != 3)),
            Holdout(0.2),
            "1 missing value(s)",
        ),
        (ordered_frame().assign(Time=5.0), Holdout(0.2), "leaves nothing to ingest"),
        (ordered_frame(rows=1), Holdout(0.2), "1 row(s) cannot be split"),
    ],
)
def test_split_tail_names_what_is_wrong(frame, holdout, message) -> None:
    with pytest.raises(SourceError, match="data.csv") as error:
        split_tail(frame, holdout, "file data.csv")
    assert message in str(error.value)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1])
def test_holdout_fraction_must_be_inside_zero_one(fraction: float) -> None:
    with pytest.raises(ValueError, match="Holdout.fraction"):
        Holdout(fraction)


def test_file_source_ingests_the_head_and_replays_the_tail(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    ordered_frame(rows=500).to_csv(path, index=False)
    source = FileSource(str(path), TARGET, holdout=Holdout(0.2))
    ingest = load_source(source)
    tail = load_source(source, part="holdout")
    assert ingest.holdout_rows == tail.holdout_rows == len(tail.frame) >= 100
    assert len(ingest.frame) + len(tail.frame) == 500
    assert ingest.frame["Time"].max() < tail.frame["Time"].min()
    assert "latest 20% of Time held out" in ingest.description
    full = load_source(FileSource(str(path), TARGET))
    assert len(full.frame) == 500 and full.holdout_rows == 0


def test_traffic_from_a_source_without_holdout_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    ordered_frame().to_csv(path, index=False)
    with pytest.raises(SourceError, match=r"data\.csv: no hold-out is configured"):
        load_source(FileSource(str(path), TARGET), part="holdout")


def test_synthetic_rows_have_no_tail_even_as_an_openml_fallback(tmp_path: Path) -> None:
    offline = OpenMLSource(
        cache_dir=str(tmp_path),
        timeout_s=0.5,
        fallback=SyntheticSource(rows=300),
        holdout=Holdout(0.2),
    )

    def unreachable(_data_id, _home):
        raise OSError("network is unreachable")

    (tmp_path / "openml").mkdir()
    (tmp_path / "openml" / "data-1597.sha256.json").write_text('{"sha256": "x"}')
    ingest = load_source(offline, fetch=unreachable)
    tail = load_source(offline, fetch=unreachable, part="holdout")
    assert ingest.kind == tail.kind == "synthetic"
    assert len(ingest.frame) == 300 and tail.frame.empty
    assert "synthetic rows have no hold-out" in tail.description


def test_data_source_resource_passes_the_holdout() -> None:
    from mlops_assets.resources import DataSource

    source = DataSource(kind="file", path="x.csv", holdout_tail_fraction=0.3).source()
    assert source.holdout == Holdout(0.3, "Time")
    assert DataSource(kind="file", path="x.csv").source().holdout is None


@pytest.mark.slow
def test_real_credit_card_tail_is_later_than_every_ingested_row(shared_data: Path) -> None:
    path = shared_data / "creditcard.csv.gz"
    tail = load_source(FileSource(str(path), TARGET, holdout=Holdout(0.2)), part="holdout")
    times = pd.read_csv(path, usecols=["Time"])["Time"]
    ingested = times[times < tail.frame["Time"].min()]
    assert len(ingested) + len(tail.frame) == len(times) == 284_807
    assert 0.19 < len(tail.frame) / len(times) < 0.21
    assert tail.frame["Class"].sum() > 50  # frauds to replay
