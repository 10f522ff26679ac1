"""Printing of ``benchmarks/serving.py``'s figures, and the servers' Delta lag.

``report`` prints the median round per target and concurrency, CPU per request, the ratios
against ``mlflow models serve`` and logging on / off (also for the ``--baseline`` servers) and
the most Delta lag seen at the end of a window.
"""

from __future__ import annotations

import argparse
import statistics
import time

# logging target -> the server whose log it writes
LOGGING = {"ours+log": "ours+log", "ours+log/inv": "ours+log", "base+log": "base+log"}


def log_lag(port: int) -> dict:
    """The server's inference-log counters (``/model``): Delta lag in records."""
    import httpx

    stats = httpx.get(f"http://127.0.0.1:{port}/model", timeout=10).json()["log"]
    return {"backlog": stats["backlog_records"], "committed": stats["committed_lsn"]}


def catch_up_seconds(port: int, timeout: float = 120.0) -> float | None:
    """Seconds until the Delta lag is zero (None when it is not within ``timeout``)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if log_lag(port)["backlog"] == 0:
            return time.monotonic() - started
        time.sleep(0.05)
    return None


def report(results: dict, args: argparse.Namespace) -> None:
    def median(target: str, concurrency: int, key: str) -> float:
        return statistics.median(r[key] for r in results[(target, concurrency)])

    print(f"\nmedian of {args.rounds} rounds x {args.seconds:.0f} s, single-row JSON")
    print(
        f"{'target':<14}{'conc':>5}{'rps':>9}{'p50 ms':>9}{'p99 ms':>9}"
        "  server cpu/req  client cpu/req  statuses"
    )
    for concurrency in args.concurrency:
        for target in args.targets:
            rounds = results[(target, concurrency)]
            statuses: dict = {}
            for r in rounds:
                for status, count in r["statuses"].items():
                    statuses[status] = statuses.get(status, 0) + count
            requests = max(1, sum(r["requests"] for r in rounds))
            client = sum(r["client_cpu_s"] for r in rounds) / requests
            served = max(1, sum(r["all_requests"] for r in rounds))
            server = sum(r["server_cpu_s"] for r in rounds) / served
            print(
                f"{target:<14}{concurrency:>5}{median(target, concurrency, 'rps'):>9.0f}"
                f"{median(target, concurrency, 'p50_ms'):>9.2f}"
                f"{median(target, concurrency, 'p99_ms'):>9.2f}"
                f"{server * 1e6:>12.0f} us{client * 1e6:>12.0f} us  {statuses}"
            )
    print()
    for concurrency in args.concurrency:
        line = [f"conc {concurrency:>2}:"]
        if "mlflow" in args.targets:
            for target in ("ours+log", "ours+log/inv", "ours-nolog"):
                if target in args.targets:
                    ratio = median(target, concurrency, "rps") / median(
                        "mlflow", concurrency, "rps"
                    )
                    line.append(f"{target}/mlflow {ratio:.1f}x")
        if {"ours+log", "ours-nolog"} <= set(args.targets):
            on, off = results[("ours+log", concurrency)], results[("ours-nolog", concurrency)]
            ratio = statistics.median(r["rps"] for r in on) / statistics.median(
                r["rps"] for r in off
            )
            paired = statistics.median(a["rps"] / b["rps"] for a, b in zip(on, off, strict=True))
            line.append(
                f"logging on/off {ratio:.2f} (cost {(1 - ratio) * 100:.0f} % of throughput; "
                f"median of the rounds' own ratios {paired:.2f})"
            )
        print("  ".join(line))
    for concurrency in args.concurrency:
        lags = [
            f"{target} {max(r['delta_lag'] for r in results[(target, concurrency)])}"
            for target in args.targets
            if target in LOGGING
        ]
        if lags:
            print(
                f"conc {concurrency:>2}: most Delta lag at the end of a window: {', '.join(lags)}"
            )
    if {"base+log", "base-nolog"} <= set(args.targets):
        for concurrency in args.concurrency:
            on, off = results[("base+log", concurrency)], results[("base-nolog", concurrency)]
            paired = statistics.median(a["rps"] / b["rps"] for a, b in zip(on, off, strict=True))
            print(f"conc {concurrency:>2}: baseline logging on/off (paired rounds) {paired:.2f}")
    if "ours+log" in args.targets and 1 in args.concurrency:
        p50 = median("ours+log", 1, "p50_ms")
        print(f"\ntarget p50 <= 2 ms at concurrency 1 with logging: {p50:.2f} ms")
