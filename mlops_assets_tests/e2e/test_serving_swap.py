"""Not-ready start, hot swap under concurrent load, and a failing version, on a real server."""

from __future__ import annotations

import threading
import time

import httpx
import numpy as np
import pandas as pd
import pytest

from mlops_assets.core.model_io import load_bundle_from_uri
from mlops_assets_tests.e2e.serving_process import ADMIN_TOKEN, read_table, start_server
from mlops_assets_tests.serving.fixtures import serving_registry  # noqa: F401

pytestmark = pytest.mark.e2e
ROW = {"V1": 0.9, "V2": 0.4, "V3": -0.2, "Amount": 30.0, "count": 4}
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def wait_for(predicate, timeout_s: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


class Load:
    """Client threads posting one row in a loop, recording every answer."""

    def __init__(self, url: str, threads: int = 4) -> None:
        self.url = url
        self.stop = threading.Event()
        self.answers: list[tuple[int, int | None, float | None, str | None]] = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, args=(n,)) for n in range(threads)]

    def run(self, number: int) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as client:
            index = 0
            while not self.stop.is_set():
                rid = f"load{number}-{index}"
                index += 1
                try:
                    response = client.post("/predict", json=ROW, headers={"X-Request-ID": rid})
                    body = response.json()
                    probability = None
                    if response.status_code == 200:
                        probability = body["predictions"][0]["probability"]
                    answer = (response.status_code, body.get("model_version"), probability, rid)
                except httpx.HTTPError as error:
                    answer = (-1, None, None, repr(error))
                with self.lock:
                    self.answers.append(answer)

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join()

    def latest_versions(self, answers: int = 20) -> set:
        with self.lock:
            return {answer[1] for answer in self.answers[-answers:]}


@pytest.fixture(scope="module")
def server(serving_registry, tmp_path_factory):  # noqa: F811
    server = start_server(
        tmp_path_factory.mktemp("swap-server"),
        serving_registry.tracking_uri,
        "swap_champion",
        wait_path="/health",
    )
    yield server
    assert server.stop() == 0, server.output()


def test_starts_not_ready_and_picks_up_the_alias(server, serving_registry) -> None:  # noqa: F811
    ready = httpx.get(server.url + "/ready")
    assert ready.status_code == 503  # alive before its first registry poll has answered
    first_poll = "the first registry poll has not finished"
    reason = lambda: httpx.get(server.url + "/ready").json().get("reason")  # noqa: E731
    wait_for(lambda: reason() != first_poll, what="the first registry poll")
    ready = httpx.get(server.url + "/ready")
    assert ready.status_code == 503 and "has alias 'swap_champion' yet" in ready.json()["reason"]
    response = httpx.post(server.url + "/predict", json=ROW)
    assert response.status_code == 503 and response.headers["retry-after"] == "1"
    serving_registry.set_alias("swap_champion", 1)
    wait_for(lambda: httpx.get(server.url + "/ready").status_code == 200, what="ready")
    assert httpx.post(server.url + "/predict", json=ROW).json()["model_version"] == 1


def test_hot_swap_under_load_loses_no_request(server, serving_registry) -> None:  # noqa: F811
    client = serving_registry.client()
    bundles = {
        v: load_bundle_from_uri(client.get_model_version_download_uri("fraud_detector", v))
        for v in (1, 2)
    }
    expected = {v: float(b.predict_proba(pd.DataFrame([ROW]))[0]) for v, b in bundles.items()}
    serving_registry.set_alias("swap_champion", 1)
    wait_for(lambda: httpx.get(server.url + "/model").json().get("version") == 1, what="v1")
    with Load(server.url) as load:
        wait_for(lambda: len(load.answers) > 50, what="load")
        serving_registry.set_alias("swap_champion", 2)  # the poller notices the moved alias
        wait_for(lambda: load.latest_versions() == {2}, what="version 2 everywhere")
        serving_registry.set_alias("swap_champion", 1)  # and back, through the admin call
        response = httpx.post(server.url + "/admin/reload", headers=ADMIN, timeout=30)
        assert response.status_code == 200
        mark = len(load.answers)
        wait_for(lambda: len(load.answers) > mark + 50, what="more load")
    statuses = {answer[0] for answer in load.answers}
    assert statuses == {200}, [a for a in load.answers if a[0] != 200][:5]
    assert {answer[1] for answer in load.answers} == {1, 2}
    for _, version, probability, _ in load.answers:  # each answer came from the version it names
        assert np.isclose(probability, expected[version], atol=1e-7)
    ids = {answer[3]: answer[1] for answer in load.answers}

    def logged() -> bool:
        log = read_table(server.lake, "inference_log")
        return len(log) and log["request_id"].isin(ids).sum() == len(ids)

    wait_for(logged, what="log rows")
    log = read_table(server.lake, "inference_log")
    log = log[log["request_id"].isin(ids)]
    assert log["request_id"].is_unique
    pairs = zip(log["request_id"], log["model_version"], strict=True)
    assert all(ids[rid] == version for rid, version in pairs)


def test_failing_version_leaves_the_old_one_serving(server, serving_registry) -> None:  # noqa: F811
    serving_registry.set_alias("swap_champion", 1)
    httpx.post(server.url + "/admin/reload", headers=ADMIN, timeout=30)
    serving_registry.set_alias("swap_champion", 5)  # its stored pipeline is deleted
    # The poller tries it first (the order that used to race); the reload reports that failure.
    wait_for(
        lambda: (
            (httpx.get(server.url + "/model").json().get("last_failure") or {}).get("version") == 5
        ),
        what="the poller's failed load of version 5",
    )
    response = httpx.post(server.url + "/admin/reload", headers=ADMIN, timeout=30)
    assert response.status_code == 409
    body = response.json()
    assert "version 5" in body["error"] and "pipeline.skops" in body["error"]
    assert body["serving"]["version"] == 1
    assert httpx.post(server.url + "/predict", json=ROW).json()["model_version"] == 1
    time.sleep(1.2)  # a few polls: the failed version is not retried, 1 keeps serving
    info = httpx.get(server.url + "/model").json()
    assert info["version"] == 1 and info["last_failure"]["version"] == 5
    metrics = httpx.get(server.url + "/metrics").text
    assert "mlops_serving_model_load_failures_total 1.0" in metrics
    serving_registry.set_alias("swap_champion", 2)
    wait_for(lambda: httpx.get(server.url + "/model").json()["version"] == 2, what="recovery")
