"""Delta engines side by side: delta-rs vs delta-spark on the real credit-card data.

One run, both engines, the same frames and the same operations on separate tables:
  session       start the engine (Spark: JVM + Delta jar resolution; delta-rs: nothing)
  write v0      overwrite with the whole file (284,807 rows x 31 columns)
  append v1     append a 10 % batch (new rows, as an ingestion increment would)
  read latest   read v1 into pandas (first read, then the best of --repeats warm reads)
  read v0       time travel to v0 into pandas (best of --repeats)
  cross read    the other engine reads this engine's table at v0 (interop check)

Every read is checked for row count; the cross reads must return the same rows as the
writer's own read. Wall-clock and CPU seconds per stage (CPU: this process plus the Spark
JVM and its Python workers, JIT compilation included) and the ratios spark / delta-rs are
printed. On a shared machine wall-clock figures are noisy; CPU seconds are steadier.

In the suite (``suite``): the ratios spark / delta-rs of write, latest read and time-travel
read (wall and CPU); in smoke mode only delta-rs runs (Spark is skipped).

Usage:
  .venv/bin/python -m benchmarks.delta_engines [--csv PATH] [--repeats 3] [--keep DIR]
      [--spark-master local[*]] [--spark-conf KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from benchmarks.harness import Figure, Settings, ratio, skipped
from mlops_assets.core.paths import PROJECT_ROOT
from mlops_assets.core.tables import DeltaEngine, DeltaRsEngine

DEFAULT_CSV = PROJECT_ROOT.parent / "shared" / "data" / "creditcard.csv.gz"
TABLE = "creditcard"
NAME = "delta_engines"
CPU_NOTE = "CPU: this process + the Spark JVM and its Python workers"


JVM_PID: list[int] = []  # the Spark driver JVM, once started


def _cpu_seconds() -> float:
    """CPU time of this process and of the Spark JVM with its children (Python workers)."""
    total = time.process_time()
    if not JVM_PID:
        return total
    children: dict[int, list[int]] = {}
    ticks: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
        ticks[int(entry)] = int(fields[11]) + int(fields[12])  # utime + stime
    pending, seen = [JVM_PID[0]], 0
    while pending:
        pid = pending.pop()
        seen += ticks.get(pid, 0)
        pending.extend(children.get(pid, []))
    return total + seen / os.sysconf("SC_CLK_TCK")


def timed(function: Callable[[], Any]) -> tuple[tuple[float, float], Any]:
    """Run ``function``; return ((wall seconds, CPU seconds), its value)."""
    start, cpu = time.perf_counter(), _cpu_seconds()
    value = function()
    return (time.perf_counter() - start, _cpu_seconds() - cpu), value


def canonical(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(list(frame.columns), ignore_index=True)


def run_engine(
    engine: DeltaEngine, full: pd.DataFrame, batch: pd.DataFrame, repeats: int
) -> dict[str, tuple[float, float]]:
    figures: dict[str, tuple[float, float]] = {}
    figures["write v0"], ref0 = timed(lambda: engine.write(TABLE, full, mode="overwrite"))
    figures["append v1"], ref1 = timed(lambda: engine.write(TABLE, batch, mode="append"))
    assert (ref0.version, ref1.version) == (0, 1), (ref0, ref1)
    figures["read latest (first)"], latest = timed(lambda: engine.read(TABLE))
    assert len(latest) == len(full) + len(batch), len(latest)
    warm = [timed(lambda: engine.read(TABLE))[0] for _ in range(repeats)]
    figures["read latest (warm)"] = min(warm)
    travel = []
    for _ in range(repeats):
        seconds, old = timed(lambda: engine.read(TABLE, 0))
        assert len(old) == len(full), len(old)
        travel.append(seconds)
    figures["read v0 (time travel)"] = min(travel)
    return figures


Timings = dict[str, dict[str, tuple[float, float]]]
"""Engine -> stage -> (wall seconds, CPU seconds)."""


def load(csv: Path) -> tuple[pd.DataFrame, pd.DataFrame, float]:
    """The whole file, a 10 % append batch (later ``Time`` when present), the read seconds."""
    if not csv.is_file():
        raise FileNotFoundError(f"{csv}: no such file (the credit-card CSV from ../shared/data)")
    (csv_seconds, _cpu), full = timed(lambda: pd.read_csv(csv))
    batch = full.sample(frac=0.1, random_state=0)
    if "Time" in batch.columns:
        batch = batch.assign(Time=lambda f: f["Time"] + 172_800.0)
    return full, batch, csv_seconds


def compare(
    full: pd.DataFrame,
    batch: pd.DataFrame,
    workdir: Path,
    repeats: int,
    spark_master: str | None = "local[*]",
    spark_conf: dict[str, str] | None = None,
) -> Timings:
    """Both engines on the same frames (delta-rs only when ``spark_master`` is None)."""
    figures: Timings = {}
    engines: dict[str, DeltaEngine] = {"delta-rs": DeltaRsEngine(str(workdir / "delta-rs"))}
    figures["delta-rs"] = {"session": (0.0, 0.0)}
    figures["delta-rs"] |= run_engine(engines["delta-rs"], full, batch, repeats)
    if spark_master is None:
        return figures

    from mlops_assets.core.spark import spark_session
    from mlops_assets.core.spark_tables import SparkDeltaEngine

    start = lambda: spark_session(master=spark_master, extra_conf=spark_conf)  # noqa: E731
    (wall, cpu), spark = timed(start)
    JVM_PID.append(spark.sparkContext._gateway.proc.pid)
    jvm_cpu = _cpu_seconds() - time.process_time()  # the JVM started inside that stage
    figures["spark"] = {"session": (wall, cpu + jvm_cpu)}
    engines["spark"] = SparkDeltaEngine(str(workdir / "spark"), spark)
    figures["spark"] |= run_engine(engines["spark"], full, batch, repeats)

    for reader, writer in (("spark", "delta-rs"), ("delta-rs", "spark")):
        other = dataclasses.replace(engines[reader], root=engines[writer].root)
        figures[reader]["cross read v0"], theirs = timed(lambda other=other: other.read(TABLE, 0))
        mine = engines[writer].read(TABLE, 0)
        pd.testing.assert_frame_equal(canonical(theirs), canonical(mine))
    spark.stop()
    JVM_PID.clear()
    return figures


SUITE_STAGES = (
    ("write v0", "write"),
    ("read latest (warm)", "latest read"),
    ("read v0 (time travel)", "time-travel read"),
)


def suite(settings: Settings) -> list[Figure]:
    """Ratios spark / delta-rs (wall and CPU) of write, latest read and time-travel read."""
    full, batch, _ = load(settings.data)
    master = None if settings.smoke else "local[2]"
    timings = compare(full, batch, settings.workdir, settings.timed_reps, master)
    shape = f"{len(full):,} rows x {full.shape[1]} columns"
    figures = []
    for stage, label in SUITE_STAGES:
        rs_wall, rs_cpu = timings["delta-rs"][stage]
        figures.append(Figure(NAME, f"delta-rs {label}", rs_wall, "s", note=f"{shape}; wall"))
        if "spark" not in timings:
            figures.append(skipped(NAME, f"spark / delta-rs {label}", "skipped in smoke mode"))
            continue
        sp_wall, sp_cpu = timings["spark"][stage]
        figures.append(Figure(NAME, f"spark {label}", sp_wall, "s", note="local[2]; wall"))
        figures.append(ratio(NAME, f"spark / delta-rs {label} (wall)", sp_wall, rs_wall))
        figures.append(
            ratio(NAME, f"spark / delta-rs {label} (CPU)", sp_cpu, rs_cpu, note=CPU_NOTE)
        )
    if "spark" in timings:
        figures.append(
            Figure(NAME, "spark session start", timings["spark"]["session"][0], "s", note="wall")
        )
        figures.append(
            Figure(
                NAME,
                "cross reads v0 identical",
                1.0,
                "",
                note="each engine read the other's v0; rows identical (checked)",
            )
        )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--keep", type=Path, default=None, help="write the tables here")
    parser.add_argument("--spark-master", default="local[*]")
    parser.add_argument("--spark-conf", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    try:
        full, batch, csv_seconds = load(args.csv)
    except FileNotFoundError as error:
        raise SystemExit(str(error)) from None
    print(
        f"data: {args.csv.name} {full.shape[0]:,} rows x {full.shape[1]} columns, "
        f"{full.memory_usage(deep=True).sum() / 2**20:.0f} MiB in pandas "
        f"(csv read {csv_seconds:.2f} s); append batch {len(batch):,} rows; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )

    workdir = Path(tempfile.mkdtemp(prefix="delta_engines_")) if args.keep is None else args.keep
    try:
        extra = dict(item.split("=", 1) for item in args.spark_conf)
        figures = compare(full, batch, workdir, args.repeats, args.spark_master, extra)
    finally:
        if args.keep is None:
            shutil.rmtree(workdir, ignore_errors=True)

    print(f"\n{'':<24}{'--- wall seconds ---':^36}{'--- CPU seconds ---':^36}")
    print(f"{'stage':<24}" + f"{'delta-rs':>12}{'spark':>12}{'spark/rs':>12}" * 2)
    for stage in figures["delta-rs"]:
        row = f"{stage:<24}"
        for index in (0, 1):
            rs, sp = figures["delta-rs"][stage][index], figures["spark"][stage][index]
            ratio = f"{sp / rs:.1f}x" if rs >= 0.005 else "-"
            row += f"{rs:>12.3f}{sp:>12.3f}{ratio:>12}"
        print(row)
    print(
        "\nCPU = this process + the Spark JVM and its children. Warm reads and time travel: "
        f"best of {args.repeats}. Cross read v0: each engine read the other's v0 table; "
        "rows identical (checked)."
    )


if __name__ == "__main__":
    main()
