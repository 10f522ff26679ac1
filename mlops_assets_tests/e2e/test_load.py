"""Load: the real server under sustained concurrent load keeps p99 bounded and memory flat.

``benchmarks/serving_loadgen.py`` (keep-alive HTTP/1.1 on asyncio, its own process) drives
``/predict`` on loopback with :data:`CONCURRENCY` connections for :data:`SECONDS` seconds
while the test samples the server's resident memory (``VmRSS``) every second. Bounds, stated
generously because the machine is shared and noisy:

* p99 latency under :data:`P99_BOUND_MS`;
* every answer a 200, and every answered request in the inference log after shutdown;
* memory flat: the mean RSS of the last third of the run exceeds that of the first third by
  less than :data:`RSS_GROWTH_BOUND` (relative) or :data:`RSS_GROWTH_BOUND_MB` MiB.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from mlops_assets.core.paths import PROJECT_ROOT
from mlops_assets_tests.e2e.serving_process import read_table, start_server
from mlops_assets_tests.serving.fixtures import serving_registry  # noqa: F401

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CONCURRENCY = 8
SECONDS = 25.0
P99_BOUND_MS = 250.0
RSS_GROWTH_BOUND = 0.15
RSS_GROWTH_BOUND_MB = 50.0
LOADGEN = PROJECT_ROOT / "benchmarks" / "serving_loadgen.py"


def rss_mib(pid: int) -> float:
    """Resident set size of ``pid`` in MiB (``/proc/PID/status``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def request_bodies(count: int = 64) -> list[str]:
    """Distinct single-row bodies of the credit-card-like contract of version 1."""
    rng = np.random.default_rng(0)
    return [
        json.dumps(
            {
                "V1": float(rng.normal()),
                "V2": float(rng.normal()),
                "V3": float(rng.normal()),
                "Amount": float(rng.gamma(2.0, 40.0)),
                "count": int(rng.integers(0, 20)),
            }
        )
        for _ in range(count)
    ]


def sample_rss(pid: int, stop: threading.Event, series: list[float]) -> None:
    """Append the RSS of ``pid`` every second until ``stop``."""
    while not stop.wait(1.0):
        series.append(rss_mib(pid))


def test_sustained_load_keeps_p99_bounded_and_memory_flat(serving_registry, tmp_path) -> None:  # noqa: F811
    serving_registry.set_alias("load_champion", 1)
    server = start_server(tmp_path, serving_registry.tracking_uri, "load_champion")
    bodies = tmp_path / "bodies.json"
    bodies.write_text(json.dumps(request_bodies()))
    series: list[float] = []
    stop = threading.Event()
    sampler = threading.Thread(target=sample_rss, args=(server.process.pid, stop, series))
    try:
        idle_rss = rss_mib(server.process.pid)
        sampler.start()
        command = [sys.executable, str(LOADGEN), "--port", str(server.port), "--path"]
        command += ["/predict", "--bodies", str(bodies), "--concurrency", str(CONCURRENCY)]
        command += ["--seconds", str(SECONDS)]
        load = subprocess.run(command, capture_output=True, text=True, timeout=SECONDS + 60)
    finally:
        stop.set()
        if sampler.is_alive():
            sampler.join()
        code = server.stop()
    assert load.returncode == 0, load.stderr[-3000:]
    figures = json.loads(load.stdout.strip().splitlines()[-1])
    third = max(1, len(series) // 3)
    first, last = float(np.mean(series[:third])), float(np.mean(series[-third:]))
    growth_mb, growth = last - first, (last - first) / first
    logged = len(read_table(server.lake, "inference_log"))
    print(
        f"load: {CONCURRENCY} connections for {SECONDS:g} s on loopback: "
        f"{figures['rps']:.0f} rps, p50 {figures['p50_ms']:.1f} ms, p99 {figures['p99_ms']:.1f} ms "
        f"(bound {P99_BOUND_MS:g} ms), statuses {figures['statuses']}, "
        f"{figures['all_requests']} requests with warm-up, {logged} rows logged"
    )
    print(
        f"rss MiB: idle {idle_rss:.1f}, {len(series)} samples, min {min(series):.1f}, "
        f"max {max(series):.1f}, first third {first:.1f}, last third {last:.1f}, growth "
        f"{growth_mb:+.1f} MiB ({growth:+.1%}; bound {RSS_GROWTH_BOUND:.0%} or "
        f"{RSS_GROWTH_BOUND_MB:g} MiB)"
    )
    assert code == 0, server.output()[-3000:]
    assert set(figures["statuses"]) == {"200"}, figures["statuses"]
    assert figures["requests"] >= 500  # the load was real, not a trickle
    assert figures["p99_ms"] < P99_BOUND_MS
    assert len(series) >= SECONDS - 3
    assert growth < RSS_GROWTH_BOUND or growth_mb < RSS_GROWTH_BOUND_MB
    assert figures["requests"] <= logged <= figures["all_requests"]
