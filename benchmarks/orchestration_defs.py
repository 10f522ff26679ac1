"""The project's asset graph on a benchmark state folder, for ``dagster asset materialize -m``.

Importing this module builds ``defs`` from the environment: the state folder
(``MLOPS_STATE_DIR``), the labelled file (``MLOPS_BENCH_DATA``, ``MLOPS_BENCH_TARGET``,
``MLOPS_BENCH_POSITIVE``) and the executor (``MLOPS_BENCH_EXECUTOR``: ``in_process``, the
project's choice, or ``multiprocess``). Everything else is the embedded profile of
``mlops_assets.definitions``: the same assets, checks, jobs and resources.
"""

from __future__ import annotations

import os

import dagster as dg

from mlops_assets.constants import DATA_GROUP, DEPLOYMENT_GROUP, TRAINING_GROUP
from mlops_assets.core.paths import state_paths
from mlops_assets.definitions import DEFS_MODULES, embedded_resources
from mlops_assets.resources import DataSource

DATA_ENV, TARGET_ENV, POSITIVE_ENV = (
    "MLOPS_BENCH_DATA",
    "MLOPS_BENCH_TARGET",
    "MLOPS_BENCH_POSITIVE",
)
EXECUTOR_ENV = "MLOPS_BENCH_EXECUTOR"
EXECUTORS = {"in_process": dg.in_process_executor, "multiprocess": dg.multiprocess_executor}
SKIPPED = ("model_deployment",)  # serving deployment is left out on both sides
SELECTION = dg.AssetSelection.groups(
    DATA_GROUP, TRAINING_GROUP, DEPLOYMENT_GROUP
) - dg.AssetSelection.assets(*SKIPPED)
"""``main_job``'s selection without the deployment to a running server."""
BENCH_JOB = "orchestration_benchmark_job"


def bench_definitions(
    state_dir: str, data: str, target: str, positive: str, executor: str = "in_process"
) -> dg.Definitions:
    """The embedded profile's definitions with a file source and the chosen executor.

    Raises:
        ValueError: An unknown executor name.
    """
    if executor not in EXECUTORS:
        raise ValueError(f"{EXECUTOR_ENV}={executor!r}: choose one of {list(EXECUTORS)}")
    resources = embedded_resources(state_dir)
    resources["data_source"] = DataSource(
        kind="file",
        path=data,
        target_column=target,
        positive_label=positive,
        cache_dir=str(state_paths(state_dir).cache),
    )
    return dg.Definitions(
        assets=dg.load_assets_from_modules(DEFS_MODULES),
        asset_checks=dg.load_asset_checks_from_modules(DEFS_MODULES),
        jobs=[
            *(job for module in DEFS_MODULES for job in getattr(module, "JOBS", [])),
            dg.define_asset_job(BENCH_JOB, selection=SELECTION),
        ],
        resources=resources,
        executor=EXECUTORS[executor],
    )


def selected_keys(defs: dg.Definitions) -> list[str]:
    """The asset keys of :data:`SELECTION`, for ``--select``."""
    keys = SELECTION.resolve(defs.resolve_asset_graph())
    return sorted(key.to_user_string() for key in keys)


def _from_environment() -> dg.Definitions | None:
    if not os.environ.get(DATA_ENV):
        return None
    return bench_definitions(
        str(state_paths().root),
        os.environ[DATA_ENV],
        os.environ.get(TARGET_ENV, "Class"),
        os.environ.get(POSITIVE_ENV, "1"),
        os.environ.get(EXECUTOR_ENV, "in_process"),
    )


defs = _from_environment()
