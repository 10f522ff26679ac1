"""Request bodies: JSON parsing and the shapes ``/predict``, ``/invocations``, ``/feedback`` take.

Every problem raises :class:`RequestError` with the HTTP status to answer and a message naming
the field and what is wrong; nothing here lets another exception escape.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import orjson

MLFLOW_FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,64}")
ROW_ID_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,80}")  # request id, or "<request id>-<row>"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a request.

    Attributes:
        field: The column, key or header concerned (None for the body as a whole).
        problem: What is wrong with it.
        row: Zero-based row index, when the problem is in one row.
    """

    field: str | None
    problem: str
    row: int | None = None

    def describe(self) -> str:
        """Human-readable one-liner, e.g. ``row 2, column 'V3': missing``."""
        where = [f"row {self.row}"] if self.row is not None else []
        where += [f"{self.field!r}"] if self.field is not None else []
        return f"{', '.join(where)}: {self.problem}" if where else self.problem


class RequestError(Exception):
    """A request the server refuses, with the status to answer and the problems found."""

    def __init__(self, status: int, problems: list[Problem], headers: dict | None = None):
        """Build the error from at least one problem."""
        self.status = status
        self.problems = problems
        self.headers = headers or {}
        super().__init__(self.message)

    @property
    def message(self) -> str:
        """All problems on one line (at most 5 spelled out)."""
        text = "; ".join(problem.describe() for problem in self.problems[:5])
        more = len(self.problems) - 5
        return text + (f"; and {more} more problem(s)" if more > 0 else "")

    def body(self) -> bytes:
        """JSON body: ``{"error": message, "problems": [{field, problem, row}, ...]}``."""
        problems = [
            {"field": item.field, "problem": item.problem, "row": item.row}
            for item in self.problems[:50]
        ]
        return orjson.dumps({"error": self.message, "problems": problems})


def refuse(problem: str, field: str | None = None, status: int = 422, row: int | None = None):
    """Build a :class:`RequestError` holding a single problem, ready to raise."""
    return RequestError(status, [Problem(field=field, problem=problem, row=row)])


def json_type(value: Any) -> str:
    """Name the JSON type of a parsed value (for error messages)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def parse_json(body: bytes) -> Any:
    """Parse a request body; ``NaN`` and ``Infinity`` literals are read as floats.

    Raises:
        RequestError: 400 for an empty or malformed body.
    """
    if not body or not body.strip():
        raise refuse("empty body: send JSON", status=400)
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        strict_error = str(error)
    try:  # the standard library reads NaN / Infinity, which some clients send
        return json.loads(body)
    except RecursionError:
        raise refuse("malformed JSON: nested too deeply", status=400) from None
    except (ValueError, TypeError):
        raise refuse(f"malformed JSON: {strict_error}", status=400) from None


def request_id(header: str | None, generated: str) -> str:
    """Return the client's ``X-Request-ID`` when valid, else ``generated``.

    Raises:
        RequestError: 400 when the header is present but malformed.
    """
    if header is None:
        return generated
    if not REQUEST_ID_PATTERN.fullmatch(header):
        raise refuse(
            "must be 1-64 characters from A-Z a-z 0-9 . _ : -", field="X-Request-ID", status=400
        )
    return header


def _records(value: Any, field: str) -> list:
    if isinstance(value, dict):
        return [value]
    if not isinstance(value, list):
        raise refuse(f"expected an array of row objects, got {json_type(value)}", field=field)
    return value


def predict_rows(payload: Any) -> list:
    """``/predict`` body: one row object or an array of row objects -> list of rows."""
    return _records(payload, "body")


def _split(value: Any) -> list[dict]:
    if not isinstance(value, dict):
        raise refuse(f"expected an object, got {json_type(value)}", field="dataframe_split")
    unknown = sorted(set(value) - {"columns", "data", "index"})
    if unknown:
        raise refuse(f"unexpected key(s) {unknown}", field="dataframe_split")
    columns, data = value.get("columns"), value.get("data")
    if not isinstance(columns, list) or not all(isinstance(name, str) for name in columns):
        raise refuse("must be an array of column names", field="dataframe_split.columns")
    if len(set(columns)) != len(columns):
        raise refuse("column names repeat", field="dataframe_split.columns")
    if not isinstance(data, list):
        raise refuse(
            f"expected an array of rows, got {json_type(data)}", field="dataframe_split.data"
        )
    rows = []
    for index, row in enumerate(data):
        if not isinstance(row, list) or len(row) != len(columns):
            raise refuse(
                f"expected an array of {len(columns)} values",
                field="dataframe_split.data",
                row=index,
            )
        rows.append(dict(zip(columns, row, strict=True)))
    return rows


def _columnar(value: dict, field: str) -> list[dict]:
    lengths = {name: len(values) for name, values in value.items() if isinstance(values, list)}
    if len(lengths) != len(value):
        scalar = next(name for name in value if name not in lengths)
        raise refuse(
            f"expected an array of column values, got {json_type(value[scalar])}",
            field=f"{field}.{scalar}",
        )
    if len(set(lengths.values())) > 1:
        raise refuse(f"columns have different lengths {lengths}", field=field)
    size = next(iter(lengths.values()), 0)
    return [{name: value[name][index] for name in value} for index in range(size)]


def invocation_rows(payload: Any) -> list:
    """``/invocations`` body in any MLflow scoring format -> list of row objects.

    Accepted: ``{"dataframe_split": {"columns": [...], "data": [[...]]}}``,
    ``{"dataframe_records": [{...}]}``, ``{"instances": [{...}]}`` and ``{"inputs": ...}``
    (records, or one array per column); an optional empty ``params`` object.
    """
    if not isinstance(payload, dict):
        raise refuse(
            f"expected an object with one of {list(MLFLOW_FORMATS)}, got {json_type(payload)}",
            field="body",
        )
    params = payload.get("params")
    if params not in (None, {}):
        raise refuse("this model takes no params", field="params")
    keys = [key for key in payload if key != "params"]
    unknown = [key for key in keys if key not in MLFLOW_FORMATS]
    if unknown or len(keys) != 1:
        found = unknown or keys
        raise refuse(f"expected exactly one of {list(MLFLOW_FORMATS)}, got {found}", field="body")
    key = keys[0]
    value = payload[key]
    if key == "dataframe_split":
        return _split(value)
    if key == "inputs" and isinstance(value, dict):
        return _columnar(value, key)
    if key == "instances" and isinstance(value, dict):
        return _columnar(value, key)
    if not isinstance(value, list):
        raise refuse(f"expected an array of row objects, got {json_type(value)}", field=key)
    return value


def feedback_items(payload: Any, max_rows: int) -> list[tuple[str, int]]:
    """``/feedback`` body: ``{"request_id": str, "label": 0|1}`` or an array of them.

    Returns:
        (request id, label) pairs.
    """
    items = _records(payload, "body")
    if not items:
        raise refuse("no feedback items", field="body")
    if len(items) > max_rows:
        raise refuse(f"{len(items)} items exceed the limit of {max_rows}", field="body", status=413)
    pairs = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise refuse(f"expected an object, got {json_type(item)}", row=index, field="body")
        unknown = sorted(set(item) - {"request_id", "label"})
        if unknown:
            raise refuse(f"unexpected key(s) {unknown}", row=index, field="body")
        for key in ("request_id", "label"):
            if key not in item:
                raise refuse("missing", field=key, row=index)
        rid, label = item["request_id"], item["label"]
        if not isinstance(rid, str) or not ROW_ID_PATTERN.fullmatch(rid):
            raise refuse(
                f"must be a request id from a prediction (1-80 characters from A-Z a-z 0-9 . _ : -)"
                f", got {json_type(rid)} {str(rid)[:40]!r}",
                field="request_id",
                row=index,
            )
        if type(label) not in (int, bool) or label not in (0, 1):
            raise refuse(f"must be 0 or 1, got {label!r}", field="label", row=index)
        pairs.append((rid, int(label)))
    return pairs
