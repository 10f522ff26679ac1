"""The one place a ``Definitions`` is built: profile -> resources, modules -> assets.

``MLOPS_PROFILE`` selects the profile: ``embedded`` (default: delta-rs, MLflow on SQLite,
all state under the project-local state folder) or ``production`` (Spark engine, MLflow
tracking server, PostgreSQL-backed Dagster instance; every address and secret from the
environment through ``dg.EnvVar``).
"""

from __future__ import annotations

import os

import dagster as dg

from mlops_assets.constants import REGISTERED_MODEL_NAME
from mlops_assets.core.paths import state_paths
from mlops_assets.defs import automation, deployment, ingestion, jobs, monitoring, serving, training
from mlops_assets.io_manager import RunScopedIOManager
from mlops_assets.resources import (
    AutomationSettings,
    DataSource,
    Lakehouse,
    MlflowRegistry,
    ServingEndpoint,
)

PROFILE_ENV = "MLOPS_PROFILE"
PROFILES = ("embedded", "production")
SERVING_URL_ENV, ADMIN_TOKEN_ENV = "MLOPS_SERVING_URL", "MLOPS_ADMIN_TOKEN"
MODEL_NAME_ENV = "MLOPS_MODEL_NAME"  # the registered model (the server reads it too)
# production profile: Delta engine (spark by default; delta-rs runs it without a JVM)
DELTA_ENGINE_ENV, DELTA_ENGINES = "MLOPS_DELTA_ENGINE", ("spark", "delta-rs")
DEFS_MODULES = [ingestion, training, deployment, serving, monitoring, automation, jobs]
# AutomationSettings field -> environment variable overriding it (small budgets for demos)
AUTOMATION_ENV = {
    "retrain_max_evals": "MLOPS_RETRAIN_MAX_EVALS",
    "monitoring_min_rows": "MLOPS_MONITOR_MIN_ROWS",
    "min_new_rows": "MLOPS_MONITOR_MIN_NEW_ROWS",
    "max_wait_s": "MLOPS_MONITOR_MAX_WAIT_S",
    "cooldown_s": "MLOPS_RETRAIN_COOLDOWN_S",
    "drift_share_threshold": "MLOPS_DRIFT_SHARE_THRESHOLD",
    "domain_auc_threshold": "MLOPS_DOMAIN_AUC_THRESHOLD",
    "performance_drop_threshold": "MLOPS_PERFORMANCE_DROP_THRESHOLD",
}


def automation_settings() -> AutomationSettings:
    """Sensor thresholds and run overrides: defaults, overridden by ``AUTOMATION_ENV``."""
    values = {key: os.environ[env] for key, env in AUTOMATION_ENV.items() if os.environ.get(env)}
    try:
        return AutomationSettings(**values)
    except Exception as error:
        names = {key: AUTOMATION_ENV[key] for key in values}
        raise ValueError(f"invalid automation settings from {names}: {error}") from error


def embedded_resources(state_dir: str | None = None) -> dict[str, dg.ConfigurableResource]:
    """Resources of the embedded profile: everything local, under the state folder."""
    paths = state_paths(state_dir).ensure()
    return {
        "lakehouse": Lakehouse(root=str(paths.lakehouse), ivy_dir=str(paths.cache / "ivy")),
        # real data: the latest 20% of Time is never ingested; `mlops simulate` replays it
        "data_source": DataSource(cache_dir=str(paths.cache), holdout_tail_fraction=0.2),
        "mlflow": MlflowRegistry(
            tracking_uri=paths.mlflow_tracking_uri,
            artifact_root=str(paths.mlflow_artifact_root),
        ),
        "serving": ServingEndpoint(
            url=os.environ.get(SERVING_URL_ENV, "http://127.0.0.1:8080"),
            admin_token=dg.EnvVar(ADMIN_TOKEN_ENV) if os.environ.get(ADMIN_TOKEN_ENV) else None,
        ),
        "automation": automation_settings(),
    }


def production_resources() -> dict[str, dg.ConfigurableResource]:
    """Resources of the production profile: addresses and secrets from the environment."""
    engine = os.environ.get(DELTA_ENGINE_ENV) or "spark"
    if engine not in DELTA_ENGINES:
        raise ValueError(
            f"{DELTA_ENGINE_ENV}={engine!r} is not an engine; choose one of {DELTA_ENGINES}"
        )
    return {
        "lakehouse": Lakehouse(
            root=dg.EnvVar("MLOPS_LAKEHOUSE_ROOT"),
            engine=engine,
            spark_master=os.environ.get("MLOPS_SPARK_MASTER", "local[*]"),
            spark_remote=os.environ.get("MLOPS_SPARK_REMOTE") or None,
        ),
        "mlflow": MlflowRegistry(
            tracking_uri=dg.EnvVar("MLFLOW_TRACKING_URI"),
            model_name=os.environ.get(MODEL_NAME_ENV) or REGISTERED_MODEL_NAME,
        ),
        "data_source": DataSource(
            kind=os.environ.get("MLOPS_SOURCE_KIND", "openml"),
            path=os.environ.get("MLOPS_SOURCE_PATH") or None,
        ),
        "serving": ServingEndpoint(
            url=dg.EnvVar(SERVING_URL_ENV), admin_token=dg.EnvVar(ADMIN_TOKEN_ENV)
        ),
        "automation": automation_settings(),
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
        # values handed between steps: one file per (asset, run), so concurrent runs of the
        # same assets never read each other's values (Dagster's default keeps one per asset)
        resources={"io_manager": RunScopedIOManager(), **resources},
        # One process per run: the multiprocess executor costs ~2 s per step here.
        executor=dg.in_process_executor,
    )


defs = build_definitions(build_resources())
