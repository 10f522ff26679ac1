"""Ingestion benchmark: the real credit-card CSV through every data stage, per Delta engine.

Stages (each timed, with the peak RSS of this process and its children, e.g. the Spark JVM,
during the stage and its rise over the RSS at the stage's start; earlier frames stay alive,
so peaks accumulate):
  csv_read      pyarrow reads the gzip CSV into pandas (FileSource)
  raw_write     bronze Delta table ``raw_transactions`` (overwrite, new version)
  silver        read raw at its version, type, label, dedup, write ``transactions``
  splits        read transactions at its version, stratified split, write ``training_splits``
  resampled     read the train split, resample (ADASYN by default), write ``resampled_train``
  read@vN       read a table version back into pandas (latest and time travel to v0)

``csv_to_delta`` = csv_read + raw_write (target <= 5 s on the 2-core machine) and every
read (target <= 1 s) are summarised at the end, per engine, with ratios against the first.

In the suite (``suite``, delta-rs): the stages once, then CSV -> Delta and every read
repeated (warm-up + reps, median and spread) against the targets.

Usage:
  .venv/bin/python -m benchmarks.ingestion [--engines delta-rs,spark] [--csv PATH]
      [--target Class] [--resampling adasyn|smote|none] [--keep DIR]

Add an engine by adding a factory to ``ENGINES`` (name -> callable(root) -> DeltaEngine).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.harness import Figure, Settings, repeat, timing
from benchmarks.memory import PeakRss
from mlops_assets.core.ingestion import refine_transactions, write_raw
from mlops_assets.core.paths import PROJECT_ROOT, state_paths
from mlops_assets.core.resampling import resample_table
from mlops_assets.core.sources import FileSource, TargetSpec, load_source
from mlops_assets.core.splits import SplitFractions, split_table
from mlops_assets.core.tables import DeltaEngine, DeltaRsEngine

DEFAULT_CSV = PROJECT_ROOT.parent / "shared" / "data" / "creditcard.csv.gz"


def _delta_rs(root: str) -> DeltaEngine:
    return DeltaRsEngine(root=root)


def _spark(root: str) -> DeltaEngine:
    from mlops_assets.core.spark_tables import SparkDeltaEngine, spark_session

    session = spark_session(ivy_dir=str(state_paths().cache / "ivy"))
    return SparkDeltaEngine(root=root, spark=session)


ENGINES: dict[str, Callable[[str], DeltaEngine]] = {"delta-rs": _delta_rs, "spark": _spark}


@dataclass
class Figures:
    engine: str
    rows: list[tuple[str, float, float, str]] = field(default_factory=list)
    echo: bool = True

    def seconds(self, stage: str) -> float:
        return next(seconds for name, seconds, _, _ in self.rows if name == stage)


@contextmanager
def stage(figures: Figures, monitor: PeakRss, name: str, note: Callable[[], str] = str):
    monitor.reset()
    before = monitor.peak
    started = time.perf_counter()
    yield
    seconds = time.perf_counter() - started
    figures.rows.append((name, seconds, monitor.peak, note()))
    if figures.echo:
        print(
            f"  {name:<28} {seconds:7.2f} s   peak RSS {monitor.peak:6.0f} MiB "
            f"(+{monitor.peak - before:5.0f})   {note()}"
        )


TABLE_READS = (
    ("raw_transactions", 0),
    ("raw_transactions", None),
    ("transactions", 0),
    ("training_splits", 0),
    ("resampled_train", 0),
)
"""The reads timed after the stages: v0 of raw is time travel (a second version exists)."""


def read_label(table: str, version: int | None) -> str:
    return f"read {table}@{'latest' if version is None else f'v{version}'}"


def run_engine(
    name: str,
    csv: Path,
    root: Path,
    method: str,
    monitor: PeakRss,
    target: TargetSpec | None = None,
    echo: bool = True,
) -> Figures:
    target = target or TargetSpec("Class", "1")
    figures = Figures(name, echo=echo)
    if echo:
        print(f"\n[{name}] tables under {root}")
    with stage(figures, monitor, "imports"):  # sklearn/imblearn import once, ~2 s cold
        import imblearn.over_sampling  # noqa: F401
        import sklearn.model_selection  # noqa: F401
    with stage(figures, monitor, "engine_start"):
        engine = ENGINES[name](str(root))
    source = FileSource(str(csv), target)
    out: dict = {}
    with stage(figures, monitor, "csv_read", lambda: f"{len(out['loaded'].frame):,} rows"):
        out["loaded"] = load_source(source)
    with stage(figures, monitor, "raw_write", lambda: out["raw"].ref.describe()):
        out["raw"] = write_raw(engine, out["loaded"])
    del out["loaded"]
    with stage(figures, monitor, "silver", lambda: f"{out['silver'].rows:,} rows"):
        out["silver"] = refine_transactions(
            engine, out["raw"].ref, source.target, {}, origin=str(csv)
        )
    with stage(figures, monitor, "splits", lambda: f"{out['splits'].sizes}"):
        out["splits"] = split_table(engine, out["silver"].ref, SplitFractions(), seed=42)
    with stage(figures, monitor, "resampled", lambda: _describe_resampling(out["resampled"])):
        out["resampled"] = resample_table(engine, out["splits"].ref, method=method, seed=42)
    # A second raw version so that reading v0 is real time travel.
    write_raw(engine, load_source(source))
    for table, version in TABLE_READS:
        label = read_label(table, version)
        with stage(figures, monitor, label, lambda: f"{len(out['frame']):,} rows"):
            out["frame"] = engine.read(table, version)
    return figures


def suite(settings: Settings) -> list[Figure]:
    """delta-rs: every stage once (seconds, peak RSS), then CSV -> Delta and reads repeated."""
    target = TargetSpec(settings.target, settings.positive)
    monitor = PeakRss()
    root = settings.workdir / "delta-rs"
    try:
        staged = run_engine("delta-rs", settings.data, root, "adasyn", monitor, target, False)
    finally:
        monitor.stop()
    figures = [
        Figure(
            "ingestion",
            f"stage {name}",
            seconds,
            "s",
            note=f"{note}; peak RSS {peak:.0f} MiB".lstrip("; "),
            extra={"peak_rss_mib": peak},
        )
        for name, seconds, peak, note in staged.rows
        if not name.startswith("read ")
    ]
    engine = DeltaRsEngine(str(settings.workdir / "csv-to-delta"))
    source = FileSource(str(settings.data), target)
    stats, written = repeat(lambda: write_raw(engine, load_source(source)), settings)
    figures.append(
        timing(
            "ingestion",
            "CSV -> Delta (read + write)",
            stats,
            target=5.0,
            note=f"{written.rows:,} rows x {len(written.columns)} columns, gzip CSV, delta-rs",
        )
    )
    engine = DeltaRsEngine(str(root))
    slowest = None
    for table, version in TABLE_READS:
        stats, frame = repeat(lambda t=table, v=version: engine.read(t, v), settings)
        travel = "time travel, " if (table, version) == ("raw_transactions", 0) else ""
        figure = timing(
            "ingestion",
            read_label(table, version),
            stats,
            target=1.0,
            note=f"{travel}{len(frame):,} rows into pandas",
        )
        figures.append(figure)
        slowest = figure if slowest is None or figure.value > slowest.value else slowest
    figures.append(
        Figure(
            "ingestion",
            "slowest version read",
            slowest.value,
            "s",
            spread=slowest.spread,
            target="<= 1 s",
            met=slowest.met,
            note=slowest.name,
        )
    )
    return figures


def _describe_resampling(written) -> str:
    result = written.result
    return f"{result.method}: {result.rows_before:,} -> {result.rows_after:,} rows"


def summarise(all_figures: list[Figures]) -> None:
    print("\nsummary (seconds; ratio = engine / first engine)")
    first = all_figures[0]
    for figures in all_figures:
        csv_to_delta = figures.seconds("csv_read") + figures.seconds("raw_write")
        reads = [seconds for name, seconds, _, _ in figures.rows if name.startswith("read ")]
        base = first.seconds("csv_read") + first.seconds("raw_write")
        print(
            f"  {figures.engine:<10} csv->delta {csv_to_delta:6.2f} s (target <= 5, "
            f"x{csv_to_delta / base:.2f})   slowest read {max(reads):5.2f} s (target <= 1)   "
            f"peak RSS {max(peak for _, _, peak, _ in figures.rows):6.0f} MiB"
        )
    if len(all_figures) > 1:
        print("\nper stage ratio vs", first.engine)
        for name, seconds, _, _ in first.rows:
            ratios = "  ".join(
                f"{figures.engine} "
                + (f"x{figures.seconds(name) / seconds:.2f}" if seconds >= 0.01 else "n/a")
                + f" ({figures.seconds(name):.2f} s)"
                for figures in all_figures[1:]
            )
            print(f"  {name:<28} {ratios}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", default="delta-rs", help=f"comma list of {list(ENGINES)}")
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    parser.add_argument("--target", default="Class", help="label column (positive label 1)")
    parser.add_argument("--resampling", default="adasyn", choices=["adasyn", "smote", "none"])
    parser.add_argument("--keep", type=Path, default=None, help="keep the tables in this folder")
    args = parser.parse_args()
    names = [name.strip() for name in args.engines.split(",") if name.strip()]
    unknown = [name for name in names if name not in ENGINES]
    if unknown:
        parser.error(f"unknown engine(s) {unknown}; choose from {list(ENGINES)}")
    print(f"ingestion benchmark: {args.csv} ({args.csv.stat().st_size / 2**20:.0f} MiB)")
    monitor = PeakRss()
    scratch = Path(tempfile.mkdtemp(prefix="bench-ingestion-"))
    try:
        all_figures = [
            run_engine(
                name,
                args.csv,
                (args.keep or scratch) / name,
                args.resampling,
                monitor,
                TargetSpec(args.target, "1"),
            )
            for name in names
        ]
    finally:
        monitor.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    summarise(all_figures)


if __name__ == "__main__":
    main()
