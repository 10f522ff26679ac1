from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlops_assets.core.contract import ColumnSpec, InputContract
from mlops_assets.serving.formats import (
    RequestError,
    feedback_items,
    invocation_rows,
    parse_json,
    predict_rows,
    request_id,
)
from mlops_assets.serving.validation import ContractValidator

NUMERIC = InputContract(
    (ColumnSpec("x", "number"), ColumnSpec("n", "integer"), ColumnSpec("r", "number", False))
)
MIXED = InputContract((*NUMERIC.columns, ColumnSpec("s", "string"), ColumnSpec("b", "boolean")))
GOOD = {"x": 1.5, "n": 3, "r": -2.0}


def problem(call) -> RequestError:
    with pytest.raises(RequestError) as caught:
        call()
    return caught.value


def test_numeric_rows_become_a_matrix_in_contract_order() -> None:
    batch = ContractValidator(NUMERIC).validate(
        [{"r": 1.0, "n": 2, "x": None}, {"x": 0.5, "n": 4.0, "r": 7}]
    )
    assert batch.rows == 2 and batch.columns is None
    assert np.array_equal(batch.matrix, [[np.nan, 2, 1.0], [0.5, 4, 7]], equal_nan=True)


def test_mixed_rows_become_columns() -> None:
    batch = ContractValidator(MIXED).validate([{**GOOD, "s": "web", "b": True}])
    assert batch.matrix is None and batch.columns == {
        "x": [1.5],
        "n": [3],
        "r": [-2.0],
        "s": ["web"],
        "b": [True],
    }


@pytest.mark.parametrize(
    ("row", "field", "text"),
    [
        ({"x": 1.0, "n": 1}, "r", "missing column"),
        ({**GOOD, "x": "1.5"}, "x", "expects a number, got string"),
        ({**GOOD, "x": True}, "x", "expects a number, got boolean"),
        ({**GOOD, "x": [1]}, "x", "expects a number, got array"),
        ({**GOOD, "n": 2.5}, "n", "expects an integer, got 2.5"),
        ({**GOOD, "n": 2**70}, "n", "out of the 64-bit range"),
        ({**GOOD, "r": None}, "r", "is null but the column is required"),
        ({**GOOD, "r": math.nan}, "r", "is NaN but the column is required"),
        ({**GOOD, "x": math.inf}, "x", "only finite numbers"),
        ({**GOOD, "x": 10**400}, "x", "out of range"),
        ({**GOOD, "extra": 1}, "extra", "unexpected column"),
    ],
)
def test_each_bad_value_is_named(row: dict, field: str, text: str) -> None:
    error = problem(lambda: ContractValidator(NUMERIC).validate([GOOD, row]))
    assert error.status == 422
    assert (1, field) in {(p.row, p.field) for p in error.problems}
    assert text in error.message and f"row 1, {field!r}" in error.message


def test_mixed_contract_checks_strings_and_booleans() -> None:
    error = problem(lambda: ContractValidator(MIXED).validate([{**GOOD, "s": 3, "b": "yes"}]))
    assert "'s': expects a string, got number" in error.message
    assert "'b': expects true or false, got string" in error.message


def test_unexpected_columns_can_be_ignored_and_limits_apply() -> None:
    batch = ContractValidator(NUMERIC, unexpected="ignore").validate([{**GOOD, "extra": "x"}])
    assert batch.rows == 1
    assert problem(lambda: ContractValidator(NUMERIC).validate([])).status == 422
    too_many = problem(lambda: ContractValidator(NUMERIC, max_rows=2).validate([GOOD] * 3))
    assert too_many.status == 413 and "3 rows exceed the limit of 2" in too_many.message
    assert (
        "expected an object"
        in problem(lambda: ContractValidator(NUMERIC).validate([GOOD, 5])).message
    )


def test_json_parsing_errors_are_400() -> None:
    assert problem(lambda: parse_json(b"")).status == 400
    assert "empty body" in problem(lambda: parse_json(b"  \n")).message
    malformed = problem(lambda: parse_json(b'{"x": 1,'))
    assert malformed.status == 400 and "malformed JSON" in malformed.message
    assert "nested too deeply" in problem(lambda: parse_json(b"[" * 100_000)).message
    assert math.isnan(parse_json(b'{"x": NaN}')["x"])  # clients that write NaN
    assert parse_json(b'{"x": -Infinity}')["x"] == -math.inf


def test_mlflow_formats_all_give_the_same_rows() -> None:
    expected = [GOOD, {"x": 0.0, "n": 1, "r": 2.0}]
    columns = ["x", "n", "r"]
    split = {"columns": columns, "data": [[row[c] for c in columns] for row in expected]}
    columnar = {c: [row[c] for row in expected] for c in columns}
    for payload in (
        {"dataframe_split": split},
        {"dataframe_split": {**split, "index": [0, 1]}},
        {"dataframe_records": expected},
        {"instances": expected},
        {"instances": columnar},
        {"inputs": expected},
        {"inputs": columnar},
        {"inputs": expected, "params": {}},
    ):
        assert invocation_rows(payload) == expected, payload


@pytest.mark.parametrize(
    ("payload", "text"),
    [
        ([1, 2], "expected an object with one of"),
        ({"records": []}, "expected exactly one of"),
        ({"inputs": [], "instances": []}, "expected exactly one of"),
        ({"inputs": [], "params": {"a": 1}}, "takes no params"),
        ({"dataframe_split": {"columns": ["x"], "data": [[1, 2]]}}, "expected an array of 1"),
        ({"dataframe_split": {"columns": ["x", "x"], "data": []}}, "column names repeat"),
        ({"dataframe_split": {"columns": "x", "data": []}}, "array of column names"),
        ({"dataframe_split": {"data": [], "extra": 1}}, "unexpected key"),
        ({"inputs": {"x": [1], "n": [1, 2]}}, "different lengths"),
        ({"inputs": {"x": 1}}, "expected an array of column values"),
        ({"dataframe_records": {"x": 1}}, "expected an array of row objects"),
    ],
)
def test_bad_mlflow_payloads_are_named(payload, text: str) -> None:
    error = problem(lambda: invocation_rows(payload))
    assert error.status == 422 and text in error.message


def test_predict_and_feedback_shapes() -> None:
    assert predict_rows(GOOD) == [GOOD] and predict_rows([GOOD]) == [GOOD]
    assert "expected an array of row objects" in problem(lambda: predict_rows("x")).message
    assert feedback_items({"request_id": "a-1", "label": True}, 10) == [("a-1", 1)]
    for payload, text in [
        ({"request_id": "a"}, "'label': missing"),
        ({"request_id": "a", "label": 2}, "must be 0 or 1"),
        ({"request_id": "a b", "label": 1}, "must be a request id"),
        ({"request_id": 5, "label": 1}, "got number"),
        ({"request_id": "a", "label": 1, "why": "x"}, "unexpected key"),
        ([], "no feedback items"),
    ]:
        assert text in problem(lambda p=payload: feedback_items(p, 10)).message
    assert problem(lambda: feedback_items([{"request_id": "a", "label": 1}] * 3, 2)).status == 413


def test_request_id_header() -> None:
    assert request_id(None, "generated") == "generated"
    assert request_id("client-id_1.2:3", "generated") == "client-id_1.2:3"
    error = problem(lambda: request_id("has space", "g"))
    assert error.status == 400 and error.problems[0].field == "X-Request-ID"


json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(["x", "n", "r", "s", "b", "z"]), children, max_size=6)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(payload=json_values, mlflow=st.booleans())
def test_any_json_is_answered_with_a_batch_or_a_4xx(payload, mlflow: bool) -> None:
    body = json.dumps(payload).encode()
    for contract in (NUMERIC, MIXED):
        try:
            parsed = parse_json(body)
            rows = invocation_rows(parsed) if mlflow else predict_rows(parsed)
            batch = ContractValidator(contract, max_rows=50).validate(rows)
            assert batch.rows == len(rows)
        except RequestError as error:
            assert 400 <= error.status < 500 and error.message
