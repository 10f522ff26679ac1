"""Bad input at scale: property-based fuzzing of a real ``mlops serve`` process.

Two generators hit ``/predict``, ``/invocations`` and ``/feedback``: schemathesis (cases built
from the served OpenAPI schema, valid and schema-violating) and hypothesis (raw bodies: rows
with NaN / infinity / huge numbers / strings, nested junk, malformed JSON, random bytes, wrong
content types). Every response must be below 500 and the server must stay healthy. Oversized
bodies and batches must be refused quickly.
"""

from __future__ import annotations

import json
import time
from collections import Counter

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlops_assets_tests.e2e.serving_process import start_server
from mlops_assets_tests.serving.fixtures import serving_registry  # noqa: F401
from mlops_assets_tests.serving.registry import FEATURES

pytestmark = pytest.mark.e2e
ENDPOINTS = ("/predict", "/invocations", "/feedback")
MAX_ROWS = 100
ROW = {"V1": 0.3, "V2": -1.2, "V3": None, "Amount": 12.5, "count": 3}
SCHEMA_EXAMPLES = 150  # per generation mode and endpoint family
RAW_EXAMPLES = 300
VALID_EXAMPLES = 150


@pytest.fixture(scope="module")
def server(serving_registry, tmp_path_factory):  # noqa: F811
    serving_registry.set_alias("fuzz_champion", 1)
    server = start_server(
        tmp_path_factory.mktemp("fuzz-server"),
        serving_registry.tracking_uri,
        "fuzz_champion",
        "--max-rows",
        str(MAX_ROWS),
    )
    yield server
    assert server.stop() == 0, server.output()


# ---- raw-body strategies ---------------------------------------------------------------
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["NaN", "nan", "Infinity", "-inf", "1e999", "", "0x10", "\x00"]),
)
_junk = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_keys = st.one_of(st.sampled_from(FEATURES), st.text(max_size=10))
_rows = st.dictionaries(_keys, _junk, max_size=7)
_near_rows = st.fixed_dictionaries(
    {name: st.one_of(_scalars, st.just(ROW[name])) for name in FEATURES}
)
_finite = st.floats(min_value=-1e300, max_value=1e300)
_valid_rows = st.fixed_dictionaries(
    {
        "V1": _finite,
        "V2": _finite,
        "V3": st.one_of(st.none(), _finite),
        "Amount": _finite,
        "count": st.integers(min_value=-(2**53), max_value=2**53),
    }
)
_payloads = st.one_of(
    _valid_rows,
    st.lists(_valid_rows, min_size=1, max_size=MAX_ROWS + 5),
    _rows,
    _near_rows,
    st.lists(st.one_of(_near_rows, _rows), max_size=5),
    st.fixed_dictionaries({"dataframe_records": st.lists(_near_rows, max_size=3)}),
    st.fixed_dictionaries({"dataframe_split": st.dictionaries(st.text(max_size=8), _junk)}),
    st.fixed_dictionaries({"instances": _junk, "inputs": _junk}),
    st.fixed_dictionaries({"request_id": _junk, "label": _junk}),
    _junk,
)


def _encode(payload) -> bytes:
    # allow_nan emits NaN / Infinity tokens: the JSON extensions a client may send
    return json.dumps(payload, allow_nan=True).encode()


_bodies = st.one_of(
    _payloads.map(_encode),
    _payloads.map(_encode).map(lambda body: body[: max(0, len(body) - 2)]),  # truncated
    st.sampled_from(
        [b'{"V1": 1e999999}', b'{"V1": -1e-999999}', b"[" * 5000, b'{"a":' * 3000, b"\xff\xfe"]
    ),
    st.integers(min_value=10**100, max_value=10**400).map(
        lambda big: b'{"V1":%d,"V2":1,"V3":1,"Amount":1,"count":%d}' % (big, big)
    ),
    st.binary(max_size=200),
)
_content_types = st.sampled_from(
    [
        "application/json",
        "application/json; charset=utf-8",
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/octet-stream",
        "multipart/form-data; boundary=x",
        "",
    ]
)


def _record(tally: Counter, failures: list, label: str, response: httpx.Response) -> None:
    tally[response.status_code] += 1
    if response.status_code >= 500:
        failures.append((label, response.status_code, response.text[:300]))


def test_fuzzed_requests_never_get_a_server_error(server) -> None:
    tally: Counter = Counter()
    failures: list = []
    schema = schemathesis.openapi.from_url(server.url + "/openapi.json")
    scoring = schema.include(path_regex="^/(predict|invocations|feedback)$")

    def fuzz(examples: int) -> settings:
        return settings(
            max_examples=examples,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )

    started = time.monotonic()

    with httpx.Client(base_url=server.url, timeout=10) as client:
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):

            @fuzz(SCHEMA_EXAMPLES * 3)
            @given(case=scoring.as_strategy(mode))
            def from_schema(case) -> None:
                response = client.request(**case.as_transport_kwargs(base_url=server.url))
                _record(tally, failures, f"{case.method} {case.path} {case.body!r}", response)

            from_schema()

        @fuzz(RAW_EXAMPLES)
        @given(path=st.sampled_from(ENDPOINTS), body=_bodies, content_type=_content_types)
        def raw(path: str, body: bytes, content_type: str) -> None:
            headers = {"content-type": content_type} if content_type else {}
            response = client.post(path, content=body, headers=headers)
            _record(tally, failures, f"POST {path} {content_type} {body[:200]!r}", response)

        raw()

        @fuzz(VALID_EXAMPLES)
        @given(rows=st.lists(_valid_rows, min_size=1, max_size=MAX_ROWS), mlflow=st.booleans())
        def valid(rows: list, mlflow: bool) -> None:
            # well-formed rows with extreme finite values must reach the model and be scored
            if mlflow:
                response = client.post("/invocations", json={"dataframe_records": rows})
            else:
                response = client.post("/predict", json=rows)
            _record(tally, failures, f"valid rows {rows[:2]!r}", response)
            assert response.status_code == 200, response.text
            assert len(response.json()["predictions"]) == len(rows)

        valid()
        health = client.get("/health")
        ready = client.get("/ready")

    sent = sum(tally.values())
    elapsed = time.monotonic() - started
    histogram = dict(sorted(tally.items()))
    print(f"fuzz: {sent} requests in {elapsed:.1f} s, status histogram {histogram}")
    assert not failures, failures[:5]
    assert sent >= 1000, histogram
    assert health.status_code == 200 and ready.status_code == 200, server.output()[-2000:]
    assert server.process.poll() is None


@pytest.mark.parametrize("path", ENDPOINTS)
def test_oversized_body_is_refused_quickly(server, path: str) -> None:
    body = b"[" + b" " * (5 << 20) + b"]"  # 5 MB against the default 1 MiB limit
    started = time.monotonic()
    response = httpx.post(
        server.url + path, content=body, headers={"content-type": "application/json"}, timeout=10
    )
    elapsed = time.monotonic() - started
    print(f"{path}: 5 MB body answered {response.status_code} in {elapsed * 1000:.0f} ms")
    assert response.status_code == 413 and "exceed the limit" in response.json()["error"]
    assert elapsed < 1.0


def test_oversized_batch_is_refused_quickly(server) -> None:
    for rows in (MAX_ROWS + 1, 10_000):
        started = time.monotonic()
        response = httpx.post(server.url + "/predict", json=[ROW] * rows, timeout=10)
        elapsed = time.monotonic() - started
        print(f"batch of {rows} rows answered {response.status_code} in {elapsed * 1000:.0f} ms")
        assert response.status_code == 413, response.text
        assert f"{rows} rows exceed the limit of {MAX_ROWS}" in response.json()["error"]
        assert elapsed < 1.0
    assert httpx.post(server.url + "/predict", json=[ROW] * MAX_ROWS).status_code == 200
