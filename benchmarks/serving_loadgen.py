"""Load generator of benchmarks/serving.py: keep-alive HTTP/1.1 connections on asyncio + uvloop.

Each connection sends one prebuilt request, waits for the whole answer (Content-Length),
records the latency and sends the next, until the time is up. Raw protocol callbacks keep the
client's CPU per request low (it shares the machine with the server). Prints one JSON line:
rps, p50/p99 ms, status counts, client CPU seconds, requests (measured and with warm-up).

Usage (normally started by benchmarks/serving.py):
  .venv/bin/python benchmarks/serving_loadgen.py --port P --path /predict --bodies rows.json \
      --concurrency 8 --seconds 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import time
from pathlib import Path


class _Connection(asyncio.Protocol):
    def __init__(self, requests: list[bytes], stop_at: float, done: asyncio.Future, out: dict):
        self.requests, self.stop_at, self.done, self.out = requests, stop_at, done, out
        self.buffer, self.index, self.started = b"", 0, 0.0

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.send()

    def send(self) -> None:
        if time.perf_counter() >= self.stop_at:
            self.transport.close()
            if not self.done.done():
                self.done.set_result(None)
            return
        self.started = time.perf_counter()
        self.transport.write(self.requests[self.index % len(self.requests)])
        self.index += 1

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = self.buffer[:end].lower()
        at = head.find(b"content-length:")
        length = int(head[at + 15 : head.find(b"\r\n", at) if b"\r\n" in head[at:] else None])
        if len(self.buffer) < end + 4 + length:
            return
        status = int(self.buffer[9:12])
        self.buffer = self.buffer[end + 4 + length :]
        self.out["latencies"].append(time.perf_counter() - self.started)
        self.out["statuses"][status] = self.out["statuses"].get(status, 0) + 1
        self.send()

    def connection_lost(self, exc) -> None:
        if not self.done.done():
            self.done.set_result(None)


async def _drive(port: int, requests: list[bytes], concurrency: int, seconds: float) -> dict:
    loop = asyncio.get_running_loop()
    out: dict = {"latencies": [], "statuses": {}}
    stop_at = time.perf_counter() + seconds
    started = time.perf_counter()
    waits = []
    for _ in range(concurrency):
        done = loop.create_future()
        await loop.create_connection(
            lambda d=done: _Connection(requests, stop_at, d, out), "127.0.0.1", port
        )
        waits.append(done)
    await asyncio.gather(*waits)
    out["elapsed"] = time.perf_counter() - started
    return out


def client_main(args: argparse.Namespace) -> None:
    """Run one measurement and print it as JSON (runs in its own process)."""
    import uvloop

    bodies = json.loads(Path(args.bodies).read_text())
    requests = [
        (
            f"POST {args.path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body.encode())}\r\n\r\n{body}"
        ).encode()
        for body in bodies
    ]
    warm = uvloop.run(_drive(args.port, requests, args.concurrency, 0.5))
    before = resource.getrusage(resource.RUSAGE_SELF)
    out = uvloop.run(_drive(args.port, requests, args.concurrency, args.seconds))
    after = resource.getrusage(resource.RUSAGE_SELF)
    latencies = sorted(out["latencies"])
    count = len(latencies)
    print(
        json.dumps(
            {
                "rps": count / out["elapsed"],
                "p50_ms": latencies[count // 2] * 1e3 if count else None,
                "p99_ms": latencies[min(count - 1, int(count * 0.99))] * 1e3 if count else None,
                "statuses": out["statuses"],
                "client_cpu_s": (after.ru_utime + after.ru_stime)
                - (before.ru_utime + before.ru_stime),
                "requests": count,
                "all_requests": count + len(warm["latencies"]),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", required=True)
    parser.add_argument("--bodies", required=True, help="JSON list of request bodies (strings)")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=3.0)
    client_main(parser.parse_args())


if __name__ == "__main__":
    main()
