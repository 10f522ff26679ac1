"""The champion's drift report: its training rows against what the server saw since last time.

The reference is the train split (before resampling) of the exact ``training_splits``
version the champion was trained on, sampled to a cap; the current window is the
inference-log rows of :func:`~mlops_assets.core.monitoring.read_window`. The comparison is
:func:`~mlops_assets.core.drift.detect_drift` (Evidently per column + domain classifier).
A report with a verdict is logged to MLflow as a run tagged with the model version, holding
the HTML report, the per-column table and the scores as metrics.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from mlops_assets.core.drift import DriftResult, detect_drift
from mlops_assets.core.monitored_model import MonitoredModel, training_rows
from mlops_assets.core.monitoring import MonitoringError, WindowMode, read_window
from mlops_assets.core.registry import connect
from mlops_assets.core.tables import DeltaEngine, TableRef
from mlops_assets.core.tracking import TrackingTarget

RUN_KIND_TAG = "mlops.kind"


@dataclass(frozen=True)
class DriftSettings:
    """Knobs of a drift report.

    Attributes:
        reference_cap: Reference rows sampled (seeded) from the train split.
        min_rows: Fewest current rows for a verdict.
        exclude_columns: Features never compared (identifiers, monotonic columns).
        seed: Seed of the sampling and the domain classifier.
        window_mode: ``since_last_report`` or ``last_rows``.
        last_rows: Rows of a ``last_rows`` window.
        domain_classifier: Whether to train the domain classifier.
    """

    reference_cap: int = 50_000
    min_rows: int = 500
    exclude_columns: tuple[str, ...] = ("Time",)
    seed: int = 0
    window_mode: WindowMode = "since_last_report"
    last_rows: int = 5000
    domain_classifier: bool = True

    def __post_init__(self) -> None:
        """Refuse impossible settings, naming the field."""
        problems = [
            f"{name} must be at least 1, got {getattr(self, name)}"
            for name in ("reference_cap", "min_rows", "last_rows")
            if getattr(self, name) < 1
        ]
        if problems:
            raise MonitoringError("invalid drift settings: " + "; ".join(problems))


@dataclass(frozen=True)
class DriftReport:
    """A drift report of one model version.

    Attributes:
        model: The version monitored.
        reference: The ``training_splits`` version the reference rows came from.
        window_mode: How the current window was chosen.
        after_version: The window holds inference-log rows added after this version.
        to_version: The newest inference-log version read (-1: no log yet).
        columns: Columns compared.
        result: The verdict (or "not enough data").
        html_path: Where the HTML report was saved (None without a verdict).
        seconds: Wall time of the comparison.
        mlflow_run_id: The MLflow run holding the report (None until logged).
    """

    model: MonitoredModel
    reference: TableRef
    window_mode: WindowMode
    after_version: int
    to_version: int
    columns: tuple[str, ...]
    result: DriftResult
    html_path: str | None
    seconds: float
    mlflow_run_id: str | None = None


def build_drift_report(
    engine: DeltaEngine,
    model: MonitoredModel,
    settings: DriftSettings,
    after_version: int = -1,
    html_path: str | Path | None = None,
) -> DriftReport:
    """Compare the training rows of ``model`` with the current inference-log window.

    Args:
        engine: Delta engine holding ``training_splits`` and ``inference_log``.
        model: The monitored version (:func:`resolve_champion`).
        settings: Sampling, minimum rows, excluded columns, window.
        after_version: Start of a ``since_last_report`` window (exclusive; -1: all rows).
        html_path: Where to save Evidently's HTML report.

    Returns:
        The report (not yet logged to MLflow).

    Raises:
        MonitoringError: Nothing left to compare, or the training data cannot be read.
    """
    started = time.perf_counter()
    columns = [name for name in model.features if name not in settings.exclude_columns]
    if not columns:
        raise MonitoringError(
            f"{model.describe()}: every feature {list(model.features)} is excluded by "
            f"{list(settings.exclude_columns)}; nothing to compare"
        )
    reference, ref = training_rows(engine, model)
    window = read_window(engine, settings.window_mode, after_version, settings.last_rows)
    current = window.frame if window.rows else pd.DataFrame(columns=columns)
    result = detect_drift(
        reference,
        current,
        columns,
        min_rows=settings.min_rows,
        reference_cap=settings.reference_cap,
        seed=settings.seed,
        html_path=html_path,
        with_domain_classifier=settings.domain_classifier,
    )
    return DriftReport(
        model=model,
        reference=ref,
        window_mode=window.mode,
        after_version=window.after_version,
        to_version=window.to_version,
        columns=tuple(columns),
        result=result,
        html_path=str(html_path) if html_path is not None and result.enough_data else None,
        seconds=time.perf_counter() - started,
    )


def drift_table(result: DriftResult) -> str:
    """Markdown table of the per-column verdicts: method, score, threshold, drifted."""
    lines = ["| column | method | score | threshold | drifted |", "|---|---|---|---|---|"]
    lines += [
        f"| {c.column} | {c.method} | {c.score:.4g} | {c.threshold:.4g} | "
        f"{'**yes**' if c.drifted else 'no'} |"
        for c in result.columns
    ]
    return "\n".join(lines)


def report_tags(report: DriftReport, dagster_run_id: str = "") -> dict[str, str]:
    """Tags of the MLflow run of a report: model version and both data versions."""
    return {
        RUN_KIND_TAG: "drift_report",
        "model_name": report.model.name,
        "model_version": str(report.model.version),
        "reference_table": report.reference.uri,
        "reference_version": str(report.reference.version),
        "inference_log_from_version": str(report.after_version),
        "inference_log_version": str(report.to_version),
        "dagster_run_id": dagster_run_id,
    }


def log_drift_report(target: TrackingTarget, report: DriftReport, dagster_run_id: str = "") -> str:
    """Log a report with a verdict as a finished MLflow run; return the run id.

    Raises:
        MonitoringError: When the report has no verdict (nothing to log).
        TrackingUnavailableError: When MLflow cannot be reached.
    """
    from mlflow.entities import Metric

    result = report.result
    if not result.enough_data:
        raise MonitoringError(f"drift report has no verdict to log: {result.reason}")
    experiment_id = connect(target)
    client = target.client()
    run = client.create_run(
        experiment_id,
        run_name=f"drift_report-v{report.model.version}",
        tags=report_tags(report, dagster_run_id),
    )
    run_id = run.info.run_id
    try:
        now = int(time.time() * 1000)
        values = {
            "drift_share": result.drift_share,
            "drifted_columns": float(len(result.drifted_columns)),
            "current_rows": float(result.current_rows),
            "reference_rows": float(result.reference_rows),
        }
        if result.domain is not None:
            values["domain_auc"] = result.domain.roc_auc
        client.log_batch(run_id, metrics=[Metric(k, v, now, 0) for k, v in values.items()])
        if report.html_path is not None and Path(report.html_path).is_file():
            client.log_artifact(run_id, report.html_path, artifact_path="drift")
        with tempfile.TemporaryDirectory() as scratch:
            table = Path(scratch) / "columns.md"
            table.write_text(drift_table(result) + "\n")
            client.log_artifact(run_id, str(table), artifact_path="drift")
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        raise
    client.set_terminated(run_id, "FINISHED")
    return run_id
