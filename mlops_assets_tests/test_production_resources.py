"""The production profile's switches and its dagster.yaml, without any server (fast)."""

from __future__ import annotations

import pytest
import yaml

from mlops_assets.core.paths import PROJECT_ROOT
from mlops_assets.definitions import build_resources
from mlops_assets_tests.postgres_fixtures import PostgresServer

PRODUCTION_YAML = PROJECT_ROOT / "deploy" / "production" / "dagster.yaml"


def test_engine_switch_model_name_and_a_bad_engine_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLOPS_DELTA_ENGINE", raising=False)
    monkeypatch.delenv("MLOPS_MODEL_NAME", raising=False)
    default = build_resources("production")
    assert default["lakehouse"].engine == "spark"
    assert default["mlflow"].model_name == "fraud_detector"

    monkeypatch.setenv("MLOPS_DELTA_ENGINE", "delta-rs")
    monkeypatch.setenv("MLOPS_MODEL_NAME", "churn")
    switched = build_resources("production")
    assert switched["lakehouse"].engine == "delta-rs"
    assert switched["mlflow"].model_name == "churn"

    monkeypatch.setenv("MLOPS_DELTA_ENGINE", "duckdb")
    with pytest.raises(ValueError, match=r"MLOPS_DELTA_ENGINE='duckdb' is not an engine"):
        build_resources("production")


def test_production_yaml_reads_every_connection_setting_from_the_environment() -> None:
    config = yaml.safe_load(PRODUCTION_YAML.read_text())
    database = config["storage"]["postgres"]["postgres_db"]
    from_env = {key: value["env"] for key, value in database.items() if isinstance(value, dict)}
    expected = PostgresServer("h", 1, "u", "p", (), PROJECT_ROOT, PROJECT_ROOT, 0).dagster_env()
    assert sorted(from_env.values()) == sorted(expected)  # the names the tests and docs use
    assert database["scheme"] == "postgresql+psycopg2"  # the installed driver
    assert set(database) - set(from_env) == {"scheme"}  # no literal host, user or password
