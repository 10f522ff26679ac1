"""Typed Dagster resources: the lakehouse (Delta engine), the data source, MLflow, serving.

Each resource is a thin, configurable handle onto a ``core`` object; which engine or
server a resource points at is decided in ``definitions.py`` and nowhere else.
"""

from __future__ import annotations

from typing import Literal

import dagster as dg
from pydantic import Field

from mlops_assets.constants import EXPERIMENT_NAME, REGISTERED_MODEL_NAME
from mlops_assets.core.tables import DeltaEngine, DeltaRsEngine
from mlops_assets.core.tracking import TrackingTarget


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
        default=None, description="Ivy cache for the Delta jars (keeps them out of $HOME)."
    )

    def tables(self) -> DeltaEngine:
        """Return the configured Delta engine."""
        if self.engine == "delta-rs":
            return DeltaRsEngine(root=self.root)
        from mlops_assets.core.spark_tables import SparkDeltaEngine, spark_session

        session = spark_session(
            master=self.spark_master, remote=self.spark_remote, ivy_dir=self.ivy_dir
        )
        return SparkDeltaEngine(root=self.root, spark=session)


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

    def target(self) -> TrackingTarget:
        """Return the core tracking target for this configuration."""
        return TrackingTarget(
            tracking_uri=self.tracking_uri,
            registry_uri=self.registry_uri,
            experiment_name=self.experiment_name,
            artifact_root=self.artifact_root,
        )
