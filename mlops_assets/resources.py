"""Typed Dagster resources: the lakehouse (Delta engine), the data source, MLflow, serving.

Each resource is a thin, configurable handle onto a ``core`` object; which engine or
server a resource points at is decided in ``definitions.py`` and nowhere else.
"""

from __future__ import annotations

from typing import Any, Literal

import dagster as dg
from pydantic import Field

from mlops_assets.constants import EXPERIMENT_NAME, REGISTERED_MODEL_NAME
from mlops_assets.core import sources
from mlops_assets.core.holdout import Holdout
from mlops_assets.core.paths import state_paths
from mlops_assets.core.sensors import RetrainPolicy
from mlops_assets.core.synthetic import POSITIVE_RATE, DriftSpec
from mlops_assets.core.tables import DeltaEngine, DeltaRsEngine
from mlops_assets.core.tracking import TrackingTarget
from mlops_assets.serving.client import Prediction, ReloadResult, ServingClient


class Lakehouse(dg.ConfigurableResource):
    """Where the Delta tables live and which engine reads and writes them."""

    root: str = Field(description="Folder or object-store URI holding one folder per table.")
    engine: Literal["delta-rs", "spark"] = Field(
        default="delta-rs",
        description="delta-rs (embedded, no JVM) or spark (delta-spark, local or cluster).",
    )
    spark_master: str = Field(default="local[*]", description="spark.master for the Spark engine.")
    spark_remote: str | None = Field(
        default=None, description="Spark Connect URL (sc://host:port); overrides spark_master."
    )
    ivy_dir: str | None = Field(
        default=None, description="Ivy cache for the Delta jars (default: the state cache)."
    )
    spark_conf: dict[str, str] = Field(
        default={}, description="Further Spark settings (spark.*), applied last."
    )

    def spark_session(self) -> Any:
        """Return the Delta-enabled Spark session this configuration names (started lazily).

        The session is built by ``core.spark`` rather than ``dagster_pyspark``'s resources:
        those call ``SparkSession.builder.getOrCreate()``, which in pyspark 4 switches the whole
        process into Connect mode when ``spark.remote`` is set, and silently reuses a running
        session that lacks Delta; ``spark_session`` handles both.
        """
        from mlops_assets.core.spark import spark_session

        return spark_session(
            master=self.spark_master,
            remote=self.spark_remote,
            ivy_dir=self.ivy_dir,
            extra_conf=self.spark_conf,
        )

    def tables(self) -> DeltaEngine:
        """Return the configured Delta engine."""
        if self.engine == "delta-rs":
            return DeltaRsEngine(root=self.root)
        from mlops_assets.core.spark_tables import SparkDeltaEngine

        return SparkDeltaEngine(root=self.root, spark=self.spark_session())


class MlflowRegistry(dg.ConfigurableResource):
    """MLflow tracking server and model registry.

    This wraps ``MlflowClient`` instead of using ``dagster_mlflow.mlflow_tracking``: that one
    is a legacy function-style resource bound to op runs, and its run-finished hook ends
    MLflow runs early, while the assets here open parent and nested runs they control.
    """

    tracking_uri: str = Field(description="MLflow tracking URI (sqlite:///..., http://...).")
    registry_uri: str | None = Field(default=None, description="Registry URI; tracking if unset.")
    artifact_root: str | None = Field(
        default=None, description="Artifact root used when the experiment is first created."
    )
    experiment_name: str = Field(default=EXPERIMENT_NAME, description="Experiment for runs.")
    model_name: str = Field(
        default=REGISTERED_MODEL_NAME, description="Registered model this system manages."
    )
    ui_url: str | None = Field(
        default=None,
        description="MLflow UI base URL for run links; the tracking URI when it is http(s), "
        "else http://127.0.0.1:5000 (where `mlflow ui` serves a local store).",
    )

    def target(self) -> TrackingTarget:
        """Return the core tracking target for this configuration."""
        return TrackingTarget(
            tracking_uri=self.tracking_uri,
            registry_uri=self.registry_uri,
            experiment_name=self.experiment_name,
            artifact_root=self.artifact_root,
        )


class DataSource(dg.ConfigurableResource):
    """Where raw transactions come from: OpenML (default), a local file, or synthetic.

    The OpenML source probes the network for ``openml_timeout_s`` seconds; offline it falls
    back to the synthetic generator (same schema as the default credit-card data) and the
    asset metadata says so.
    """

    kind: Literal["openml", "file", "synthetic"] = Field(
        default="openml", description="openml, file or synthetic."
    )
    path: str | None = Field(default=None, description="file: CSV (gz ok) or Parquet path.")
    format: Literal["auto", "csv", "parquet"] = Field(
        default="auto", description="file: format; auto picks Parquet for .parquet/.pq."
    )
    delimiter: str = Field(default=",", description="file: CSV field delimiter.")
    target_column: str = Field(default="Class", description="file/openml: target column.")
    positive_label: str = Field(default="1", description="file/openml: positive target value.")
    drop_columns: list[str] = Field(default=[], description="file: columns dropped on read.")
    column_types: dict[str, str] = Field(
        default={}, description="file: declared types (float/int/string/bool); rest inferred."
    )
    openml_data_id: int = Field(default=1597, description="openml: data id (1597: fraud).")
    openml_timeout_s: float = Field(default=3.0, description="openml: network probe timeout.")
    fallback_to_synthetic: bool = Field(
        default=True, description="openml: use the synthetic source when OpenML is unreachable."
    )
    cache_dir: str | None = Field(
        default=None, description="openml: cache folder (default: the state folder's cache)."
    )
    synthetic_rows: int = Field(default=100_000, description="synthetic: rows.")
    synthetic_seed: int = Field(default=42, description="synthetic: random seed.")
    synthetic_positive_rate: float = Field(
        default=POSITIVE_RATE, description="synthetic: share of fraud rows."
    )
    drift_shift: dict[str, float] = Field(
        default={}, description="synthetic: per-column shift in standard deviations."
    )
    drift_fraud_pattern_change: float = Field(
        default=0.0, description="synthetic: 0 keeps the fraud pattern, 1 moves it elsewhere."
    )
    holdout_tail_fraction: float = Field(
        default=0.0,
        description="file/openml: latest share of rows (by order_column) never ingested, kept "
        "for `mlops simulate` traffic; 0 ingests everything.",
    )
    order_column: str = Field(default="Time", description="file/openml: hold-out order column.")

    def source(self) -> sources.Source:
        """Return the core source this configuration describes."""
        drift = None
        if self.drift_shift or self.drift_fraud_pattern_change:
            drift = DriftSpec(
                shift=dict(self.drift_shift), fraud_pattern_change=self.drift_fraud_pattern_change
            )
        generated = sources.SyntheticSource(
            rows=self.synthetic_rows,
            seed=self.synthetic_seed,
            positive_rate=self.synthetic_positive_rate,
            drift=drift,
        )
        target = sources.TargetSpec(self.target_column, self.positive_label)
        holdout = (
            Holdout(self.holdout_tail_fraction, self.order_column)
            if self.holdout_tail_fraction
            else None
        )
        if self.kind == "synthetic":
            return generated
        if self.kind == "file":
            if not self.path:
                raise ValueError("DataSource: kind 'file' needs a path")
            return sources.FileSource(
                path=self.path,
                target=target,
                format=self.format,
                delimiter=self.delimiter,
                drop_columns=tuple(self.drop_columns),
                column_types=dict(self.column_types),
                holdout=holdout,
            )
        return sources.OpenMLSource(
            cache_dir=self.cache_dir or str(state_paths().cache),
            data_id=self.openml_data_id,
            target=target,
            timeout_s=self.openml_timeout_s,
            fallback=generated if self.fallback_to_synthetic else None,
            holdout=holdout,
        )


class AutomationSettings(dg.ConfigurableResource):
    """Knobs of the automation sensors: thresholds, cooldown, batching, run overrides."""

    drift_share_threshold: float = Field(
        default=0.5, description="drift_sensor: retrain when the drift share reaches this."
    )
    domain_auc_threshold: float = Field(
        default=0.8,
        description="drift_sensor: retrain when the domain classifier AUC reaches this.",
    )
    performance_drop_threshold: float = Field(
        default=0.25, description="drift_sensor: retrain when the online kappa drop reaches this."
    )
    cooldown_s: float = Field(
        default=600.0, description="drift_sensor: seconds after a trigger without a new one."
    )
    min_new_rows: int = Field(
        default=500, description="inference_log_sensor: new rows that request monitoring at once."
    )
    max_wait_s: float = Field(
        default=300.0,
        description="inference_log_sensor: after this many seconds any new row requests it.",
    )
    source_fingerprint: Literal["stat", "sha256"] = Field(
        default="stat",
        description="source_data_sensor: file size + mtime (stat) or a content hash (sha256).",
    )
    retrain_max_evals: int | None = Field(
        default=None, description="Sensor-launched retraining: tuned_model max_evals override."
    )
    monitoring_min_rows: int | None = Field(
        default=None,
        description="Sensor-launched monitoring: min_rows of drift_report and min_labeled_rows "
        "of model_performance.",
    )

    def policy(self) -> RetrainPolicy:
        """The drift sensor's thresholds and cooldown."""
        return RetrainPolicy(
            drift_share=self.drift_share_threshold,
            domain_auc=self.domain_auc_threshold,
            performance_drop=self.performance_drop_threshold,
            cooldown_s=self.cooldown_s,
        )


class ServingEndpoint(dg.ConfigurableResource):
    """Client of the running serving endpoint (``mlops serve``): reload, model info, predict."""

    url: str = Field(
        default="http://127.0.0.1:8080", description="Base URL of the serving endpoint."
    )
    admin_token: str | None = Field(
        default=None,
        description="Bearer token of /admin (set with dg.EnvVar('MLOPS_ADMIN_TOKEN')).",
    )
    timeout_s: float = Field(default=60.0, description="HTTP timeout of one call (seconds).")

    def client(self) -> ServingClient:
        """Return the HTTP client for this configuration."""
        return ServingClient(self.url, admin_token=self.admin_token, timeout_s=self.timeout_s)

    def reload(self, force: bool = False) -> ReloadResult:
        """Ask the server to re-resolve its aliases and hot-swap; failures are in ``error``."""
        return self.client().reload(force=force)

    def model_info(self) -> dict[str, Any]:
        """The server's ``/model`` document (versions, aliases, lineage tags, loaded at)."""
        return self.client().model_info()

    def predict(self, rows: list[dict[str, Any]] | dict[str, Any]) -> list[Prediction]:
        """Score rows through ``/predict`` (each answer names its request id and version)."""
        return self.client().predict(rows)
