from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from mlops_assets.core.schema import DataValidationError, binary_label, kind_of, type_columns
from mlops_assets.core.sources import TargetSpec
from mlops_assets.core.tables import DeltaRsEngine
from mlops_assets.core.validation import (
    CheckThresholds,
    check_columns_and_types,
    check_min_positives,
    check_null_rates,
    check_row_count_change,
    check_transactions,
    check_two_classes,
)

ORIGIN = "file data.csv"


def _silver(rows: int = 10, positives: int = 3) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "amount": [float(index) for index in range(rows)],
            "kind": ["a", "b"] * (rows // 2),
            "label": [1] * positives + [0] * (rows - positives),
        }
    )


def test_kinds() -> None:
    frame = pd.DataFrame({"f": [1.0], "i": [1], "s": ["x"], "b": [True], "d": [pd.Timestamp(0)]})
    assert {name: kind_of(frame[name]) for name in frame} == {
        "f": "float",
        "i": "int",
        "s": "string",
        "b": "bool",
        "d": "other:datetime64[ns]",
    }


def test_type_columns_casts_declared_and_infers_the_rest() -> None:
    raw = pd.DataFrame(
        {
            "amount": ["1.5", "2", None],
            "count": ["3", "4", "5"],
            "flag": ["true", "False", None],
            "code": [1, 2, 3],
            "city": ["x", "y", None],
            "when": pd.to_datetime(["2024-01-01", "2024-01-02", None]),
        }
    )
    typed = type_columns(
        raw, {"amount": "float", "count": "int", "flag": "bool", "code": "string"}, ORIGIN
    )
    assert typed["amount"].tolist()[:2] == [1.5, 2.0] and pd.isna(typed["amount"].iloc[2])
    assert typed["count"].dtype == "int64"
    assert typed["flag"].tolist()[:2] == [True, False]
    assert typed["code"].tolist() == ["1", "2", "3"]
    assert kind_of(typed["city"]) == "string"
    assert typed["when"].iloc[0] == "2024-01-01T00:00:00"


@pytest.mark.parametrize(
    ("frame", "types", "message"),
    [
        (
            pd.DataFrame({"amount": [str(v) for v in range(30)] + ["abc"]}),
            {},
            r"file data.csv, column 'amount': 1 of 31 value\(s\) are not numbers .*'abc' at row 30",
        ),
        (
            pd.DataFrame({"amount": ["1", "x"]}),
            {"amount": "float"},
            r"column 'amount': 1 of 2 value\(s\) are not numbers \(e.g. 'x' at row 1\)",
        ),
        (pd.DataFrame({"n": ["1", "2.5"]}), {"n": "int"}, "column 'n': 1 value.*not whole"),
        (pd.DataFrame({"n": ["1", None]}), {"n": "int"}, "column 'n': 1 missing value"),
        (pd.DataFrame({"b": ["yes"]}), {"b": "bool"}, "column 'b': 1 value.*not booleans"),
        (pd.DataFrame({"a": [1]}), {"zz": "float"}, r"column\(s\) \['zz'\]: declared but not"),
        (pd.DataFrame({"a": [1]}), {"a": "decimal"}, "declared type 'decimal' is not one of"),
    ],
)
def test_unparsable_values_name_origin_column_and_problem(frame, types, message) -> None:
    with pytest.raises(DataValidationError, match=message):
        type_columns(frame, types, ORIGIN)


def test_mostly_text_columns_stay_categorical() -> None:
    frame = pd.DataFrame({"code": ["a", "b", "1", "c"]})
    assert type_columns(frame, {}, ORIGIN)["code"].tolist() == ["a", "b", "1", "c"]


def test_binary_label_text_and_numeric_targets() -> None:
    text = pd.DataFrame({"y": ["yes", "no", " yes"]})
    assert binary_label(text, TargetSpec("y", "yes"), ORIGIN).tolist() == [1, 0, 1]
    numeric = pd.DataFrame({"Class": [0.0, 1.0, 0.0]})
    label = binary_label(numeric, TargetSpec("Class", "1"), ORIGIN)
    assert label.tolist() == [0, 1, 0] and label.dtype == "int64" and label.name == "label"
    categorical = pd.DataFrame({"Class": pd.Categorical(["0", "1"])})
    assert binary_label(categorical, TargetSpec("Class", "1"), ORIGIN).tolist() == [0, 1]


@pytest.mark.parametrize(
    ("values", "positive", "message"),
    [
        (["no", "no"], "yes", r"column 'y': only one class present \{'no': 2\}"),
        (["a", "b", "c"], "a", "column 'y': 3 classes present"),
        (["a", "b"], "yes", "column 'y': positive label 'yes' not among"),
        (["a", None], "a", r"column 'y': 1 row\(s\) have no target value \(first at row 1\)"),
        ([0, 1], "yes", "column 'y': positive label 'yes' is not a number"),
    ],
)
def test_bad_targets_fail_clearly(values, positive, message) -> None:
    with pytest.raises(DataValidationError, match=f"file data.csv, {message}"):
        binary_label(pd.DataFrame({"y": values}), TargetSpec("y", positive), ORIGIN)


def test_missing_target_column() -> None:
    with pytest.raises(DataValidationError, match="column 'y': target column not found"):
        binary_label(pd.DataFrame({"a": [1]}), TargetSpec("y", "1"), ORIGIN)


def test_columns_and_types_check() -> None:
    assert check_columns_and_types(_silver(), {"amount": "float", "kind": "string"}).passed
    missing = check_columns_and_types(_silver().drop(columns=["kind"]), {"kind": "string"})
    assert not missing.passed and "missing ['kind']" in missing.description
    wrong = check_columns_and_types(_silver().astype({"amount": "int64"}), {"amount": "float"})
    assert not wrong.passed and "amount" in wrong.description
    no_label = check_columns_and_types(_silver().drop(columns=["label"]), {})
    assert not no_label.passed and "label" in no_label.description
    odd = _silver().assign(when=pd.Timestamp(0))
    assert not check_columns_and_types(odd, {}).passed


def test_two_classes_check() -> None:
    assert check_two_classes(_silver()).passed
    assert not check_two_classes(_silver(positives=0)).passed
    assert not check_two_classes(_silver().assign(label=[0, 1, 2] * 3 + [0])).passed
    assert not check_two_classes(_silver().drop(columns=["label"])).passed


def test_min_positives_check() -> None:
    assert check_min_positives(_silver(positives=3), 3).passed
    outcome = check_min_positives(_silver(positives=2), 3)
    assert not outcome.passed and outcome.metadata["positives"] == 2


def test_null_rates_check() -> None:
    assert check_null_rates(_silver(), 0.1).passed
    frame = _silver().assign(amount=[None] * 6 + [1.0] * 4)
    outcome = check_null_rates(frame, 0.5)
    assert not outcome.passed and "amount" in outcome.description


def test_row_count_change_check() -> None:
    assert check_row_count_change(100, None, 0.1).passed
    assert check_row_count_change(105, 100, 0.1).passed
    assert not check_row_count_change(50, 100, 0.1).passed
    assert not check_row_count_change(200, 100, 0.5).passed


def test_check_transactions_compares_with_previous_version(tmp_path: Path) -> None:
    engine = DeltaRsEngine(str(tmp_path))
    first = engine.write("transactions", _silver(rows=100, positives=40), mode="overwrite")
    outcomes = check_transactions(engine, first, {"amount": "float"}, CheckThresholds(30))
    assert [outcome.name for outcome in outcomes] == [
        "columns_and_types",
        "two_classes",
        "min_positives",
        "null_rates",
        "row_count_change",
    ]
    assert all(outcome.passed for outcome in outcomes)
    second = engine.write("transactions", _silver(rows=10, positives=1), mode="overwrite")
    verdicts = {
        outcome.name: outcome.passed
        for outcome in check_transactions(engine, second, {}, CheckThresholds(30, 0.5, 0.5))
    }
    assert verdicts == {
        "columns_and_types": True,
        "two_classes": True,
        "min_positives": False,
        "null_rates": True,
        "row_count_change": False,
    }
