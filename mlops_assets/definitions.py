"""The one place a ``Definitions`` is built: profile -> resources, modules -> assets.

``MLOPS_PROFILE`` selects the profile: ``embedded`` (default: delta-rs, MLflow on SQLite,
all state under the project-local state folder) or ``production`` (Spark engine, MLflow
tracking server, PostgreSQL-backed Dagster instance; every address and secret from the
environment through ``dg.EnvVar``).
"""

from __future__ import annotations

import os

import dagster as dg

from mlops_assets.core.paths import state_paths
from mlops_assets.defs import deployment, ingestion, jobs, serving, training
from mlops_assets.resources import DataSource, Lakehouse, MlflowRegistry, ServingEndpoint

PROFILE_ENV = "MLOPS_PROFILE"
PROFILES = ("embedded", "production")
SERVING_URL_ENV, ADMIN_TOKEN_ENV = "MLOPS_SERVING_URL", "MLOPS_ADMIN_TOKEN"
DEFS_MODULES = [ingestion, training, deployment, serving, jobs]


def embedded_resources(state_dir: str | None = None) -> dict[str, dg.ConfigurableResource]:
    """Resources of the embedded profile: everything local, under the state folder."""
    paths = state_paths(state_dir).ensure()
    return {
        "lakehouse": Lakehouse(root=str(paths.lakehouse), ivy_dir=str(paths.cache / "ivy")),
        "data_source": DataSource(cache_dir=str(paths.cache)),
        "mlflow": MlflowRegistry(
            tracking_uri=paths.mlflow_tracking_uri,
            artifact_root=str(paths.mlflow_artifact_root),
        ),
        "serving": ServingEndpoint(
            url=os.environ.get(SERVING_URL_ENV, "http://127.0.0.1:8080"),
            admin_token=dg.EnvVar(ADMIN_TOKEN_ENV) if os.environ.get(ADMIN_TOKEN_ENV) else None,
        ),
    }


def production_resources() -> dict[str, dg.ConfigurableResource]:
    """Resources of the production profile: addresses and secrets from the environment."""
    return {
        "lakehouse": Lakehouse(
            root=dg.EnvVar("MLOPS_LAKEHOUSE_ROOT"),
            engine="spark",
            spark_master=os.environ.get("MLOPS_SPARK_MASTER", "local[*]"),
            spark_remote=os.environ.get("MLOPS_SPARK_REMOTE") or None,
        ),
        "mlflow": MlflowRegistry(
            tracking_uri=dg.EnvVar("MLFLOW_TRACKING_URI"),
        ),
        "data_source": DataSource(
            kind=os.environ.get("MLOPS_SOURCE_KIND", "openml"),
            path=os.environ.get("MLOPS_SOURCE_PATH") or None,
        ),
        "serving": ServingEndpoint(
            url=dg.EnvVar(SERVING_URL_ENV), admin_token=dg.EnvVar(ADMIN_TOKEN_ENV)
        ),
    }


def build_resources(profile: str | None = None) -> dict[str, dg.ConfigurableResource]:
    """Return the resources of ``profile`` (default: ``MLOPS_PROFILE`` or embedded)."""
    chosen = profile or os.environ.get(PROFILE_ENV, "embedded")
    if chosen not in PROFILES:
        raise ValueError(f"{PROFILE_ENV}={chosen!r} is not a profile; choose one of {PROFILES}")
    return embedded_resources() if chosen == "embedded" else production_resources()


def build_definitions(resources: dict[str, dg.ConfigurableResource]) -> dg.Definitions:
    """Assemble the asset graph, checks, jobs and sensors with ``resources``."""
    assets = dg.load_assets_from_modules(DEFS_MODULES)
    checks = dg.load_asset_checks_from_modules(DEFS_MODULES)
    jobs = [job for module in DEFS_MODULES for job in getattr(module, "JOBS", [])]
    sensors = [sensor for module in DEFS_MODULES for sensor in getattr(module, "SENSORS", [])]
    return dg.Definitions(
        assets=assets,
        asset_checks=checks,
        jobs=jobs,
        sensors=sensors,
        resources=resources,
        # One process per run: the multiprocess executor costs ~2 s per step here.
        executor=dg.in_process_executor,
    )


defs = build_definitions(build_resources())
