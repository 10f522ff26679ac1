"""One command for the whole benchmark suite.

Runs the registered benchmarks in order (each in its own process), prints one table, writes
the JSON results and ``BENCHMARKS.md``. Exit code 1 when any benchmark failed.

Usage (from the repository root):
  .venv/bin/python -m benchmarks [--data PATH] [--target COL] [--positive LABEL] [--smoke]
      [--only a,b] [--reps N] [--warmup N] [--full] [--json PATH] [--markdown PATH]
      [--workdir DIR] [--note TEXT] [--timeout SECONDS] [--update]

The reports are rewritten after each benchmark; one stopped (``--timeout``) is reported as
failed, and those a stopped run did not reach as "not run in this session". ``--update``
re-measures only the ``--only`` benchmarks and keeps the others' figures from the existing
JSON report; every benchmark's section names the command, commit and time it was measured at.

``--smoke`` runs every benchmark on a 3,000-row sample with one repetition, no warm-up,
tiny budgets and short serving windows (Spark and ``mlflow models serve`` skipped), in
well under a minute; the test command runs it so the suite cannot rot.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shlex
import shutil
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from benchmarks import machine
from benchmarks.harness import DEFAULT_DATA, Settings, smoke_sample
from benchmarks.report import (
    BenchmarkRun,
    SuiteReport,
    console_table,
    not_run,
    read_runs,
    write_json,
    write_markdown,
)
from benchmarks.suite import BENCHMARKS, run_benchmark, select
from mlops_assets.core.paths import PROJECT_ROOT


def ordered(runs: list[BenchmarkRun]) -> tuple[BenchmarkRun, ...]:
    """``runs`` in the suite's order (kept and re-measured benchmarks interleave)."""
    return tuple(sorted(runs, key=lambda run: BENCHMARKS.index(run.name)))


def parse(argv: list[str]) -> argparse.Namespace:
    """The command line, checked (a missing data file or a bad number is named)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="labelled CSV (.gz ok)")
    parser.add_argument("--target", default="Class", help="label column of --data")
    parser.add_argument("--positive", default="1", help="positive label of --target")
    parser.add_argument("--smoke", action="store_true", help="tiny data, 1 rep, seconds")
    parser.add_argument("--only", default=None, help=f"comma list of {', '.join(BENCHMARKS)}")
    parser.add_argument("--reps", type=int, default=3, help="timed repetitions")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs first")
    parser.add_argument("--full", action="store_true", help="measure 100 tuning trials for real")
    parser.add_argument("--json", type=Path, default=PROJECT_ROOT / "benchmarks/results.json")
    parser.add_argument("--markdown", type=Path, default=PROJECT_ROOT / "BENCHMARKS.md")
    parser.add_argument("--workdir", type=Path, default=None, help="scratch folder (kept)")
    parser.add_argument("--note", action="append", default=[], help="line for the report top")
    parser.add_argument(
        "--timeout", type=float, default=None, help="seconds per benchmark before it is stopped"
    )
    parser.add_argument(
        "--update", action="store_true", help="keep the other benchmarks from the --json report"
    )
    args = parser.parse_args(argv)
    if not args.data.is_file():
        parser.error(f"--data {args.data}: no such file")
    if args.reps < 1 or args.warmup < 0:
        parser.error(f"--reps must be >= 1 and --warmup >= 0, got {args.reps} and {args.warmup}")
    try:
        args.names = select(args.only)
        args.kept = read_runs(args.json) if args.update else {}
    except ValueError as error:
        parser.error(str(error))
    if args.update and not args.only:
        parser.error("--update re-measures the --only benchmarks: name them")
    return args


def now() -> str:
    """The current UTC time, to the second."""
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def main(argv: list[str] | None = None) -> int:
    """Run the suite; return 1 when a benchmark failed, else 0."""
    argv = sys.argv[1:] if argv is None else argv
    args = parse(argv)
    command = shlex.join(["python", "-m", "benchmarks", *argv])
    started, facts = now(), machine.describe()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="mlops-benchmarks-"))
    workdir.mkdir(parents=True, exist_ok=True)
    settings = Settings(
        data=args.data.resolve(),
        target=args.target,
        positive=args.positive,
        workdir=workdir.resolve(),
        smoke=args.smoke,
        warmup=args.warmup,
        reps=args.reps,
        full=args.full,
    )
    print(f"{command}\nworkdir {workdir}; load average {os.getloadavg()[0]:.1f}", flush=True)

    def report(runs: list[BenchmarkRun]) -> SuiteReport:
        done = {run.name for run in runs}
        kept = [run for name, run in args.kept.items() if name not in args.names]
        updated = [
            f"This command re-measured {', '.join(args.names)}; "
            f"{', '.join(run.name for run in kept)} are kept from earlier commands (see each "
            "section for its command, commit and time)."
        ]
        notes = [
            *args.note,
            *(updated if kept else []),
            f"Load average (1 min) {facts['load_average_1m']} at the start and "
            f"{os.getloadavg()[0]:.2f} at the end on {facts['cores']} cores: absolute times "
            "drift with the load of a shared machine; side-by-side ratios are steadier.",
        ]
        return SuiteReport(
            command=command,
            started_utc=started,
            finished_utc=now(),
            machine=facts,
            settings={
                key: str(value) if isinstance(value, Path) else value
                for key, value in dataclasses.asdict(settings).items()
                if key != "workdir"
            }
            | {"data": str(args.data)},
            runs=ordered(
                [*kept, *runs, *(not_run(name) for name in args.names if name not in done)]
            ),
            notes=tuple(notes),
        )

    runs: list[BenchmarkRun] = []
    try:
        if settings.smoke:
            try:
                settings = dataclasses.replace(settings, data=smoke_sample(settings))
            except ValueError as error:
                print(f"python -m benchmarks: error: {error}", file=sys.stderr)
                return 2
        for name in args.names:
            print(f"[{name}] ...", flush=True)
            bench = dataclasses.replace(settings, workdir=settings.workdir / name)
            bench.workdir.mkdir(parents=True, exist_ok=True)
            say = lambda line: print(line, file=sys.stderr)  # noqa: E731
            provenance = {
                "command": command,
                "commit": facts["git_commit"],
                "started_utc": now(),
                "load_average_1m": round(os.getloadavg()[0], 2),
            }
            run = dataclasses.replace(
                run_benchmark(name, bench, say, args.timeout), provenance=provenance
            )
            runs.append(run)
            print(f"[{name}] {run.status} in {run.seconds:.1f} s", flush=True)
            write_json(report(runs), args.json)  # after each one: a stopped run keeps these
            write_markdown(report(runs), args.markdown)
    except KeyboardInterrupt:
        print("interrupted: the reports name the benchmarks not run", file=sys.stderr)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    final = report(runs)
    print()
    print(console_table(final.runs))
    write_json(final, args.json)
    write_markdown(final, args.markdown)
    print(f"\nwrote {args.json} and {args.markdown}")
    if final.failed or final.unfinished:
        print(f"FAILED: {', '.join(final.failed + final.unfinished)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
