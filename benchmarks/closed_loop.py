"""Closed-loop latency: from the drift onset in the traffic to the new version answering.

Runs the whole loop of ``mlops demo`` (real server, real Dagster daemon, traffic simulator)
``--repeats`` times, each on a fresh state folder, and prints where the time goes after the
drift starts: the first monitoring report on drifted rows, the drift sensor's retraining
run, its promotion decision, the end of the run and the first request the new version
answers. Figures on a shared machine are noisy; compare runs taken side by side.

In the suite (``suite``): one loop (``--full``: ``reps`` loops, median) with the budget of
``LoopSettings()`` -- what ``mlops demo`` uses -- on the synthetic source (the loop trains
on its own generated or OpenML data, not on the suite's file); the figures name the budget.
Smoke mode skips it: the same loop runs in ``mlops_assets_tests/e2e/test_closed_loop.py``.
This script's own defaults are smaller (8,000 rows, 2 trials) for quick looks.

    .venv/bin/python -m benchmarks.closed_loop --repeats 1 --rows 8000
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

from benchmarks.harness import Figure, Settings, Stats, skipped, timing
from mlops_assets.cli import prepare_dagster_home
from mlops_assets.core.paths import state_paths
from mlops_assets.loop import LoopSettings, run_loop

NAME = "closed_loop"
STAGES = (
    "monitoring report after drift",
    "retraining run created",
    "decision recorded",
    "retraining run finished",
    "new version answering",
)


def run_once(settings: LoopSettings, say: Callable[[str], None], parent: Path | None = None):
    """One whole loop on a fresh state folder; returns (its summary, total seconds)."""
    with tempfile.TemporaryDirectory(prefix="closed-loop-", dir=parent) as folder:
        paths = state_paths(Path(folder) / "state").ensure()
        prepare_dagster_home(paths)
        started = time.perf_counter()
        summary = run_loop(paths, settings, say)
        return summary, time.perf_counter() - started


def budget(settings: LoopSettings) -> str:
    """The loop's budget in words, for the report."""
    return (
        f"{settings.source} source, {settings.rows:,} training rows, {settings.max_evals} "
        f"trial(s) first / {settings.retrain_max_evals} retraining, {settings.normal_rows:,} "
        f"normal + {settings.drifted_rows:,} drifted traffic rows (LoopSettings defaults)"
    )


def suite(settings: Settings) -> list[Figure]:
    """Seconds from the drift onset to each stage, up to the new version answering."""
    if settings.smoke:
        return [
            skipped(
                NAME,
                "onset -> new version answering",
                "skipped in smoke mode (the loop runs in the e2e test test_closed_loop.py)",
            )
        ]
    warnings.filterwarnings("ignore", module=r"(dagster|mlflow)(\.|$)")
    loop = LoopSettings(source="synthetic")
    runs = [
        run_once(loop, lambda line: None, settings.workdir)
        for _ in range(settings.timed_reps if settings.full else 1)
    ]
    summary = runs[-1][0]
    note = f"{len(runs)} loop(s); {budget(loop)}"
    figures = [
        Figure(
            NAME,
            "loop completed",
            float(all(run.completed for run, _ in runs)),
            "",
            target="completed",
            met=all(run.completed for run, _ in runs),
            note=f"{summary.reason}; trigger {summary.trigger or 'none'}; decision "
            f"{summary.decision.get('decision', 'none')}",
        )
    ]
    for stage in (*STAGES, "total"):
        values = [run.timings[stage] for run, _ in runs if stage in run.timings]
        if stage == "total":
            values = [total for _, total in runs]
        if values:
            label = "whole loop" if stage == "total" else f"onset -> {stage}"
            figures.append(
                timing(NAME, label, Stats(tuple(values)), note=note if stage == STAGES[-1] else "")
            )
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--rows", type=int, default=8000, help="synthetic training rows")
    parser.add_argument("--positive-rate", type=float, default=0.02)
    parser.add_argument("--max-evals", type=int, default=2)
    parser.add_argument("--normal-rows", type=int, default=2000)
    parser.add_argument("--drifted-rows", type=int, default=3000)
    parser.add_argument("--monitor-max-wait", type=float, default=20.0)
    parser.add_argument("--verbose", action="store_true", help="print the loop's progress")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", module=r"(dagster|mlflow)(\.|$)")
    settings = LoopSettings(
        source="synthetic",
        rows=args.rows,
        positive_rate=args.positive_rate,
        max_evals=args.max_evals,
        retrain_max_evals=args.max_evals,
        normal_rows=args.normal_rows,
        drifted_rows=args.drifted_rows,
        monitor_max_wait_s=args.monitor_max_wait,
    )
    say = (lambda line: print(line, file=sys.stderr)) if args.verbose else (lambda line: None)
    results: list[dict[str, float]] = []
    for repeat in range(1, args.repeats + 1):
        summary, total = run_once(settings, say)
        decision = summary.decision.get("decision", "none")
        state = "completed" if summary.completed else "INCOMPLETE"
        print(f"run {repeat}: {state} in {total:.0f} s")
        print(f"  {summary.reason}")
        print(f"  trigger: {summary.trigger or 'none'}; decision: {decision}")
        for step in summary.steps:
            print(f"  step {step.name:<34} {step.seconds:7.1f} s")
        for stage in STAGES:
            if stage in summary.timings:
                print(f"  onset -> {stage:<31} {summary.timings[stage]:7.1f} s")
        results.append({**summary.timings, "total": total})
    if len(results) > 1:
        print(f"median over {len(results)} runs:")
        for stage in (*STAGES, "total"):
            values = [result[stage] for result in results if stage in result]
            if values:
                print(f"  {stage:<40} {statistics.median(values):7.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
