"""The deployment assets and the rollback job over a real registry and real Delta tables."""

from __future__ import annotations

import os

import dagster as dg
import pytest

from mlops_assets.constants import (
    DATA_GROUP,
    DEPLOYMENT_GROUP,
    DEPLOYMENTS_TABLE,
    PROMOTIONS_TABLE,
    SPLITS_TABLE,
    TRAINING_GROUP,
)
from mlops_assets.core import aliases
from mlops_assets.core.champion import ChampionOutcome
from mlops_assets.core.history import read_history
from mlops_assets.core.registry import RegisteredVersion
from mlops_assets.core.tables import TableRef
from mlops_assets.definitions import build_definitions, embedded_resources
from mlops_assets.defs.deployment import (
    ROLLBACK_JOB_NAME,
    DeploymentConfig,
    PromotionConfig,
    champion_model,
    model_deployment,
    rollback_job,
)
from mlops_assets.resources import Lakehouse, MlflowRegistry, ServingEndpoint
from mlops_assets_tests.core.promotion_fixtures import fresh_model, registry_fixture, splits_frame
from mlops_assets_tests.e2e.serving_process import free_port

promotion_registry = registry_fixture


def upstream(name: str, version: int) -> list:
    """Stand-ins for ``training_splits`` and ``registered_model_version``."""

    @dg.asset(name="training_splits", group_name=DATA_GROUP)
    def splits(lakehouse: Lakehouse) -> TableRef:
        return lakehouse.tables().write(SPLITS_TABLE, splits_frame(), mode="overwrite")

    @dg.asset(name="registered_model_version", group_name=TRAINING_GROUP)
    def registered() -> RegisteredVersion:
        return RegisteredVersion(name, str(version), "run", f"models:/{name}/{version}", "x")

    return [splits, registered]


def resources(registry, tmp_path, name: str) -> dict:
    return {
        "lakehouse": Lakehouse(root=str(tmp_path / "lake")),
        "mlflow": MlflowRegistry(tracking_uri=registry.tracking_uri, model_name=name),
        # nothing listens on this port: "no server"
        "serving": ServingEndpoint(url=f"http://127.0.0.1:{free_port()}", timeout_s=5),
    }


def materialize(assets, res, instance=None, **config):
    run_config = {
        "champion_model": PromotionConfig(resamples=config.pop("resamples", 200), **config),
        "model_deployment": DeploymentConfig(wait_timeout_s=5),
    }
    return dg.materialize(
        assets,
        resources=res,
        run_config=dg.RunConfig({k: v for k, v in run_config.items() if k in _keys(assets)}),
        instance=instance or dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def _keys(assets) -> set[str]:
    return {key.to_user_string() for asset in assets for key in asset.keys}


def metadata_of(result, key: str) -> dict:
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key.path == [key]]
    return {k: v.value for k, v in event.materialization.metadata.items()}


def test_asset_keys_groups_kinds_and_jobs_are_pinned(state) -> None:
    defs = build_definitions(embedded_resources(str(state.root)))
    graph = defs.resolve_asset_graph()
    parents = {
        "champion_model": {"registered_model_version", "training_splits"},
        "model_deployment": {"champion_model", "training_splits"},
    }
    for key, expected in parents.items():
        node = graph.get(dg.AssetKey(key))
        assert node.group_name == DEPLOYMENT_GROUP and node.kinds
        assert node.description and "\n" not in node.description.strip()
        assert {parent.to_user_string() for parent in node.parent_keys} == expected
    assert defs.resolve_job_def(ROLLBACK_JOB_NAME).name == ROLLBACK_JOB_NAME
    main = defs.resolve_job_def("main_job")
    assert {"champion_model", "model_deployment"} <= {
        key.to_user_string() for key in main.asset_layer.executable_asset_keys
    }


def test_first_promotion_then_pending_deployment_without_a_server(
    promotion_registry, tmp_path
) -> None:
    name, [version] = fresh_model(promotion_registry, "good")
    res = resources(promotion_registry, tmp_path, name)
    assets = [*upstream(name, version), champion_model, model_deployment]
    instance = dg.DagsterInstance.ephemeral()
    result = materialize(assets, res, instance)
    assert result.success
    decided = metadata_of(result, "champion_model")
    assert decided["decision"] == "promote" and decided["champion_version"] == version
    assert "no champion yet" in decided["reason"] and "**PROMOTED**" in decided["summary"]
    assert "bootstrap_histogram" not in decided  # nothing to compare with
    deployed = metadata_of(result, "model_deployment")
    assert deployed["status"] == "pending" and "no server reachable" in deployed["reason"]
    record = result.output_for_node("model_deployment")
    assert record.status == "pending" and record.version == version
    assert record.dagster_run_id == result.run_id

    again = materialize(assets, res, instance)  # safe to repeat
    assert again.success
    redecided = metadata_of(again, "champion_model")
    assert redecided["decision"] == "already decided" and "(promote)" in redecided["reason"]
    lake = res["lakehouse"].tables()
    assert len(read_history(lake, PROMOTIONS_TABLE)) == 1
    assert read_history(lake, DEPLOYMENTS_TABLE)["status"].tolist() == ["pending", "pending"]


def test_comparison_shows_markdown_and_histogram(promotion_registry, tmp_path) -> None:
    name, [weak, good] = fresh_model(promotion_registry, "weak", "good")
    aliases.promote(promotion_registry.client(), name, str(weak))
    res = resources(promotion_registry, tmp_path, name)
    result = materialize([*upstream(name, good), champion_model], res, resamples=300, seed=3)
    assert result.success
    meta = metadata_of(result, "champion_model")
    assert meta["decision"] == "promote" and meta["prob_kappa_improves"] >= 0.99
    assert meta["bootstrap_histogram"].startswith("![kappa delta](data:image/png;base64,")
    assert "| kappa |" in meta["summary"] and "| latency_per_row | yes |" in meta["summary"]
    assert meta["champion_training_rows"].startswith(f"not checked whether champion v{weak}")
    assert meta["alias_moves"] == [
        f"previous_champion: none -> {weak}",
        f"champion: {weak} -> {good}",
    ]
    outcome: ChampionOutcome = result.output_for_node("champion_model")
    assert outcome.bootstrap.resamples == 300 and outcome.bootstrap.seed == 3
    [row] = read_history(res["lakehouse"].tables(), PROMOTIONS_TABLE).to_dict("records")
    assert row["dagster_run_id"] == result.run_id and row["splits_table"] == "training_splits@v0"


def test_guardrail_config_blocks_and_nothing_moves(promotion_registry, tmp_path) -> None:
    name, [weak, good] = fresh_model(promotion_registry, "weak", "good")
    aliases.promote(promotion_registry.client(), name, str(weak))
    res = resources(promotion_registry, tmp_path, name)
    result = materialize([*upstream(name, good), champion_model], res, min_kappa=0.99)
    assert result.success  # keeping the champion is a decision, not a failure
    meta = metadata_of(result, "champion_model")
    assert meta["decision"] == "keep" and "min_kappa" in meta["reason"]
    assert "| min_kappa | **no** |" in meta["summary"]
    assert aliases.alias_version(promotion_registry.client(), name, "champion") == str(weak)


def test_rollback_job_without_previous_champion_fails_naming_it(
    promotion_registry, tmp_path
) -> None:
    name, [version] = fresh_model(promotion_registry, "good")
    aliases.promote(promotion_registry.client(), name, str(version))
    res = resources(promotion_registry, tmp_path, name)
    result = rollback_job.execute_in_process(resources=res, raise_on_error=False)
    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "no 'previous_champion' alias" in str(failure.event_specific_data.error)


def test_rollback_job_moves_champion_and_records_pending_without_server(
    promotion_registry, tmp_path
) -> None:
    name, [v1, v2] = fresh_model(promotion_registry, "weak", "good")
    client = promotion_registry.client()
    aliases.promote(client, name, str(v1))
    aliases.promote(client, name, str(v2))
    res = resources(promotion_registry, tmp_path, name)
    result = rollback_job.execute_in_process(resources=res, raise_on_error=False)
    assert result.success
    record = result.output_for_node("champion_rollback")
    assert (record.status, record.trigger, record.version) == ("pending", "rollback", v1)
    assert aliases.alias_version(client, name, "champion") == str(v1)
    lake = res["lakehouse"].tables()
    assert read_history(lake, PROMOTIONS_TABLE)["action"].tolist() == ["rollback"]
    assert read_history(lake, DEPLOYMENTS_TABLE)["trigger"].tolist() == ["rollback"]
    observed = [e for e in result.all_events if e.event_type_value == "ASSET_OBSERVATION"]
    assert observed and observed[0].asset_key == dg.AssetKey("model_deployment")


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [("wait_timeout_s", 0.0, "wait_timeout_s must be > 0"), ("tolerance", -1.0, "tolerance")],
)
def test_bad_deployment_config_is_named(field, value, words) -> None:
    with pytest.raises(ValueError, match=words):
        DeploymentConfig(**{field: value}).settings()


def test_cli_rollback_runs_the_job_on_the_state_folder(state, monkeypatch) -> None:
    from click.testing import CliRunner
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    from mlops_assets.cli import main
    from mlops_assets_tests.core.promotion_fixtures import logistic, registry_uri
    from mlops_assets_tests.serving.registry import TestRegistry

    registry = TestRegistry.create(state.mlflow_dir)  # the embedded profile's registry
    assert registry.tracking_uri == state.mlflow_tracking_uri
    with registry_uri(registry.tracking_uri):
        first, second = registry.register(logistic(1)), registry.register(logistic(3))
    aliases.promote(registry.client(), registry.model_name, str(first))
    aliases.promote(registry.client(), registry.model_name, str(second))
    # the command sets these for its process: restore them after the test
    for name in ("MLOPS_SERVING_URL", "MLOPS_STATE_DIR", "DAGSTER_HOME", "MLFLOW_REGISTRY_URI"):
        monkeypatch.setenv(name, os.environ.get(name, "unset"))
        if os.environ[name] == "unset":
            monkeypatch.delenv(name)
    monkeypatch.delenv("MLOPS_ADMIN_TOKEN", raising=False)
    monkeypatch.setattr(registry_utils, "_registry_uri", registry_utils._registry_uri)
    monkeypatch.setattr(tracking_utils, "_tracking_uri", tracking_utils._tracking_uri)
    args = [
        "--state-dir",
        str(state.root),
        "rollback",
        "--serving-url",
        f"http://127.0.0.1:{free_port()}",
    ]
    done = CliRunner().invoke(main, args)
    assert done.exit_code == 0, done.output
    last = done.output.strip().splitlines()[-1]  # after the run's log lines
    assert last.startswith("pending: rollback: champion 2 -> previous_champion 1")
    assert aliases.alias_version(registry.client(), registry.model_name, "champion") == "1"
    lake = Lakehouse(root=str(state.lakehouse)).tables()
    assert read_history(lake, DEPLOYMENTS_TABLE)["trigger"].tolist() == ["rollback"]
    refused = CliRunner().invoke(main, args)
    assert refused.exit_code == 1
    assert "rollback failed" in refused.output and "no 'previous_champion' alias" in refused.output
