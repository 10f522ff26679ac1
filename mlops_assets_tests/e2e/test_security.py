"""Security properties of a real ``mlops serve`` process.

Admin needs the token; the socket is bound to loopback; only the configured registered model is
served; request bodies are never unpickled; the admin token never reaches logs, responses,
MLflow or the Delta tables.
"""

from __future__ import annotations

import pickle
import re
import time
from pathlib import Path

import httpx
import pytest

import mlops_assets
from mlops_assets_tests.e2e.serving_process import ADMIN_TOKEN, read_table, start_server
from mlops_assets_tests.serving.fixtures import serving_registry  # noqa: F401
from mlops_assets_tests.serving.registry import TestRegistry, xgb_bundle

pytestmark = pytest.mark.e2e
ROW = {"V1": 0.3, "V2": -1.2, "V3": None, "Amount": 12.5, "count": 3}
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
# A reload loads and warms a model: seconds on a loaded machine, past httpx's 5 s default.
RELOAD_TIMEOUT_S = 60
INTRUDER = "intruder_model"


@pytest.fixture(scope="module")
def server(serving_registry, tmp_path_factory):  # noqa: F811
    serving_registry.set_alias("sec_champion", 1)
    server = start_server(
        tmp_path_factory.mktemp("sec-server"), serving_registry.tracking_uri, "sec_champion"
    )
    yield server
    assert server.stop() == 0, server.output()
    assert ADMIN_TOKEN not in server.output()  # not even in the shutdown lines


def test_admin_endpoints_need_the_token(server) -> None:
    url = server.url + "/admin/reload"
    refused = [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer wrong-token-0123456789"},
        {"Authorization": f"Bearer {ADMIN_TOKEN}x"},
        {"Authorization": f"Bearer {ADMIN_TOKEN[:-1]}"},
        {"Authorization": f"Basic {ADMIN_TOKEN}"},
        {"X-Admin-Token": "wrong-token-0123456789"},
    ]
    for headers in refused:
        response = httpx.post(url, headers=headers)
        assert response.status_code in (401, 403), (headers, response.text)
        assert "token" in response.json()["error"]
        assert response.headers.get("www-authenticate") == "Bearer"
    assert httpx.post(url, headers=AUTH, timeout=RELOAD_TIMEOUT_S).status_code == 200
    assert (
        httpx.post(
            url, headers={"X-Admin-Token": ADMIN_TOKEN}, timeout=RELOAD_TIMEOUT_S
        ).status_code
        == 200
    )


def _listening(port: int) -> list[tuple[str, str]]:
    """(table, hex local address) of every LISTEN socket on ``port`` (IPv4 and IPv6)."""
    found = []
    for table in ("tcp", "tcp6"):
        path = Path("/proc/net") / table
        if not path.is_file():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            address, hex_port = fields[1].rsplit(":", 1)
            if int(hex_port, 16) == port and fields[3] == "0A":  # 0A: TCP_LISTEN
                found.append((table, address))
    return found


@pytest.mark.skipif(not Path("/proc/net/tcp").is_file(), reason="needs Linux /proc/net/tcp")
def test_binds_to_loopback_by_default(server) -> None:
    assert "--host" not in server.args
    assert _listening(server.port) == [("tcp", "0100007F")]  # 127.0.0.1, little-endian hex


def test_serves_only_the_configured_registered_model(serving_registry, tmp_path) -> None:  # noqa: F811
    intruder = TestRegistry.create(serving_registry.folder, model_name=INTRUDER)
    version = intruder.register(xgb_bundle(seed=4))
    alias = f"sec_only_{time.monotonic_ns()}"
    intruder.set_alias(alias, version)  # another model holds the alias; ours does not
    server = start_server(
        tmp_path / "srv", serving_registry.tracking_uri, alias, wait_path="/health"
    )
    try:
        time.sleep(1.5)  # a few registry polls
        ready = httpx.get(server.url + "/ready")
        assert ready.status_code == 503, ready.text
        reason = ready.json()["reason"]
        assert "fraud_detector" in reason and alias in reason and INTRUDER not in reason
        httpx.post(server.url + "/admin/reload", headers=AUTH, timeout=RELOAD_TIMEOUT_S)
        info = httpx.get(server.url + "/model").json()
        assert info["name"] == "fraud_detector" and info["version"] is None
        assert httpx.post(server.url + "/predict", json=ROW).status_code == 503
        serving_registry.set_alias(alias, 3)  # now the configured model has it too
        assert (
            httpx.post(
                server.url + "/admin/reload", headers=AUTH, timeout=RELOAD_TIMEOUT_S
            ).status_code
            == 200
        )
        info = httpx.get(server.url + "/model").json()
        assert info["name"] == "fraud_detector" and info["version"] == 3
        assert httpx.post(server.url + "/predict", json=ROW).json()["model_version"] == 3
    finally:
        assert server.stop() == 0, server.output()


UNSAFE_LOADERS = re.compile(
    r"\bpickle\b|cloudpickle|\bdill\b|joblib\.load|read_pickle|allow_pickle\s*=\s*True|torch\.load"
    r"|marshal\.loads|shelve|yaml\.load\("
)


def test_no_request_data_is_unpickled(server) -> None:
    package = Path(mlops_assets.__file__).parent / "serving"
    core = package.parent / "core"
    sources = [*package.glob("*.py"), core / "model_io.py", core / "contract.py"]
    hits = [
        f"{path.name}:{number}: {line.strip()}"
        for path in sources
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if UNSAFE_LOADERS.search(line) and not line.lstrip().startswith(("#", '"""'))
    ]
    assert not hits, hits
    payload = pickle.dumps(ROW)
    for path in ("/predict", "/invocations", "/feedback"):
        for content_type in (
            "application/json",
            "application/python-pickle",
            "application/octet-stream",
        ):
            response = httpx.post(
                server.url + path, content=payload, headers={"content-type": content_type}
            )
            assert 400 <= response.status_code < 500, (path, content_type, response.text)
            assert "error" in response.json()
    assert httpx.get(server.url + "/health").status_code == 200


def _mlflow_strings(tracking_uri: str) -> list[str]:
    """Every tag, param and metric name the registry holds, as text."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    texts = []
    experiments = client.search_experiments()
    for experiment in experiments:
        texts.append(repr(experiment.tags))
    runs = client.search_runs([e.experiment_id for e in experiments], max_results=1000)
    for run in runs:
        texts += [repr(run.data.params), repr(run.data.tags), repr(run.data.metrics)]
    for model in client.search_registered_models():
        texts.append(repr(model.tags) + repr(model.aliases) + repr(model.description))
        for version in client.search_model_versions(f"name='{model.name}'"):
            texts.append(repr(version.tags) + repr(version.description))
    assert runs and texts
    return texts


def test_the_admin_token_never_leaks(server, serving_registry) -> None:  # noqa: F811
    rid = "leak-check-1"
    assert httpx.post(server.url + "/predict", json=ROW, headers={"X-Request-ID": rid}).is_success
    feedback = httpx.post(server.url + "/feedback", json={"request_id": rid, "label": 1})
    assert feedback.is_success
    httpx.post(
        server.url + "/admin/reload", headers={"Authorization": "Bearer bad-token-1234567890"}
    )
    httpx.post(server.url + "/admin/reload", headers=AUTH, timeout=RELOAD_TIMEOUT_S)
    httpx.post(server.url + "/admin/reload?force=true", headers=AUTH, timeout=RELOAD_TIMEOUT_S)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        log, labels = read_table(server.lake, "inference_log"), read_table(server.lake, "feedback")
        if len(log) and rid in set(log["request_id"]) and len(labels):
            break
        time.sleep(0.2)
    assert rid in set(log["request_id"]) and rid in set(labels["request_id"])
    token = ADMIN_TOKEN.encode()
    assert ADMIN_TOKEN not in server.output()
    for path in ("/model", "/metrics", "/openapi.json", "/ready"):
        assert token not in httpx.get(server.url + path).content, path
    assert ADMIN_TOKEN not in log.to_csv() + labels.to_csv()
    files = [p for p in server.folder.rglob("*") if p.is_file()]
    assert any("_delta_log" in p.parts for p in files)
    leaked = [str(p) for p in files if token in p.read_bytes()]
    assert not leaked, leaked
    assert not any(ADMIN_TOKEN in text for text in _mlflow_strings(serving_registry.tracking_uri))
    registry_files = [p for p in serving_registry.folder.rglob("*") if p.is_file()]
    assert not [str(p) for p in registry_files if token in p.read_bytes()]
