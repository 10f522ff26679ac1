"""Monitoring assets (group ``monitoring``): drift report, online performance, labeled feedback.

``drift_report`` and ``model_performance`` watch the ``champion`` version; their checks grade
drift share, domain-classifier AUC and performance drop against warn and error levels
(never blocking). ``labeled_feedback`` accumulates served rows with their true labels, which
``transactions`` appends to the silver table so retraining learns from production.
"""

from dataclasses import replace
from pathlib import Path
from typing import Literal

import dagster as dg
from pydantic import Field

from mlops_assets.constants import FEEDBACK_TABLE, INFERENCE_LOG_TABLE, MONITORING_GROUP
from mlops_assets.core.drift_report import (
    DriftReport,
    DriftSettings,
    build_drift_report,
    drift_table,
    log_drift_report,
)
from mlops_assets.core.feedback import update_labeled_feedback
from mlops_assets.core.monitored_model import resolve_champion
from mlops_assets.core.monitoring import grade, next_window_start
from mlops_assets.core.paths import state_paths
from mlops_assets.core.performance import (
    PerformanceReport,
    measure_performance,
    performance_table,
)
from mlops_assets.core.registry import run_url
from mlops_assets.core.tables import TableRef
from mlops_assets.resources import Lakehouse, MlflowRegistry


class DriftReportConfig(dg.Config):
    """Reference sample, window and minimum rows of the drift report."""

    reference_cap: int = Field(default=50_000, description="Training rows sampled (seeded).")
    min_rows: int = Field(default=500, description="Fewest current rows for a verdict.")
    exclude_columns: list[str] = Field(
        default=["Time"], description="Features never compared (identifiers, monotonic ones)."
    )
    seed: int = Field(default=0, description="Seed of the sampling and the domain classifier.")
    window: Literal["since_last_report", "last_rows"] = Field(
        default="since_last_report",
        description="since_last_report: inference-log rows added since the previous report "
        "with a verdict; last_rows: the newest last_rows rows.",
    )
    last_rows: int = Field(default=5000, description="Window size of the last_rows mode.")
    domain_classifier: bool = Field(default=True, description="Train the domain classifier.")
    report_dir: str | None = Field(
        default=None, description="Folder of the HTML reports (default: <state>/reports/drift)."
    )


class ModelPerformanceConfig(dg.Config):
    """Window and minimums of the online performance."""

    min_labeled_rows: int = Field(default=200, description="Fewest labeled rows for a verdict.")
    min_positives: int = Field(default=1, description="Fewest labeled positives for a verdict.")
    window_rows: int = Field(
        default=5000, description="Newest labeled rows of the champion scored (0: all)."
    )
    primary_metric: Literal["kappa", "f1", "pr_auc"] = Field(
        default="kappa", description="The metric whose drop the check and the sensor use."
    )


class DriftChecksConfig(dg.Config):
    """Warn and error levels of the drift checks."""

    drift_share_warn: float = Field(default=0.3, description="Drift share that warns.")
    drift_share_error: float = Field(default=0.5, description="Drift share that errors.")
    domain_auc_warn: float = Field(default=0.7, description="Domain classifier AUC that warns.")
    domain_auc_error: float = Field(default=0.8, description="Domain classifier AUC that errors.")


class PerformanceCheckConfig(dg.Config):
    """Warn and error levels of the performance-drop check."""

    drop_warn: float = Field(default=0.1, description="Drop of the primary metric that warns.")
    drop_error: float = Field(default=0.25, description="Drop of the primary metric that errors.")


def _previous_metadata(context: dg.AssetExecutionContext) -> dict[str, object] | None:
    event = context.instance.get_latest_materialization_event(context.asset_key)
    if event is None or event.asset_materialization is None:
        return None
    return {key: value.value for key, value in event.asset_materialization.metadata.items()}


def _drift_metadata(report: DriftReport, link: str | None) -> dict[str, object]:
    result, domain = report.result, report.result.domain
    metadata: dict[str, object] = {
        "enough_data": result.enough_data,
        "reason": result.reason,
        "drift_share": result.drift_share,
        "drifted_columns": dg.MetadataValue.json(list(result.drifted_columns)),
        "columns": dg.MetadataValue.md(drift_table(result)),
        "champion_version": report.model.version,
        "model_name": report.model.name,
        "reference_table": report.reference.uri,
        "reference_version": report.reference.version,
        "reference_rows": result.reference_rows,
        "current_rows": result.current_rows,
        "window_mode": report.window_mode,
        "inference_log_from_version": report.after_version,
        "inference_log_version": report.to_version,
        "seconds": round(report.seconds, 2),
    }
    if domain is not None:
        metadata["domain_auc"] = domain.roc_auc
        metadata["domain_top_features"] = dg.MetadataValue.json(dict(domain.top_features))
    if report.html_path:
        metadata["html_report"] = dg.MetadataValue.path(report.html_path)
    if link:
        metadata["mlflow_run"] = dg.MetadataValue.url(link)
    return metadata


@dg.asset(
    group_name=MONITORING_GROUP,
    kinds={"evidently", "mlflow", "deltalake"},
    deps=[INFERENCE_LOG_TABLE],
)
def drift_report(
    context: dg.AssetExecutionContext,
    config: DriftReportConfig,
    lakehouse: Lakehouse,
    mlflow: MlflowRegistry,
) -> dg.Output[DriftReport]:
    """Data drift of recent traffic vs the champion's training rows (Evidently + domain model)."""
    target = mlflow.target()
    model = resolve_champion(target, mlflow.model_name)
    settings = DriftSettings(
        reference_cap=config.reference_cap,
        min_rows=config.min_rows,
        exclude_columns=tuple(config.exclude_columns),
        seed=config.seed,
        window_mode=config.window,
        last_rows=config.last_rows,
        domain_classifier=config.domain_classifier,
    )
    folder = Path(config.report_dir or state_paths().root / "reports" / "drift")
    html = folder / f"drift_report_v{model.version}_{context.run_id[:8]}.html"
    after = next_window_start(_previous_metadata(context))
    report = build_drift_report(lakehouse.tables(), model, settings, after, html)
    link = None
    if report.result.enough_data:
        report = replace(report, mlflow_run_id=log_drift_report(target, report, context.run_id))
        experiment_id = target.client().get_run(report.mlflow_run_id).info.experiment_id
        link = run_url(target, experiment_id, report.mlflow_run_id, mlflow.ui_url)
    context.log.info(f"{model.describe()}: {report.result.reason}")
    return dg.Output(report, metadata=_drift_metadata(report, link))


DRIFT_REPORT_KEY = drift_report.key


@dg.asset(
    group_name=MONITORING_GROUP,
    kinds={"scikitlearn", "mlflow", "deltalake"},
    deps=[INFERENCE_LOG_TABLE, FEEDBACK_TABLE],
)
def model_performance(
    context: dg.AssetExecutionContext,
    config: ModelPerformanceConfig,
    lakehouse: Lakehouse,
    mlflow: MlflowRegistry,
) -> dg.Output[PerformanceReport]:
    """Kappa, F1 and PR AUC of the champion's labeled answers vs its test metrics."""
    model = resolve_champion(mlflow.target(), mlflow.model_name)
    report = measure_performance(
        lakehouse.tables(),
        model.name,
        model.version,
        model.test_metrics,
        min_rows=config.min_labeled_rows,
        min_positives=config.min_positives,
        primary_metric=config.primary_metric,
        window_rows=config.window_rows,
    )
    result = report.performance
    context.log.info(f"{model.describe()}: {result.reason}")
    return dg.Output(
        report,
        metadata={
            "enough_data": result.enough_data,
            "reason": result.reason,
            "champion_version": model.version,
            "model_name": model.name,
            "labeled_rows": result.rows,
            "positives": result.positives,
            "primary_metric": result.primary_metric,
            "performance_drop": result.drop,
            **{f"online_{name}": value for name, value in result.online.items()},
            **{f"test_{name}": value for name, value in result.baseline.items()},
            "metrics": dg.MetadataValue.md(performance_table(result)),
            "inference_log_version": report.inference_log_version,
            "feedback_version": report.feedback_version,
        },
    )


@dg.asset(
    group_name=MONITORING_GROUP,
    kinds={"deltalake", "pandas"},
    deps=[INFERENCE_LOG_TABLE, FEEDBACK_TABLE],
)
def labeled_feedback(
    context: dg.AssetExecutionContext, lakehouse: Lakehouse
) -> dg.Output[TableRef | None]:
    """Served rows joined with their true labels (Delta), one row per labeled request."""
    update = update_labeled_feedback(lakehouse.tables())
    context.log.info(f"appended {update.appended} labeled rows; {update.total} in total")
    ref = update.ref
    return dg.Output(
        ref,
        metadata={
            "delta_version": ref.version if ref else -1,
            "appended_rows": update.appended,
            "appended_positives": update.positives,
            "dagster/row_count": update.total,
            "inference_log_version": update.inference_log_version,
            "feedback_version": update.feedback_version,
            **({"table_uri": dg.MetadataValue.path(ref.uri)} if ref else {}),
        },
    )


MODEL_PERFORMANCE_KEY = model_performance.key


def _graded(
    asset: dg.AssetKey, check: str, value: float | None, levels: tuple[float, float], why: str
) -> dg.AssetCheckResult:
    """Pass below the warn level; fail with WARN severity from it, ERROR from the error level."""
    if value is None:
        return dg.AssetCheckResult(
            asset_key=asset, check_name=check, passed=True, description=f"no verdict: {why}"
        )
    (warn, error), level = levels, grade(value, *levels)
    return dg.AssetCheckResult(
        asset_key=asset,
        check_name=check,
        passed=level == "pass",
        severity=dg.AssetCheckSeverity.ERROR if level == "error" else dg.AssetCheckSeverity.WARN,
        description=f"{check} {value:.3f}: {level} (warn at {warn:g}, error at {error:g})",
        metadata={"value": value, "warn_at": warn, "error_at": error, "level": level},
    )


@dg.multi_asset_check(
    specs=[
        dg.AssetCheckSpec("drift_share", asset=drift_report, blocking=False),
        dg.AssetCheckSpec("domain_classifier_auc", asset=drift_report, blocking=False),
    ]
)
def drift_report_checks(config: DriftChecksConfig, drift_report: DriftReport):
    """Drift share and domain-classifier AUC within their warn and error levels."""
    result, key = drift_report.result, DRIFT_REPORT_KEY
    share = result.drift_share if result.enough_data else None
    auc = result.domain.roc_auc if result.enough_data and result.domain else None
    no_auc = "domain classifier disabled" if result.enough_data else result.reason
    share_levels = (config.drift_share_warn, config.drift_share_error)
    yield _graded(key, "drift_share", share, share_levels, result.reason)
    auc_levels = (config.domain_auc_warn, config.domain_auc_error)
    yield _graded(key, "domain_classifier_auc", auc, auc_levels, no_auc)


@dg.asset_check(asset=model_performance, blocking=False)
def performance_drop(
    config: PerformanceCheckConfig, model_performance: PerformanceReport
) -> dg.AssetCheckResult:
    """Drop of the primary metric (test minus online) within its warn and error levels."""
    result = model_performance.performance
    value = result.drop if result.enough_data else None
    levels = (config.drop_warn, config.drop_error)
    return _graded(MODEL_PERFORMANCE_KEY, "performance_drop", value, levels, result.reason)
