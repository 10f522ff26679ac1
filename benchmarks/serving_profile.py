"""Where the inference log's CPU goes: per-thread and per-process CPU of served requests.

Starts this server with logging on and off on the same registered model (see
``benchmarks/serving.py``), drives each in turn with single-row JSON at one concurrency, and
reads ``/proc/<pid>/task/<tid>/stat`` of the server, its threads and its child processes
(the WAL sync helper, the log mover) before and after each run. Prints microseconds of CPU per
answered request for: the event-loop thread (the server's main thread: the one that bounds
throughput), the server's other threads, and each child process, so the cost of logging can be
attributed. ``--baseline TREE`` adds the same two servers run from another checkout (a
``git worktree`` of an earlier commit), measured in the same rounds. ``--py-spy SECONDS``
records a py-spy profile (``--native``, top functions printed) of the logging server's event
loop in the last round.

Usage:
  .venv/bin/python -m benchmarks.serving_profile [--concurrency 8] [--seconds 5] [--rounds 3]
      [--baseline /tmp/base-tree] [--py-spy 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks import serving
from benchmarks.memory import descendants

TICKS = os.sysconf("SC_CLK_TCK")


def _stat(path: str) -> tuple[str, float]:
    with open(path) as handle:
        text = handle.read()
    name = text[text.index("(") + 1 : text.rindex(")")]
    fields = text.rsplit(")", 1)[1].split()
    return name, (int(fields[11]) + int(fields[12])) / TICKS


def _role(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            command = handle.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return "gone"
    for marker, role in (("wal_syncer", "syncer"), ("log_mover", "mover")):
        if marker in command:
            return role
    return "child"


def cpu_by_part(pid: int) -> dict[str, float]:
    """CPU seconds so far: the server's main thread, its other threads, each child's role."""
    parts: dict[str, float] = {}
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            _, seconds = _stat(f"/proc/{pid}/task/{task}/stat")
        except OSError:
            continue
        key = "loop thread" if int(task) == pid else "other threads"
        parts[key] = parts.get(key, 0.0) + seconds
    for child in descendants(pid):
        try:
            _, seconds = _stat(f"/proc/{child}/stat")
        except OSError:
            continue
        role = _role(child)
        parts[role] = parts.get(role, 0.0) + seconds
    return parts


def py_spy(pid: int, seconds: float, out: Path) -> subprocess.Popen:
    """Record the event loop thread for ``seconds`` and print its top functions."""
    spy = Path(sys.executable).with_name("py-spy")
    command = [str(spy), "record", "--pid", str(pid), "--duration", str(int(seconds))]
    command += ["--format", "raw", "--output", str(out), "--nonblocking", "--rate", "500"]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def top_functions(raw: Path, count: int = 25) -> None:
    """Print self and inclusive sample shares of the hottest functions of a raw py-spy file."""
    inclusive: dict[str, int] = {}
    own: dict[str, int] = {}
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, number = line.rpartition(" ")
        samples = int(number)
        frames = stack.split(";")
        total += samples
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + samples
        own[frames[-1]] = own.get(frames[-1], 0) + samples
    print(f"\npy-spy: {total} samples; top functions by inclusive share (self share)")
    for frame, samples in sorted(inclusive.items(), key=lambda item: -item[1])[:count]:
        shares = f"{100 * samples / total:5.1f} % ({100 * own.get(frame, 0) / total:4.1f} %)"
        print(f"  {shares}  {frame}")


def log_stats(port: int) -> dict:
    """The server's inference-log counters from ``/model``."""
    import httpx

    return httpx.get(f"http://127.0.0.1:{port}/model", timeout=10).json()["log"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--trees", type=int, default=200)
    parser.add_argument("--baseline", type=Path, default=None)
    parser.add_argument("--py-spy", type=float, default=0.0, dest="spy")
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        help="NAME:VAR=VALUE,...: one more server of this tree with these env vars (logging off "
        "when NAME ends in -nolog). It always runs this tree's code: the server starts in this "
        "folder, which comes first on sys.path, so PYTHONPATH cannot swap it; use --baseline",
    )
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="serving-profile-"))
    print(f"workdir {folder}; fitting and registering the model ...", flush=True)
    tracking = serving.register_model(folder, args.rows, args.trees)
    trees = {"": Path.cwd()} | ({"base": args.baseline} if args.baseline else {})
    launch = "import sys; from mlops_assets.cli import main; main(sys.argv[1:])"
    servers = [
        (f"{p}{'+log' if on else '-nolog'}", tree, on, {})
        for p, tree in trees.items()
        for on in (True, False)
    ]
    for variant in args.variant:
        name, _, assignments = variant.partition(":")
        extra = dict(item.split("=", 1) for item in assignments.split(",") if item)
        servers.append((name, Path.cwd(), not name.endswith("-nolog"), extra))
    processes, ports = {}, {}
    for name, tree, logging_on, extra in servers:
        ports[name] = serving.free_port()
        command = [sys.executable, "-c", launch, "--state-dir", str(folder / name), "serve"]
        command += ["--tracking-uri", tracking, "--log-level", "warning"]
        command += ["--port", str(ports[name])] + ([] if logging_on else ["--no-log"])
        env = {**os.environ, "PYTHONPATH": str(tree), **extra}
        processes[name] = serving.start(command, folder / f"{name}.log", env, tree)
    figures: dict[str, list[dict]] = {name: [] for name in processes}
    try:
        for name, process in processes.items():
            url = f"http://127.0.0.1:{ports[name]}/ready"
            serving.wait_ready(url, process, folder / f"{name}.log")
        bodies = folder / "predict.json"
        for round_number in range(args.rounds):
            for name, process in processes.items():
                spy = None
                if args.spy and round_number == args.rounds - 1 and name == "+log":
                    spy = py_spy(process.pid, args.spy, folder / "spy.txt")
                before = cpu_by_part(process.pid)
                result = serving.measure(
                    ports[name], "/predict", bodies, args.concurrency, args.seconds, process.pid
                )
                after = cpu_by_part(process.pid)
                if spy is not None:
                    spy.wait()
                served = result["all_requests"]
                parts = {k: (after[k] - before.get(k, 0.0)) / served for k in after}
                figures[name].append({"rps": result["rps"], "parts": parts})
                if "nolog" not in name:
                    figures[name][-1]["log"] = log_stats(ports[name])
        report(figures, args)
        if args.spy and (folder / "spy.txt").is_file():
            top_functions(folder / "spy.txt")
    finally:
        for process in processes.values():
            serving.stop(process)
        print(f"load average at the end {os.getloadavg()[0]:.1f}")


def report(figures: dict[str, list[dict]], args: argparse.Namespace) -> None:
    """Median rps and median microseconds of CPU per request of each part."""
    print(
        f"\nconcurrency {args.concurrency}, median of {args.rounds} rounds x {args.seconds:.0f} s;"
        " CPU in us per request (warm-up requests included)"
    )
    keys = sorted({key for rounds in figures.values() for r in rounds for key in r["parts"]})
    print(f"{'server':<14}{'rps':>8}" + "".join(f"{key:>15}" for key in keys) + f"{'total':>9}")
    for name, rounds in figures.items():
        rps = statistics.median(r["rps"] for r in rounds)
        cells = [statistics.median(r["parts"].get(key, 0.0) for r in rounds) for key in keys]
        row = "".join(f"{cell * 1e6:>15.0f}" for cell in cells)
        print(f"{name:<14}{rps:>8.0f}{row}{sum(cells) * 1e6:>9.0f}")
        print(f"{'':<14}rounds: " + " ".join(f"{r['rps']:.0f}" for r in rounds))
    for name, rounds in figures.items():
        if "log" in rounds[-1]:
            stats = rounds[-1]["log"]
            per_flush = stats["durable_records"] / max(1, stats["fsyncs"])
            print(
                f"{name}: {per_flush:.1f} records per flush since start; Delta lag after the "
                f"last window {stats['backlog_records']} records"
            )
    for name, on in figures.items():
        off = figures.get(f"{'base' if name.startswith('base') else ''}-nolog")
        if "nolog" not in name and off:
            ratios = sorted(a["rps"] / b["rps"] for a, b in zip(on, off, strict=True))
            quartiles = f"{ratios[len(ratios) // 4]:.2f}-{ratios[3 * len(ratios) // 4]:.2f}"
            print(
                f"{name}: logging on/off, median of paired rounds {statistics.median(ratios):.2f}"
                f" (quartiles {quartiles})"
            )


if __name__ == "__main__":
    main()
