"""Every endpoint and every bad-input class, against a real ``mlops serve`` process."""

from __future__ import annotations

import math
import time
from itertools import count

import httpx
import numpy as np
import pandas as pd
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from mlops_assets.core.model_io import load_bundle_from_uri
from mlops_assets.resources import ServingEndpoint
from mlops_assets.serving.client import ServingClient, ServingError
from mlops_assets.serving.model_holder import canary_share
from mlops_assets_tests.e2e.serving_process import ADMIN_TOKEN, read_table, start_server
from mlops_assets_tests.serving.fixtures import LINEAGE_TAGS, serving_registry  # noqa: F401
from mlops_assets_tests.serving.registry import feature_frame

pytestmark = pytest.mark.e2e
FRACTION = 0.25
ROW = {"V1": 0.3, "V2": -1.2, "V3": None, "Amount": 12.5, "count": 3}
_ids = count()


def routed(primary: bool = True) -> str:
    """A request id that the canary split sends to the primary (or the canary) version."""
    while True:
        rid = f"id-{next(_ids)}"
        if (canary_share(rid) >= FRACTION) == primary:
            return rid


@pytest.fixture(scope="module")
def server(serving_registry, tmp_path_factory):  # noqa: F811
    serving_registry.set_alias("api_champion", 1)
    serving_registry.set_alias("api_canary", 2)
    server = start_server(
        tmp_path_factory.mktemp("api-server"),
        serving_registry.tracking_uri,
        "api_champion",
        "--canary-alias",
        "api_canary",
        "--canary-fraction",
        str(FRACTION),
        "--max-rows",
        "50",
        "--max-body-bytes",
        "20000",
    )
    yield server
    assert server.stop() == 0, server.output()


@pytest.fixture(scope="module")
def bundles(serving_registry):  # noqa: F811
    client = serving_registry.client()
    return {
        version: load_bundle_from_uri(
            client.get_model_version_download_uri(serving_registry.model_name, version)
        )
        for version in (1, 2)
    }


def post(server, path: str, payload=None, content: bytes | None = None, **headers):
    headers.setdefault("content-type", "application/json")
    if content is None:
        return httpx.post(server.url + path, json=payload, headers=headers, timeout=10)
    return httpx.post(server.url + path, content=content, headers=headers, timeout=10)


def test_health_ready_model_docs(server) -> None:
    assert httpx.get(server.url + "/health").json() == {"status": "alive"}
    assert httpx.get(server.url + "/ready").json() == {"ready": True, "version": 1}
    info = httpx.get(server.url + "/model").json()
    assert info["version"] == 1 and info["alias"] == "api_champion"
    assert info["tags"] == LINEAGE_TAGS and info["loaded_at"]
    assert info["primary"]["scoring_path"] == "numpy"
    assert info["canary"]["version"] == 2 and info["canary_fraction"] == FRACTION
    assert info["log"]["saturated"] is False
    assert "swagger" in httpx.get(server.url + "/docs").text.lower()
    paths = httpx.get(server.url + "/openapi.json").json()["paths"]
    assert {"/predict", "/invocations", "/feedback", "/admin/reload"} <= set(paths)


def test_predict_answers_each_row_with_id_label_probability_version(server, bundles) -> None:
    frame, _ = feature_frame(rows=7, seed=11)
    rows = frame.astype(object).where(frame.notna(), None).to_dict("records")
    rid = routed()
    response = post(server, "/predict", rows, **{"X-Request-ID": rid})
    assert response.status_code == 200
    assert response.headers["x-request-id"] == rid and response.headers["x-model-version"] == "1"
    body = response.json()
    assert body["request_id"] == rid and body["model_version"] == 1
    predictions = body["predictions"]
    assert [p["request_id"] for p in predictions] == [f"{rid}-{i}" for i in range(7)]
    expected = bundles[1].predict_proba(frame)
    assert np.allclose([p["probability"] for p in predictions], expected, atol=1e-7)
    assert [p["label"] for p in predictions] == bundles[1].labels(expected).tolist()
    single = post(server, "/predict", ROW).json()
    assert len(single["predictions"]) == 1
    assert single["predictions"][0]["request_id"] == single["request_id"]


def test_invocations_accepts_every_mlflow_format(server, bundles) -> None:
    frame, _ = feature_frame(rows=3, seed=12)
    records = frame.astype(object).where(frame.notna(), None).to_dict("records")
    columns = list(frame.columns)
    split = {"columns": columns, "data": [[row[c] for c in columns] for row in records]}
    expected = bundles[1].predict_proba(frame)
    rid = routed()
    for payload in (
        {"dataframe_split": split},
        {"dataframe_records": records},
        {"instances": records},
        {"inputs": {c: [row[c] for row in records] for c in columns}},
    ):
        response = post(server, "/invocations", payload, **{"X-Request-ID": rid})
        assert response.status_code == 200, response.text
        predictions = response.json()["predictions"]
        assert list(predictions[0]) == ["label", "probability"]  # as mlflow's pyfunc output
        assert np.allclose([p["probability"] for p in predictions], expected, atol=1e-7)


BAD_INPUTS = [
    # (name, body bytes or payload, extra headers, status, words in the message)
    ("missing column", {"V1": 1, "V2": 1, "V3": 1, "count": 1}, {}, 422, ["'Amount'", "missing"]),
    ("wrong type", {**ROW, "V1": "high"}, {}, 422, ["'V1'", "expects a number, got string"]),
    ("unexpected column", {**ROW, "colour": "red"}, {}, 422, ["'colour'", "unexpected column"]),
    ("empty body", b"", {}, 400, ["empty body"]),
    ("malformed JSON", b'{"V1": 1,', {}, 400, ["malformed JSON"]),
    ("null where required", {**ROW, "Amount": None}, {}, 422, ["'Amount'", "null"]),
    ("NaN where required", b'{"V1":1,"V2":1,"V3":1,"Amount":NaN,"count":1}', {}, 422, ["NaN"]),
    ("infinity", b'{"V1":Infinity,"V2":1,"V3":1,"Amount":1,"count":1}', {}, 422, ["finite"]),
    ("non-integer", {**ROW, "count": 2.5}, {}, 422, ["'count'", "integer"]),
    ("too many rows", [ROW] * 51, {}, 413, ["51 rows exceed the limit of 50"]),
    ("too large body", b"[" + b" " * 30000 + b"]", {}, 413, ["exceed the limit of 20000"]),
    ("not an object", [ROW, 7], {}, 422, ["row 1", "expected an object"]),
    ("no rows", [], {}, 422, ["no rows"]),
    ("bad request id", ROW, {"X-Request-ID": "no spaces allowed"}, 400, ["X-Request-ID"]),
    ("wrong content type", b"V1=1", {"content-type": "text/plain"}, 415, ["Content-Type"]),
]


@pytest.mark.parametrize(
    ("name", "body", "headers", "status", "words"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS]
)
def test_every_bad_input_is_a_4xx_naming_the_problem(server, name, body, headers, status, words):
    headers = {"X-Request-ID": routed(), **headers}
    if isinstance(body, bytes):
        response = post(server, "/predict", content=body, **headers)
    else:
        response = post(server, "/predict", body, **headers)
    assert response.status_code == status, (name, response.text)
    message = response.json()["error"]
    assert all(word in message for word in words), (name, message)
    assert httpx.get(server.url + "/health").status_code == 200


def test_chunked_body_over_the_limit_is_refused(server) -> None:
    def chunks():
        for _ in range(30):
            yield b" " * 1000

    response = httpx.post(
        server.url + "/predict", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413 and "more than the limit" in response.json()["error"]


def test_bad_mlflow_payload_and_bad_feedback(server) -> None:
    response = post(server, "/invocations", {"records": [ROW]})
    assert response.status_code == 422 and "expected exactly one of" in response.json()["error"]
    response = post(server, "/feedback", {"request_id": "x", "label": 3})
    assert response.status_code == 422 and "'label'" in response.json()["error"]


def test_predictions_and_feedback_reach_delta_joinable_on_request_id(server) -> None:
    rid = routed()
    post(server, "/predict", [ROW, {**ROW, "V1": 2.0}], **{"X-Request-ID": rid})
    assert post(server, "/feedback", [{"request_id": f"{rid}-1", "label": 1}]).json() == {
        "accepted": 1
    }
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        log = read_table(server.lake, "inference_log")
        feedback = read_table(server.lake, "feedback")
        if len(log) and (log["batch_id"] == rid).sum() == 2 and len(feedback):
            break
        time.sleep(0.2)
    mine = log[log["batch_id"] == rid].sort_values("request_id")
    assert mine["request_id"].tolist() == [f"{rid}-0", f"{rid}-1"]
    assert mine["V1"].tolist() == [0.3, 2.0] and mine["V3"].isna().all()
    assert (mine["model_version"] == 1).all() and (mine["model_name"] == "fraud_detector").all()
    assert mine["probability"].between(0, 1).all() and (mine["latency_ms"] > 0).all()
    joined = mine.merge(feedback, on="request_id", suffixes=("", "_true"))
    assert joined["request_id"].tolist() == [f"{rid}-1"] and joined["label_true"].tolist() == [1]


def test_canary_split_is_deterministic_and_logged(server) -> None:
    ids = [f"canary-{index}" for index in range(300)]
    versions = {}
    for rid in ids:
        response = post(server, "/predict", ROW, **{"X-Request-ID": rid})
        assert response.status_code == 200
        versions[rid] = response.json()["model_version"]
    share = sum(v == 2 for v in versions.values()) / len(ids)
    assert abs(share - FRACTION) < 0.08, share
    assert all((canary_share(rid) < FRACTION) == (v == 2) for rid, v in versions.items())
    again = post(server, "/predict", ROW, **{"X-Request-ID": ids[0]}).json()["model_version"]
    assert again == versions[ids[0]]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        log = read_table(server.lake, "inference_log")
        logged = log[log["request_id"].isin(ids)] if len(log) else log
        if len(logged) >= len(ids) + 1:
            break
        time.sleep(0.2)
    pairs = logged.groupby("request_id")["model_version"].agg(set).to_dict()
    assert all(pairs[rid] == {versions[rid]} for rid in ids)
    assert set(logged.loc[logged["model_version"] == 2, "model_alias"]) == {"api_canary"}


def test_metrics_expose_counts_latency_classes_version_queue(server) -> None:
    post(server, "/predict", ROW)
    post(server, "/predict", {"bad": 1})
    text = httpx.get(server.url + "/metrics").text
    for needle in (
        'mlops_serving_requests_total{endpoint="/predict",status="200"}',
        'mlops_serving_requests_total{endpoint="/predict",status="422"}',
        'mlops_serving_request_seconds_bucket{endpoint="/predict",le="0.005"}',
        'mlops_serving_predictions_total{label="0",version="1"}',
        'mlops_serving_model_version{role="primary"} 1.0',
        'mlops_serving_model_version{role="canary"} 2.0',
        "mlops_serving_log_queue_depth",
        "mlops_serving_log_fsyncs_total",
    ):
        assert needle in text, needle


def test_admin_reload_needs_the_token(server) -> None:
    url = server.url + "/admin/reload"
    assert httpx.post(url).status_code == 401
    wrong = {"Authorization": "Bearer wrong-token-xxxxxxxx"}
    assert httpx.post(url, headers=wrong).status_code == 401
    response = httpx.post(url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert response.status_code == 200 and response.json()["reloaded"] is False
    assert ADMIN_TOKEN not in server.output()  # the token is never logged


def test_python_client(server) -> None:
    client = ServingClient(server.url, admin_token=ADMIN_TOKEN)
    assert client.ready() and client.model_info()["version"] == 1
    predictions = client.predict([ROW, ROW])
    assert len(predictions) == 2 and {p.model_version for p in predictions} <= {1, 2}
    assert math.isclose(predictions[0].probability, predictions[1].probability)
    result = client.reload()
    assert not result.reloaded and result.error is None and result.version == 1
    with pytest.raises(ServingError, match="422"):
        client.predict({"V1": 1})
    assert pd.notna(predictions[0].probability)


def test_serving_endpoint_resource(server) -> None:
    resource = ServingEndpoint(url=server.url, admin_token=ADMIN_TOKEN)
    assert resource.model_info()["alias"] == "api_champion"
    assert resource.reload().version == 1
    [prediction] = resource.predict(ROW)
    assert prediction.model_version in (1, 2) and 0 <= prediction.probability <= 1
    with pytest.raises(ServingError, match="no admin token"):
        ServingEndpoint(url=server.url).reload()


def test_fuzzed_requests_never_get_a_server_error(server) -> None:
    """Schemathesis generates requests for every operation of the OpenAPI schema."""
    schema = schemathesis.openapi.from_url(server.url + "/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {operation.path for operation in operations} >= {"/predict", "/invocations"}
    statuses: list[int] = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=25,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def no_server_error(case) -> None:
            response = case.call(base_url=server.url, timeout=10)
            statuses.append(response.status_code)
            assert response.status_code < 500, (case.method, case.path, case.body, response.text)

        no_server_error()
    assert len(statuses) >= 40 and {422} <= set(statuses)
