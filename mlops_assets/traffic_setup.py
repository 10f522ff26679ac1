"""What ``mlops simulate`` sends and how it reports: traffic from a source, options, output.

The HTTP side is :mod:`mlops_assets.simulation`; the row generation, drift and counting
are pure, in :mod:`mlops_assets.core.traffic` and :mod:`mlops_assets.core.traffic_run`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable
from typing import Any, TextIO

from mlops_assets.core.holdout import Holdout
from mlops_assets.core.sources import FileSource, Source, SyntheticSource, TargetSpec, load_source
from mlops_assets.core.synthetic import DriftSpec
from mlops_assets.core.traffic import TrafficRows, replay_rows, synthetic_rows
from mlops_assets.core.traffic_drift import DriftInjection, parse_assignments
from mlops_assets.core.traffic_report import TrafficProgress, TrafficSummary
from mlops_assets.core.traffic_run import TrafficSettings

LOGGER = logging.getLogger(__name__)
DEFAULT_ROWS = 2000


def traffic_for_source(
    source: Source,
    rows: int | None,
    seed: int | None = None,
    drift: DriftInjection | None = None,
    positive_rate: float | None = None,
) -> TrafficRows:
    """Traffic no model trained on, from the same source the data assets ingest.

    A file or OpenML source replays its held-out tail (``DataSource.holdout_tail_fraction``)
    in order; the synthetic source (configured, or the offline fallback) draws fresh rows
    with a seed other than the training data's.

    Args:
        source: The configured source (``DataSource(...).source()``).
        rows: Rows to send (None: the whole tail; required for synthetic traffic).
        seed: Traffic seed (default: the training seed + 1000).
        drift: Optional drift injection.
        positive_rate: Synthetic only: share of fraud rows before any drift.

    Raises:
        ValueError: A synthetic seed equal to the training seed, no row count for synthetic
            traffic, or a tail too short.
        SourceError: A file/OpenML source without a hold-out, or an unreadable source.
    """
    generator = source if isinstance(source, SyntheticSource) else None
    if generator is None:
        tail = load_source(source, part="holdout")
        if tail.kind != "synthetic":
            return replay_rows(tail.frame, tail.target, tail.description, rows, drift, seed or 0)
        generator = getattr(source, "fallback", None) or SyntheticSource()
        LOGGER.warning("%s: traffic uses fresh synthetic rows", tail.fallback_reason)
    chosen = generator.seed + 1000 if seed is None else seed
    if chosen == generator.seed:
        raise ValueError(
            f"traffic seed {chosen} equals the training data's synthetic seed: the traffic "
            "would replay rows the model trained on; choose another --seed"
        )
    if rows is None:
        raise ValueError("synthetic traffic needs a row count (--rows or --duration)")
    rate = generator.positive_rate if positive_rate is None else positive_rate
    return synthetic_rows(rows, chosen, rate, drift)


def drift_from_options(options: dict[str, Any]) -> DriftInjection | None:
    """The drift the ``--drift-*`` / ``--fraud-pattern-change`` options ask for, or None."""
    shift = parse_assignments(options.get("drift_shift") or "", "--drift-shift")
    scale = parse_assignments(options.get("drift_scale") or "", "--drift-scale")
    change = options.get("fraud_pattern_change") or 0.0
    rate = options.get("drift_positive_rate")
    if not (shift or scale or change or rate is not None):
        return None
    spec = DriftSpec(shift=shift, scale=scale, fraud_pattern_change=change, positive_rate=rate)
    return DriftInjection(spec, after_rows=options.get("drift_after") or 0)


def configured_source() -> Source:
    """The ``data_source`` resource of the current profile (what the data assets ingest)."""
    from mlops_assets.definitions import build_resources

    return build_resources()["data_source"].source()


def source_from_options(options: dict[str, Any]) -> Source:
    """The source ``--source`` names (``configured`` reads the definitions' resource)."""
    kind = options.get("source", "configured")
    if kind == "synthetic":
        return SyntheticSource()
    if kind == "file":
        if not options.get("path"):
            raise ValueError("--source file needs --path")
        return FileSource(
            path=options["path"],
            target=TargetSpec(options["target_column"], options["positive_label"]),
            delimiter=options["delimiter"],
            holdout=Holdout(options["holdout_fraction"], options["order_column"]),
        )
    return configured_source()


def plan_from_options(options: dict[str, Any]) -> tuple[TrafficRows, TrafficSettings]:
    """Traffic rows and settings from ``mlops simulate``'s options.

    Raises:
        ValueError: Any option out of range, named (SourceError for an unreadable source).
    """
    settings = TrafficSettings(
        rate=options["rate"],
        batch_rows=options["batch_rows"],
        concurrency=options["concurrency"],
        feedback_share=options["feedback_share"],
        feedback_delay_s=options["feedback_delay"],
        duration_s=options["duration"],
        seed=options["seed"] or 0,
        progress_interval_s=options["progress_interval"],
    )
    rows = options["rows"]
    if rows is not None and rows < 1:
        raise ValueError(f"--rows must be >= 1, got {rows}")
    source = source_from_options(options)
    wanted = rows
    if wanted is None and options["duration"] is not None:
        wanted = max(1, int(options["rate"] * options["duration"]))
    if wanted is None and _is_synthetic(source):
        wanted = DEFAULT_ROWS
    traffic = traffic_for_source(
        source, wanted, options["seed"], drift_from_options(options), options["positive_rate"]
    )
    return traffic, settings


def _is_synthetic(source: Source) -> bool:
    return isinstance(source, SyntheticSource)


def progress_printer(stream: TextIO) -> Callable[[TrafficProgress], None]:
    """A progress callback: one refreshed line on a terminal, periodic lines otherwise."""
    terminal = stream.isatty()

    def show(progress: TrafficProgress) -> None:
        if terminal:
            stream.write("\r\033[K" + progress.line())
        else:
            stream.write(progress.line() + "\n")
        stream.flush()

    return show


def summary_json(summary: TrafficSummary) -> str:
    """The summary as JSON (version keys as strings)."""
    facts = dataclasses.asdict(summary)
    facts["versions"] = {str(key): value for key, value in summary.versions.items()}
    facts["achieved_rate"] = summary.achieved_rate
    return json.dumps(facts, indent=2, default=str)
