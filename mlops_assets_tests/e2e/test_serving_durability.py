"""The inference log holds exactly the acknowledged requests: kill -9, drain, backpressure."""

from __future__ import annotations

import os
import signal
import threading
import time

import httpx
import pytest

from mlops_assets_tests.e2e.serving_process import read_table, start_server
from mlops_assets_tests.serving.fixtures import serving_registry  # noqa: F401

pytestmark = pytest.mark.e2e
ROW = {"V1": -0.4, "V2": 1.1, "V3": 0.0, "Amount": 8.0, "count": 1}


class Traffic:
    """Threads sending unique request ids; records what was sent and what was acknowledged."""

    def __init__(self, url: str, threads: int = 4, prefix: str = "t") -> None:
        self.url, self.prefix = url, prefix
        self.sent: set[str] = set()
        self.acked: set[str] = set()
        self.statuses: list[int] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(n,)) for n in range(threads)]

    def run(self, number: int) -> None:
        index = 0
        with httpx.Client(base_url=self.url, timeout=10) as client:
            while not self.stop.is_set():
                rid = f"{self.prefix}{number}-{index}"
                index += 1
                with self.lock:
                    self.sent.add(rid)
                try:
                    status = client.post("/predict", json=ROW, headers={"X-Request-ID": rid})
                except httpx.HTTPError:
                    status = None
                with self.lock:
                    if status is not None:
                        self.statuses.append(status.status_code)
                        if status.status_code == 200:
                            self.acked.add(rid)
                if status is None:  # the server is gone
                    time.sleep(0.05)

    def start(self) -> Traffic:
        for thread in self.threads:
            thread.start()
        return self

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join()


def logged_ids(lake) -> list[str]:
    log = read_table(lake, "inference_log")
    return log["request_id"].tolist() if len(log) else []


def test_kill_9_under_load_then_restart_logs_each_acknowledged_request_once(
    serving_registry,  # noqa: F811
    tmp_path,
) -> None:
    serving_registry.set_alias("durable_champion", 1)
    options = ("--log-flush-interval", "1.0", "--wal-segment-bytes", "65536")
    server = start_server(tmp_path, serving_registry.tracking_uri, "durable_champion", *options)
    traffic = Traffic(server.url).start()
    deadline = time.monotonic() + 30
    while len(traffic.acked) < 400 and time.monotonic() < deadline:
        time.sleep(0.05)
    server.kill9()  # mid-load, with up to a second of records only in the write-ahead log
    time.sleep(0.3)
    traffic.finish()
    before_restart = set(logged_ids(server.lake))
    assert len(before_restart) < len(traffic.acked)  # the crash did leave work in the WAL
    restarted = start_server(
        tmp_path, serving_registry.tracking_uri, "durable_champion", *options, port=server.port
    )
    assert restarted.stop() == 0, restarted.output()
    assert "recovered records to move" in restarted.output()
    ids = logged_ids(server.lake)
    assert len(ids) == len(set(ids)), "duplicated rows"
    assert traffic.acked <= set(ids), f"lost {len(traffic.acked - set(ids))} acknowledged rows"
    unacknowledged = set(ids) - traffic.acked
    assert unacknowledged <= traffic.sent and len(unacknowledged) <= 4  # in flight at the kill
    assert set(traffic.statuses) == {200}
    print(
        f"injected: SIGKILL to server pid {server.process.pid} under load (4 threads) after "
        f"{len(traffic.acked)} acknowledged requests; checked: {len(ids)} logged rows, "
        f"{len(before_restart)} in Delta before the restart, 0 duplicated, 0 acknowledged lost, "
        f"{len(unacknowledged)} logged but unacknowledged (in flight at the kill)"
    )


def test_graceful_shutdown_under_load_drains_everything(serving_registry, tmp_path) -> None:  # noqa: F811
    serving_registry.set_alias("drain_champion", 1)
    server = start_server(
        tmp_path, serving_registry.tracking_uri, "drain_champion", "--log-flush-interval", "30"
    )
    traffic = Traffic(server.url, prefix="d").start()
    deadline = time.monotonic() + 30
    while len(traffic.acked) < 200 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert logged_ids(server.lake) == []  # a 30 s flush interval: all of it is in the WAL
    os.kill(server.process.pid, signal.SIGTERM)
    assert server.process.wait(60) == 0, server.output()
    traffic.finish()
    ids = logged_ids(server.lake)
    assert len(ids) == len(set(ids)) and traffic.acked <= set(ids)
    assert set(ids) - traffic.acked <= traffic.sent
    assert set(traffic.statuses) == {200}  # requests in flight at SIGTERM were answered
    assert len(list(server.wal.glob("wal-*.seg"))) == 1  # moved segments were released


def test_backpressure_answers_503_with_retry_after(serving_registry, tmp_path) -> None:  # noqa: F811
    serving_registry.set_alias("pressure_champion", 1)
    server = start_server(
        tmp_path,
        serving_registry.tracking_uri,
        "pressure_champion",
        "--log-flush-interval",
        "30",
        "--log-max-backlog-bytes",
        "8000",
    )
    acked, refused = [], None
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for index in range(200):
            response = client.post("/predict", json=ROW, headers={"X-Request-ID": f"p{index}"})
            if response.status_code == 503:
                refused = response
                break
            assert response.status_code == 200
            acked.append(f"p{index}")
        assert refused is not None and 5 <= len(acked) < 100
        assert refused.headers["retry-after"] == "30"
        assert "backlog is full" in refused.json()["error"]
        assert "mlops_serving_log_saturated 1.0" in client.get("/metrics").text
        assert client.get("/health").status_code == 200  # alive, just refusing new rows
    assert server.stop() == 0
    assert sorted(logged_ids(server.lake)) == sorted(acked)
