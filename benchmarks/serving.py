"""Serving throughput and latency: this server vs ``mlflow models serve --env-manager local``.

One registered model (credit-card XGBoost pipeline: ColumnTransformer(imputer + scaler) ->
XGBClassifier(hist, 200 trees, depth 6), fitted on a sample of ../shared/data/creditcard.csv.gz,
logged with ``log_bundle``) is served by four targets at once:

  ours+log     mlops serve, POST /predict, inference log on (WAL fsync before each answer)
  ours-nolog   mlops serve --no-log, POST /predict
  ours+log/inv mlops serve, POST /invocations with MLflow's dataframe_records body
  mlflow       mlflow models serve --env-manager local, POST /invocations (same body)

Each is driven with single-row JSON at concurrency 1, 8 and 32 by a separate client process
(benchmarks/serving_loadgen.py: asyncio + uvloop on raw keep-alive HTTP/1.1 connections, so
the client costs little CPU).
Targets are measured in turn, round-robin over --rounds rounds, and the median round is
reported, so slow phases of a shared machine hit every target alike. On a 2-core machine the
client shares the cores with the server: its CPU seconds are printed too.

``run(args)`` (a Namespace of the options below) returns ``{(target, concurrency): [each
round's figures: rps, p50_ms, p99_ms, statuses, cpu, requests]}``; importing does no work.

After each window of a logging target the server's ``/model`` log stats give the Delta lag
(records durable in the WAL, not yet committed to Delta by the log mover): printed per
concurrency, with the time the mover took to catch up after the last window.

``--baseline TREE`` adds ``base+log`` and ``base-nolog``: the same two servers run from another
checkout of the package (``git archive <commit> mlops_assets | tar -x -C TREE``), measured in
the same rounds, for before/after comparisons side by side.

Usage:
  .venv/bin/python benchmarks/serving.py [--seconds 3] [--rounds 3] [--concurrency 1 8 32]
      [--rows 50000] [--trees 200] [--targets ours+log ours-nolog ours+log/inv mlflow]
      [--baseline TREE --targets ... base+log base-nolog]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.serving_report import LOGGING, catch_up_seconds, log_lag, report
from mlops_assets.core.paths import PROJECT_ROOT

CSV = PROJECT_ROOT.parent / "shared" / "data" / "creditcard.csv.gz"
TARGETS = ("ours+log", "ours-nolog", "ours+log/inv", "mlflow")
BASELINE_TARGETS = ("base+log", "base-nolog")
LOADGEN = Path(__file__).with_name("serving_loadgen.py")


# ------------------------------------------------------------------------- orchestration --
def register_model(folder: Path, rows: int, trees: int) -> str:
    """Fit the credit-card pipeline, log it with log_bundle, alias it champion."""
    import mlflow
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import StandardScaler
    from xgboost import XGBClassifier

    from mlops_assets.core.contract import contract_from_frame
    from mlops_assets.core.model_bundle import ModelBundle
    from mlops_assets.core.model_io import log_bundle

    frame = pd.read_csv(CSV, nrows=rows)
    features, labels = frame.drop(columns=["Time", "Class"]), frame["Class"]
    preprocess = ColumnTransformer(
        [("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), list(features))]
    )
    model = XGBClassifier(tree_method="hist", n_estimators=trees, max_depth=6, n_jobs=2)
    pipeline = Pipeline([("preprocess", preprocess), ("classifier", model)]).fit(features, labels)
    bundle = ModelBundle(pipeline, 0.5, contract_from_frame(features))
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.create_experiment("bench", artifact_location=(folder / "art").as_uri())
    with mlflow.start_run(experiment_id=experiment):
        model_uri = log_bundle(bundle, features.head(5))
    version = mlflow.register_model(model_uri, "fraud_detector").version
    mlflow.MlflowClient().set_registered_model_alias("fraud_detector", "champion", version)
    sample = features.sample(200, random_state=0)
    rows_json = [json.dumps(row) for row in sample.to_dict("records")]
    (folder / "predict.json").write_text(json.dumps(rows_json))
    records = [json.dumps({"dataframe_records": [json.loads(row)]}) for row in rows_json]
    (folder / "invocations.json").write_text(json.dumps(records))
    return uri


def start(
    command: list[str], log: Path, env: dict | None = None, cwd: Path | None = None
) -> subprocess.Popen:
    with open(log, "wb") as sink:
        return subprocess.Popen(
            command,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )


def wait_ready(url: str, process: subprocess.Popen, log: Path, timeout: float = 180) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"{url} not ready:\n{log.read_text()[-3000:]}")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def session_cpu(session: int) -> float:
    """CPU seconds (user + system) of every process in a session (a server and its children)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == session:  # field 6 of /proc/pid/stat: session id
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def fsync_probe(folder: Path, count: int = 100) -> float:
    """Median ms of pwrite + fdatasync into a preallocated file (what one WAL flush costs)."""
    path = folder / "fsync-probe.bin"
    with open(path, "wb") as handle:
        handle.write(bytes(1 << 20))
        handle.flush()
        os.fsync(handle.fileno())
    fd = os.open(path, os.O_WRONLY)
    timings = []
    for index in range(count):
        started = time.perf_counter()
        os.pwrite(fd, b"x" * 600, index * 600)
        os.fdatasync(fd)
        timings.append(time.perf_counter() - started)
    os.close(fd)
    path.unlink()
    return statistics.median(timings) * 1e3


def measure(
    port: int, path: str, bodies: Path, concurrency: int, seconds: float, session: int
) -> dict:
    command = [sys.executable, str(LOADGEN), "--port", str(port), "--path", path]
    command += ["--bodies", str(bodies), "--concurrency", str(concurrency)]
    command += ["--seconds", str(seconds)]
    before = session_cpu(session)
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    figures = json.loads(output.strip().splitlines()[-1])
    figures["server_cpu_s"] = session_cpu(session) - before  # warm-up requests included
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--trees", type=int, default=200)
    parser.add_argument(
        "--targets", nargs="+", default=list(TARGETS), choices=TARGETS + BASELINE_TARGETS
    )
    parser.add_argument("--baseline", type=Path, default=None, help="another package checkout")
    args = parser.parse_args()
    if set(args.targets) & set(BASELINE_TARGETS) and args.baseline is None:
        parser.error("targets base+log / base-nolog need --baseline TREE")
    run(args)


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run(args: argparse.Namespace) -> dict:
    """Measure every target; return {(target, concurrency): [figures of each round]}."""
    folder = Path(tempfile.mkdtemp(prefix="serving-bench-"))
    print(f"workdir {folder}; fitting and registering the model ...", flush=True)
    tracking = register_model(folder, args.rows, args.trees)
    python = sys.executable
    launch = "import sys; from mlops_assets.cli import main; main(sys.argv[1:])"
    ports = {name: free_port() for name in ("ours+log", "ours-nolog", "mlflow", *BASELINE_TARGETS)}
    common = ["serve", "--tracking-uri", tracking, "--log-level", "warning", "--port"]
    servers = {
        "ours+log": [python, "-c", launch, "--state-dir", str(folder / "s1"), *common],
        "ours-nolog": [python, "-c", launch, "--state-dir", str(folder / "s2"), *common],
        "mlflow": [
            str(Path(python).with_name("mlflow")),
            "models",
            "serve",
            "-m",
            "models:/fraud_detector@champion",
            "--env-manager",
            "local",
            "-p",
            str(ports["mlflow"]),
        ],
    }
    servers["ours+log"].append(str(ports["ours+log"]))
    servers["ours-nolog"] += [str(ports["ours-nolog"]), "--no-log"]
    for name in BASELINE_TARGETS:
        state = ["--state-dir", str(folder / name)]
        servers[name] = [python, "-c", launch, *state, *common, str(ports[name])]
    servers["base-nolog"].append("--no-log")
    wanted = {"ours+log/inv": "ours+log"}
    needed = {wanted.get(target, target) for target in args.targets}
    bin_dir = str(Path(python).parent)  # mlflow serve execs `uvicorn` from PATH
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    trees = {name: args.baseline for name in BASELINE_TARGETS}
    processes = {
        name: start(
            command,
            folder / f"{name}.log",
            {**env, "PYTHONPATH": str(trees[name])} if name in trees else env,
            trees.get(name),
        )
        for name, command in servers.items()
        if name in needed
    }
    try:
        for name, process in processes.items():
            url = f"http://127.0.0.1:{ports[name]}" + ("/ping" if name == "mlflow" else "/ready")
            wait_ready(url, process, folder / f"{name}.log")
        print(f"servers ready; load average {os.getloadavg()[0]:.1f}", flush=True)
        fsync_before = fsync_probe(folder)
        routes = {
            "ours+log": (ports["ours+log"], "/predict", folder / "predict.json"),
            "ours-nolog": (ports.get("ours-nolog"), "/predict", folder / "predict.json"),
            "ours+log/inv": (ports["ours+log"], "/invocations", folder / "invocations.json"),
            "mlflow": (ports.get("mlflow"), "/invocations", folder / "invocations.json"),
            "base+log": (ports["base+log"], "/predict", folder / "predict.json"),
            "base-nolog": (ports["base-nolog"], "/predict", folder / "predict.json"),
        }
        owner = {target: processes[wanted.get(target, target)].pid for target in args.targets}
        results: dict = {}
        for concurrency in args.concurrency:
            for _ in range(args.rounds):
                for target in args.targets:
                    port, path, bodies = routes[target]
                    figures = measure(port, path, bodies, concurrency, args.seconds, owner[target])
                    if target in LOGGING:
                        figures["delta_lag"] = log_lag(ports[LOGGING[target]])["backlog"]
                    results.setdefault((target, concurrency), []).append(figures)
        report(results, args)
        for name in sorted({LOGGING[t] for t in args.targets if t in LOGGING}):
            lag = log_lag(ports[name])["backlog"]
            caught_up = catch_up_seconds(ports[name])
            shown = "not within 120 s" if caught_up is None else f"in {caught_up:.2f} s"
            print(f"{name}: Delta lag after the last window {lag} records; caught up {shown}")
        after = fsync_probe(folder)
        print(f"fdatasync of one write (median of 100): {fsync_before:.2f} ms before the load,")
        print(f"{after:.2f} ms after: it bounds the latency of every logged answer")
        return results
    finally:
        for process in processes.values():
            stop(process)
        print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
