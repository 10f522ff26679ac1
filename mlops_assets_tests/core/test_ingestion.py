from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from mlops_assets.core.ingestion import refine_transactions, silver_frame, write_raw
from mlops_assets.core.schema import DataValidationError
from mlops_assets.core.sources import (
    FileSource,
    LoadedSource,
    SourceError,
    SyntheticSource,
    TargetSpec,
    load_source,
)
from mlops_assets.core.tables import DeltaRsEngine

CLASS = TargetSpec("Class", "1")


def _loaded(frame: pd.DataFrame, target: TargetSpec = CLASS) -> LoadedSource:
    return LoadedSource(frame=frame, kind="file", description="file test.csv", target=target)


def test_raw_keeps_rows_as_is_and_writes_new_versions(tmp_path: Path) -> None:
    engine = DeltaRsEngine(str(tmp_path))
    frame = pd.DataFrame({"c": pd.Categorical(["x", None, "y"]), "Class": ["0", "1", "0"]})
    first = write_raw(engine, _loaded(frame))
    second = write_raw(engine, _loaded(frame.head(2)))
    assert (first.ref.version, second.ref.version) == (0, 1)
    assert first.rows == 3 and first.columns == ("c", "Class") and first.source_kind == "file"
    back = engine.read("raw_transactions", 0)
    assert back["c"].tolist()[0] == "x" and back["c"].isna().tolist() == [False, True, False]
    assert back["Class"].tolist() == ["0", "1", "0"]  # as-is: the target is still text
    assert len(engine.read("raw_transactions")) == 2


def test_silver_types_normalises_label_and_drops_exact_duplicates() -> None:
    raw = pd.DataFrame(
        {"amount": ["1.5", "1.5", "2.0", "3"], "Class": ["1", "1", "0", "0"], "s": list("aabc")}
    )
    silver = silver_frame(raw, CLASS, {"amount": "float"}, "drop_exact", "file t.csv")
    assert list(silver.frame.columns) == ["amount", "s", "label"]
    assert silver.frame["label"].tolist() == [1, 0, 0]
    assert silver.duplicates_dropped == 1
    kept = silver_frame(raw, CLASS, {}, "keep", "file t.csv")
    assert kept.duplicates_dropped == 0 and len(kept.frame) == 4
    with pytest.raises(DataValidationError, match="dedup policy 'maybe'"):
        silver_frame(raw, CLASS, {}, "maybe", "file t.csv")  # type: ignore[arg-type]


def test_silver_cleans_column_names_and_refuses_reserved_ones() -> None:
    raw = pd.DataFrame({"a b": [1, 2], "c=d": [3, 4], "emp.var.rate": [0.1, 0.2], "Class": [0, 1]})
    silver = silver_frame(raw, CLASS, {}, "keep", "o")
    assert list(silver.frame.columns) == ["a_b", "c_d", "emp.var.rate", "label"]
    assert silver.renamed == {"a b": "a_b", "c=d": "c_d"}
    with pytest.raises(DataValidationError, match=r"o, column\(s\) \['split'\]: reserved"):
        silver_frame(raw.assign(split=1), CLASS, {}, "keep", "o")
    with pytest.raises(DataValidationError, match="clash"):
        silver_frame(raw.assign(**{"a_b": 1}), CLASS, {}, "keep", "o")
    with pytest.raises(DataValidationError, match="o: no rows"):
        silver_frame(raw.head(0), CLASS, {}, "keep", "o")


def test_refine_reads_the_pinned_raw_version(tmp_path: Path) -> None:
    engine = DeltaRsEngine(str(tmp_path))
    old = write_raw(engine, load_source(SyntheticSource(rows=400, seed=1, positive_rate=0.05)))
    write_raw(engine, load_source(SyntheticSource(rows=100, seed=2, positive_rate=0.05)))
    result = refine_transactions(engine, old.ref, CLASS, {}, origin="synthetic")
    assert result.raw_ref == old.ref and result.rows == 400
    assert result.ref.version == 0 and result.schema["label"] == "int"
    assert result.positives + result.negatives == 400
    assert result.positive_rate == pytest.approx(result.positives / 400)


@pytest.mark.parametrize(
    ("csv", "message"),
    [
        ("a,Class\n1,0\n2,0\n", r"raw_transactions@v1 \(file .*\), column 'Class': only one class"),
        ("a,b\n1,0\n2,1\n", "column 'Class': target column not found"),
        ("a,Class\n" + "1,0\n" * 20 + "abc,1\n", r"column 'a': 1 of 21 value\(s\) are not numbers"),
    ],
)
def test_bad_input_fails_before_writing_and_keeps_previous_version(
    tmp_path: Path, csv: str, message: str
) -> None:
    engine = DeltaRsEngine(str(tmp_path / "lake"))
    good = load_source(SyntheticSource(rows=300, seed=1, positive_rate=0.05))
    first = refine_transactions(engine, write_raw(engine, good).ref, CLASS, {}, origin="s")
    before = engine.read("transactions", first.ref.version)

    path = tmp_path / "bad.csv"
    path.write_text(csv)
    raw = write_raw(engine, _loaded(pd.read_csv(path)))  # bronze takes the rows as they are
    with pytest.raises(DataValidationError, match=message):
        refine_transactions(engine, raw.ref, CLASS, {}, origin=f"file {path}")
    assert engine.latest_version("transactions") == first.ref.version
    pd.testing.assert_frame_equal(engine.read("transactions", first.ref.version), before)


def test_unreadable_file_never_reaches_the_raw_table(tmp_path: Path) -> None:
    engine = DeltaRsEngine(str(tmp_path / "lake"))
    write_raw(engine, load_source(SyntheticSource(rows=50)))
    path = tmp_path / "empty.csv"
    path.write_text("")
    with pytest.raises(SourceError, match="empty.csv: is empty"):
        write_raw(engine, load_source(FileSource(str(path), CLASS)))
    assert engine.latest_version("raw_transactions") == 0
    assert len(engine.read("raw_transactions", 0)) == 50


def test_real_bank_and_marketing_become_silver(shared_data: Path, tmp_path: Path) -> None:
    engine = DeltaRsEngine(str(tmp_path))
    bank = load_source(
        FileSource(
            str(shared_data / "bank-additional-full.csv"), TargetSpec("y", "yes"), delimiter=";"
        )
    )
    result = refine_transactions(engine, write_raw(engine, bank).ref, bank.target, {}, "keep")
    assert (result.rows, result.positives) == (41_188, 4_640)
    assert result.schema["job"] == "string" and result.schema["age"] == "int"
    assert result.schema["emp.var.rate"] == "float"
    deduped = refine_transactions(engine, write_raw(engine, bank).ref, bank.target, {})
    assert deduped.duplicates_dropped == 12 and deduped.rows == 41_176

    marketing = load_source(
        FileSource(
            str(shared_data / "marketing_campaign.csv"),
            TargetSpec("Response", "1"),
            delimiter="\t",
            column_types={"Income": "float", "Dt_Customer": "string"},
        )
    )
    silver = refine_transactions(
        engine, write_raw(engine, marketing).ref, marketing.target, marketing.column_types
    )
    frame = engine.read("transactions", silver.ref.version)
    assert (silver.rows, silver.positives) == (2_240, 334)
    assert frame["Income"].isna().sum() == 24 and silver.schema["Dt_Customer"] == "string"
