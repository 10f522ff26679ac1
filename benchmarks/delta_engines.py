"""Delta engines side by side: delta-rs vs delta-spark on the real credit-card data.

One run, both engines, the same frames and the same operations on separate tables:
  session       start the engine (Spark: JVM + Delta jar resolution; delta-rs: nothing)
  write v0      overwrite with the whole file (284,807 rows x 31 columns)
  append v1     append a 10 % batch (new rows, as an ingestion increment would)
  read latest   read v1 into pandas (first read, then the best of --repeats warm reads)
  read v0       time travel to v0 into pandas (best of --repeats)
  cross read    the other engine reads this engine's table at v0 (interop check)

Every read is checked for row count; the cross reads must return the same rows as the
writer's own read. Seconds per stage and the ratio spark / delta-rs are printed. The machine
may be shared: figures are wall-clock and noisy, so compare the ratios within one run.

Usage:
  .venv/bin/python benchmarks/delta_engines.py [--csv PATH] [--repeats 3] [--keep DIR]
      [--spark-master local[*]] [--spark-conf KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from mlops_assets.core.paths import PROJECT_ROOT
from mlops_assets.core.tables import DeltaEngine, DeltaRsEngine

DEFAULT_CSV = PROJECT_ROOT.parent / "shared" / "data" / "creditcard.csv.gz"
TABLE = "creditcard"


def timed(function: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = function()
    return time.perf_counter() - start, value


def canonical(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(list(frame.columns), ignore_index=True)


def run_engine(
    engine: DeltaEngine, full: pd.DataFrame, batch: pd.DataFrame, repeats: int
) -> dict[str, float]:
    figures: dict[str, float] = {}
    figures["write v0"], ref0 = timed(lambda: engine.write(TABLE, full, mode="overwrite"))
    figures["append v1"], ref1 = timed(lambda: engine.write(TABLE, batch, mode="append"))
    assert (ref0.version, ref1.version) == (0, 1), (ref0, ref1)
    figures["read latest (first)"], latest = timed(lambda: engine.read(TABLE))
    assert len(latest) == len(full) + len(batch), len(latest)
    warm, old = [], None
    for _ in range(repeats):
        seconds, _frame = timed(lambda: engine.read(TABLE))
        warm.append(seconds)
    figures["read latest (warm)"] = min(warm)
    travel = []
    for _ in range(repeats):
        seconds, old = timed(lambda: engine.read(TABLE, 0))
        travel.append(seconds)
    figures["read v0 (time travel)"] = min(travel)
    assert old is not None and len(old) == len(full), len(old)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--keep", type=Path, default=None, help="write the tables here")
    parser.add_argument("--spark-master", default="local[*]")
    parser.add_argument("--spark-conf", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    if not args.csv.is_file():
        raise SystemExit(f"{args.csv}: no such file (the credit-card CSV from ../shared/data)")

    csv_seconds, full = timed(lambda: pd.read_csv(args.csv))
    batch = full.sample(frac=0.1, random_state=0).assign(Time=lambda f: f["Time"] + 172_800.0)
    print(
        f"data: {args.csv.name} {full.shape[0]:,} rows x {full.shape[1]} columns, "
        f"{full.memory_usage(deep=True).sum() / 2**20:.0f} MiB in pandas "
        f"(csv read {csv_seconds:.2f} s); append batch {len(batch):,} rows"
    )

    workdir = Path(tempfile.mkdtemp(prefix="delta_engines_")) if args.keep is None else args.keep
    try:
        figures: dict[str, dict[str, float]] = {}
        engines: dict[str, DeltaEngine] = {}

        figures["delta-rs"] = {"session": 0.0}
        engines["delta-rs"] = DeltaRsEngine(str(workdir / "delta-rs"))
        figures["delta-rs"] |= run_engine(engines["delta-rs"], full, batch, args.repeats)

        from mlops_assets.core.spark import spark_session
        from mlops_assets.core.spark_tables import SparkDeltaEngine

        extra = dict(item.split("=", 1) for item in args.spark_conf)
        session_seconds, spark = timed(
            lambda: spark_session(master=args.spark_master, extra_conf=extra)
        )
        figures["spark"] = {"session": session_seconds}
        engines["spark"] = SparkDeltaEngine(str(workdir / "spark"), spark)
        figures["spark"] |= run_engine(engines["spark"], full, batch, args.repeats)

        cross: dict[str, float] = {}
        for reader, writer in (("spark", "delta-rs"), ("delta-rs", "spark")):
            other = dataclasses.replace(engines[reader], root=engines[writer].root)
            cross[reader], theirs = timed(lambda other=other: other.read(TABLE, 0))
            pd.testing.assert_frame_equal(
                canonical(theirs), canonical(engines[writer].read(TABLE, 0))
            )
        figures["delta-rs"]["cross read v0"] = cross["delta-rs"]
        figures["spark"]["cross read v0"] = cross["spark"]
        spark.stop()
    finally:
        if args.keep is None:
            shutil.rmtree(workdir, ignore_errors=True)

    print(f"\n{'stage':<24}{'delta-rs s':>12}{'spark s':>12}{'spark/delta-rs':>16}")
    for stage in figures["delta-rs"]:
        rs, sp = figures["delta-rs"][stage], figures["spark"][stage]
        ratio = f"{sp / rs:.1f}x" if rs >= 0.005 else "-"
        print(f"{stage:<24}{rs:>12.3f}{sp:>12.3f}{ratio:>16}")
    print("\ncross read v0: each engine read the other's v0 table; rows identical (checked).")


if __name__ == "__main__":
    main()
