"""Serving in the suite: ``benchmarks/serving.py``'s measurement, turned into figures.

The serving script fits the credit-card pipeline, registers it, starts this server (logging
on and off) and ``mlflow models serve --env-manager local`` on that same version, and drives
them round-robin with single-row JSON (see its docstring). Here: ``reps`` rounds of 3 s at
concurrency 1, 8 and 32, the median round per target; requests/s, p50/p99 and the ratios
this / mlflow (target >= 10x at concurrency 8 with logging on), logging on / off (target
>= 0.9 at concurrency 8: logging costs 10 % of throughput or less), and the
single-row p50 at concurrency 1 with logging on (target <= 2 ms). Smoke mode: this server
with logging only (no-log server and mlflow serve skipped), 20 trees, concurrency 1 and 8,
one 0.5 s round.
"""

from __future__ import annotations

import argparse
import tempfile

import pandas as pd

from benchmarks import serving
from benchmarks.harness import Figure, Settings, Stats, skipped, timing

NAME = "serving"
REQUIRED = ("Time", "Class")


def options(settings: Settings) -> argparse.Namespace:
    """The serving script's arguments for this suite run."""
    if settings.smoke:
        return argparse.Namespace(
            concurrency=[1, 8],
            seconds=0.5,
            rounds=1,
            rows=3000,
            trees=20,
            targets=["ours+log"],
            baseline=None,
        )
    return argparse.Namespace(
        concurrency=[1, 8, 32],
        seconds=3.0,
        rounds=settings.timed_reps,
        rows=50_000,
        trees=200,
        targets=list(serving.TARGETS),
        baseline=None,
    )


def suite(settings: Settings) -> list[Figure]:
    """Requests/s and latency per target and concurrency, ratios against mlflow serve."""
    columns = pd.read_csv(settings.data, nrows=1).columns
    missing = [column for column in REQUIRED if column not in columns]
    if missing:
        raise ValueError(
            f"{settings.data}: the serving benchmark fits the credit-card pipeline and needs "
            f"column(s) {missing}"
        )
    serving.CSV = settings.data
    tempfile.tempdir = str(settings.workdir)  # the script's scratch folder goes with ours
    args = options(settings)
    results = serving.run(args)

    def stats(target: str, concurrency: int, key: str) -> Stats:
        return Stats(tuple(float(r[key]) for r in results[(target, concurrency)]))

    model = f"XGBoost {args.trees} trees fitted on {args.rows:,} rows"
    window = f"median of {args.rounds} round(s) x {args.seconds:g} s; {model}"
    figures = []
    for concurrency in args.concurrency:
        for target in args.targets:
            rps = stats(target, concurrency, "rps")
            figures.append(timing(NAME, f"{target} rps c={concurrency}", rps, "rps", note=window))
            p50 = stats(target, concurrency, "p50_ms")
            bound = 2.0 if (target, concurrency) == ("ours+log", 1) else None
            figures.append(timing(NAME, f"{target} p50 c={concurrency}", p50, "ms", bound))
        if "mlflow" in args.targets:
            for target in ("ours+log", "ours-nolog", "ours+log/inv"):
                bound = 10.0 if (target, concurrency) == ("ours+log", 8) else None
                figures.append(
                    round_ratio(
                        f"{target} / mlflow rps c={concurrency}",
                        stats(target, concurrency, "rps"),
                        stats("mlflow", concurrency, "rps"),
                        bound,
                    )
                )
        else:
            figures.append(
                skipped(NAME, f"ours / mlflow rps c={concurrency}", "skipped in smoke mode")
            )
        if "ours-nolog" not in args.targets:
            figures.append(
                skipped(NAME, f"logging on / off rps c={concurrency}", "skipped in smoke mode")
            )
            continue
        figures.append(
            round_ratio(
                f"logging on / off rps c={concurrency}",
                stats("ours+log", concurrency, "rps"),
                stats("ours-nolog", concurrency, "rps"),
                0.9 if concurrency == 8 else None,  # target: logging costs <= 10 % at c=8
            )
        )
    return figures


def round_ratio(name: str, mine: Stats, theirs: Stats, at_least: float | None = None) -> Figure:
    """Median over the rounds of each round's own ratio (rounds interleave the targets)."""
    pairs = zip(mine.values, theirs.values, strict=True)
    ratios = Stats(tuple(a / b if b else float("nan") for a, b in pairs))
    return Figure(
        NAME,
        name,
        ratios.median,
        "x",
        spread=ratios.spread if len(ratios.values) > 1 else None,
        target=None if at_least is None else f">= {at_least:g} x",
        met=None if at_least is None else ratios.median >= at_least,
        note=f"median of {len(ratios.values)} round(s)' own ratios",
        extra={"values": list(ratios.values)},
    )
