"""Faults during deployment, against a real ``mlops serve`` process serving version 1.

* The tracking server is unreachable (nothing listens on its port, it accepts and never
  answers, or its health is fine but every store call answers 503): ``model_deployment``
  fails fast with a message naming the tracking URI, and the old version keeps serving.
* A registry version whose artifact directory is gone: the server refuses it, the deployment
  rolls the champion alias back, and the old version keeps serving.
"""

from __future__ import annotations

import http.server
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

import dagster as dg
import httpx
import pytest

from mlops_assets.constants import DATA_GROUP, DEPLOYMENTS_TABLE, SPLITS_TABLE
from mlops_assets.core.champion import ChampionOutcome
from mlops_assets.core.history import read_history
from mlops_assets.core.tables import TableRef
from mlops_assets.defs.deployment import DeploymentConfig, model_deployment
from mlops_assets.resources import Lakehouse, MlflowRegistry, ServingEndpoint
from mlops_assets_tests.core.promotion_fixtures import registry_uri, splits_frame
from mlops_assets_tests.e2e.serving_process import ADMIN_TOKEN, free_port, start_server
from mlops_assets_tests.serving.registry import TestRegistry, xgb_bundle

pytestmark = pytest.mark.e2e
MODEL = "fault_model"
ROW = {"V1": -0.4, "V2": 1.1, "V3": 0.0, "Amount": 8.0, "count": 1}


@dg.asset(name="training_splits", group_name=DATA_GROUP)
def splits(lakehouse: Lakehouse) -> TableRef:
    return lakehouse.tables().write(SPLITS_TABLE, splits_frame(), mode="overwrite")


@dg.asset(name="champion_model")
def champion() -> ChampionOutcome:
    return ChampionOutcome(MODEL, 0, None, None, True, None, None)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    folder = tmp_path_factory.mktemp("deploy-faults")
    registry = TestRegistry.create(folder / "mlflow", model_name=MODEL)
    with registry_uri(registry.tracking_uri):
        versions = [registry.register(xgb_bundle(seed=seed, trees=20)) for seed in (0, 3)]
    registry.set_alias("champion", versions[0])
    server = start_server(
        folder / "server", registry.tracking_uri, "champion", "--model-name", MODEL
    )
    yield registry, versions, server, folder
    assert server.stop() == 0, server.output()


def deploy(world, tracking_uri: str):
    registry, _, server, folder = world
    resources = {
        "lakehouse": Lakehouse(root=str(folder / "lake")),
        "mlflow": MlflowRegistry(tracking_uri=tracking_uri, model_name=MODEL),
        "serving": ServingEndpoint(url=server.url, admin_token=ADMIN_TOKEN, timeout_s=30),
    }
    config = {"model_deployment": DeploymentConfig(wait_timeout_s=30)}
    started = time.monotonic()
    result = dg.materialize(
        [splits, champion, model_deployment],
        resources=resources,
        run_config=dg.RunConfig(config),
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    return result, time.monotonic() - started


def failure_of(result) -> str:
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    return str(failure.event_specific_data.error)


def model_info(server) -> dict:
    return httpx.get(server.url + "/model", timeout=10).json()


def predicted_version(server) -> int:
    response = httpx.post(server.url + "/predict", json=ROW, timeout=10)
    assert response.status_code == 200, response.text
    return int(response.json()["model_version"])


class BrokenBackend(http.server.BaseHTTPRequestHandler):
    """A tracking server whose ``/health`` is fine but whose store answers 503 to every call."""

    def answer(self) -> None:
        healthy = self.path == "/health"
        body = b"OK" if healthy else b'{"error_code": "TEMPORARILY_UNAVAILABLE"}'
        self.send_response(200 if healthy else 503)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PATCH = do_DELETE = answer

    def log_message(self, *args) -> None:
        """Quiet."""


@contextmanager
def dead_tracking_server(kind: str) -> Iterator[str]:
    """The URI of a tracking server that refuses, hangs, or answers 503 behind a good health."""
    if kind == "refused":  # nothing listens there
        yield f"http://127.0.0.1:{free_port()}"
    elif kind == "hung":  # accepts connections (kernel backlog), never answers
        with socket.socket() as blackhole:
            blackhole.bind(("127.0.0.1", 0))
            blackhole.listen(16)
            yield f"http://127.0.0.1:{blackhole.getsockname()[1]}"
    else:
        broken = http.server.ThreadingHTTPServer(("127.0.0.1", 0), BrokenBackend)
        thread = threading.Thread(target=broken.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{broken.server_address[1]}"
        finally:
            broken.shutdown()
            broken.server_close()


@pytest.mark.parametrize("kind", ["refused", "hung", "backend_503"])
def test_tracking_server_unreachable_fails_fast_and_old_version_serves(
    world, kind, monkeypatch
) -> None:
    registry, [v1, _], server, _ = world
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "3")
    assert model_info(server)["version"] == v1
    with dead_tracking_server(kind) as dead_uri:
        result, seconds = deploy(world, dead_uri)
    reason = failure_of(result)
    print(f"injected: tracking server {dead_uri} {kind}; deployment failed after {seconds:.1f} s")
    named = [line for line in reason.splitlines() if dead_uri in line]
    print(f"checked: reason {named[:1]}; server still serves v{v1}")
    assert not result.success
    assert dead_uri in reason and "unreachable" in reason
    assert seconds < 30
    assert model_info(server)["version"] == v1 and predicted_version(server) == v1
    alias = registry.client().get_model_version_by_alias(MODEL, "champion")
    assert int(alias.version) == v1


def test_version_with_missing_artifacts_is_refused_and_rolled_back(world) -> None:
    registry, [v1, v2], server, folder = world
    client = registry.client()
    download = client.get_model_version_download_uri(MODEL, str(v2))
    artifacts = Path(urlparse(download).path if download.startswith("file:") else download)
    assert artifacts.is_dir()
    shutil.rmtree(artifacts)  # the version stays registered; its files are gone
    registry.set_alias("champion", v2)  # as a promotion would
    deadline = time.monotonic() + 30  # the server's registry poll sees it and refuses it
    while (model_info(server).get("last_failure") or {}).get("version") != v2:
        assert time.monotonic() < deadline, server.output()[-3000:]
        time.sleep(0.2)
    assert model_info(server)["version"] == v1 and predicted_version(server) == v1

    result, seconds = deploy(world, registry.tracking_uri)

    reason = failure_of(result)
    print(f"injected: deleted {artifacts} of version {v2}, champion alias moved to it")
    [line] = [text for text in reason.splitlines() if "could not load" in text][:1]
    print(f"checked: deployment failed after {seconds:.1f} s: {line[:200]!r}")
    assert not result.success
    assert f"could not load version {v2}" in reason
    assert f"rolled back to version {v1}, which serves" in reason
    assert model_info(server)["version"] == v1 and predicted_version(server) == v1
    assert int(client.get_model_version_by_alias(MODEL, "champion").version) == v1
    row = read_history(Lakehouse(root=str(folder / "lake")).tables(), DEPLOYMENTS_TABLE).iloc[-1]
    assert (row["status"], row["version"], row["serving_version"]) == ("rolled_back", v2, v1)
