"""The production profile end to end: PostgreSQL-backed Dagster and MLflow, Spark Delta.

``MLOPS_PROFILE=production`` with every address and secret from the environment, a Dagster
instance loaded from ``deploy/production/dagster.yaml`` (storage on the throwaway PostgreSQL
cluster), the PostgreSQL-backed ``mlflow server`` process and the Spark Delta engine.
Ingestion, training (2 trials with SparkTrials) and the champion decision run in one
Dagster run; the test then reads PostgreSQL itself to prove where everything landed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from mlops_assets.cli import prepare_dagster_home
from mlops_assets.constants import CHALLENGER_ALIAS, CHAMPION_ALIAS, REGISTERED_MODEL_NAME
from mlops_assets.core.paths import StatePaths
from mlops_assets_tests.postgres_fixtures import MlflowServer, PostgresServer

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.e2e,
    pytest.mark.spark,
    pytest.mark.slow,
    pytest.mark.timeout(480),
]

ASSETS = (
    "raw_transactions",
    "transactions",
    "training_splits",
    "resampled_train",
    "tuned_model",
    "registered_model_version",
    "champion_model",
)
ADMIN_TOKEN = "prod-admin-token-not-logged"


def small_fraud_csv(shared_data: Path, path: Path, negatives: int = 2400) -> Path:
    """A small real sample of the credit-card data: 120 frauds and ``negatives`` others."""
    frame = pd.read_csv(shared_data / "creditcard.csv.gz")
    frauds = frame[frame["Class"] == 1].sample(120, random_state=7)
    others = frame[frame["Class"] == 0].sample(negatives, random_state=7)
    pd.concat([frauds, others]).sort_values("Time").to_csv(path, index=False)
    return path


def production_env(
    postgres: PostgresServer, mlflow_server: MlflowServer, lake: Path, source: Path
) -> dict[str, str]:
    """Everything the production profile reads, as a deployment would set it."""
    return {
        "MLOPS_PROFILE": "production",
        **postgres.dagster_env(),
        "MLFLOW_TRACKING_URI": mlflow_server.url,
        "MLOPS_LAKEHOUSE_ROOT": str(lake),
        "MLOPS_SOURCE_KIND": "file",
        "MLOPS_SOURCE_PATH": str(source),
        "MLOPS_SPARK_MASTER": "local[2]",
        "MLOPS_SERVING_URL": "http://127.0.0.1:9",
        "MLOPS_ADMIN_TOKEN": ADMIN_TOKEN,
    }


def _rows(postgres: PostgresServer, database: str, sql: str, *args: object) -> list[tuple]:
    return postgres.query(database, sql, *args)


def test_production_profile_runs_on_postgres_mlflow_server_and_spark(
    postgres: PostgresServer,
    mlflow_server: MlflowServer,
    spark,
    state: StatePaths,
    shared_data: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import dagster as dg
    from mlflow import MlflowClient

    from mlops_assets.definitions import build_definitions, build_resources

    source = small_fraud_csv(shared_data, tmp_path / "fraud_sample.csv")
    for name, value in production_env(postgres, mlflow_server, tmp_path / "lake", source).items():
        monkeypatch.setenv(name, value)
    prepare_dagster_home(state, "production")

    resources = build_resources()
    assert resources["lakehouse"].engine == "spark"
    job = build_definitions(resources).resolve_implicit_global_asset_job_def()
    run_config = {
        "ops": {
            "tuned_model": {"config": {"max_evals": 2, "parallelism": 2, "nthread": 1}},
            # a first champion: the guardrails' floors and latency budget are not tested here
            "champion_model": {
                "config": {"resamples": 200, "min_kappa": 0.0, "min_pr_auc": 0.0}
                | {"max_latency_ms_per_row": 1000.0}
            },
        }
    }
    with dg.DagsterInstance.get() as instance:
        storage = type(instance.run_storage).__name__, type(instance.event_log_storage).__name__
        assert storage == ("PostgresRunStorage", "PostgresEventLogStorage")
        assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
        result = job.execute_in_process(
            run_config=run_config,
            instance=instance,
            asset_selection=[dg.AssetKey(key) for key in ASSETS],
        )
    assert result.success

    # Dagster: the run and its event log are rows in PostgreSQL.
    runs = _rows(postgres, "dagster", "SELECT status FROM runs WHERE run_id = %s", result.run_id)
    assert runs == [("SUCCESS",)]
    materialized = _rows(
        postgres,
        "dagster",
        "SELECT asset_key FROM event_logs WHERE run_id = %s "
        "AND dagster_event_type = 'ASSET_MATERIALIZATION'",
        result.run_id,
    )
    assert sorted(json.loads(key)[0] for (key,) in materialized) == sorted(ASSETS)
    (events,) = _rows(
        postgres, "dagster", "SELECT count(*) FROM event_logs WHERE run_id = %s", result.run_id
    )[0]

    # MLflow: through the server, and the server's store is the PostgreSQL database.
    client = MlflowClient(tracking_uri=mlflow_server.url, registry_uri=mlflow_server.url)
    tuned = result.output_for_node("tuned_model")
    registered = result.output_for_node("registered_model_version")
    assert client.get_run(tuned.run_id).info.status == "FINISHED"
    aliases = {
        alias: client.get_model_version_by_alias(REGISTERED_MODEL_NAME, alias).version
        for alias in (CHALLENGER_ALIAS, CHAMPION_ALIAS)
    }
    assert aliases == {CHALLENGER_ALIAS: registered.version, CHAMPION_ALIAS: registered.version}
    stored_run = _rows(
        postgres, "mlflow", "SELECT status FROM runs WHERE run_uuid = %s", tuned.run_id
    )
    assert stored_run == [("FINISHED",)]
    stored_aliases = _rows(
        postgres,
        "mlflow",
        "SELECT alias, version FROM registered_model_aliases WHERE name = %s ORDER BY alias",
        REGISTERED_MODEL_NAME,
    )
    assert stored_aliases == [(CHALLENGER_ALIAS, int(registered.version))] + [
        (CHAMPION_ALIAS, int(registered.version))
    ]
    (nested,) = _rows(
        postgres,
        "mlflow",
        "SELECT count(*) FROM tags WHERE key = 'mlflow.parentRunId' AND value = %s",
        tuned.run_id,
    )[0]
    assert nested == 2  # one nested run per trial
    assert list(mlflow_server.artifacts_destination.rglob("*.skops")) or list(
        mlflow_server.artifacts_destination.rglob("MLmodel")
    )

    # Secrets from the environment are in no stored event, tag or parameter.
    leaks = {
        (secret, database, table): _rows(
            postgres, database, f"SELECT count(*) FROM {table} WHERE {column} LIKE %s", f"%{value}%"
        )[0][0]
        for secret, value in (("pg password", postgres.password), ("admin token", ADMIN_TOKEN))
        for database, table, column in (
            ("dagster", "event_logs", "event"),
            ("dagster", "runs", "run_body"),
            ("mlflow", "tags", "value"),
            ("mlflow", "params", "value"),
            ("mlflow", "model_version_tags", "value"),
        )
    }
    leaks = {key: count for key, count in leaks.items() if count}
    assert not leaks, leaks

    # Delta: written by the Spark engine (engineInfo and the engine's commit token).
    lake = tmp_path / "lake"
    for table in ("raw_transactions", "transactions", "training_splits", "resampled_train"):
        commit = json.loads(
            next(
                line
                for line in (lake / table / "_delta_log" / "00000000000000000000.json")
                .read_text()
                .splitlines()
                if '"commitInfo"' in line
            )
        )["commitInfo"]
        assert commit["engineInfo"].startswith("Apache-Spark/"), (table, commit["engineInfo"])
        assert commit["userMetadata"].startswith("mlops_assets-commit:")
    print(
        f"\nproduction profile: run {result.run_id} in PostgreSQL with {events} event rows, "
        f"{len(materialized)} materializations; MLflow run {tuned.run_id} + {nested} trials "
        f"and version {registered.version} (champion) in the PostgreSQL backend; "
        "4 Delta tables written by Spark; PG password and admin token in none of 5 stored columns"
    )
