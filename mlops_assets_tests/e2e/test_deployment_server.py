"""Promotion, deployment and rollback against a real ``mlops serve`` process.

One server follows the ``champion`` alias of a fresh registered model. The test walks the
life of that model: first promotion and deployment; a promoted version the server rejects the
smoke rows of (rolled back, the old version keeps serving); a better version deployed; a
version the server cannot load (rolled back); and the rollback job. After every step the
registry, the server and the history tables must agree.
"""

from __future__ import annotations

import dagster as dg
import httpx
import numpy as np
import pytest

from mlops_assets.constants import DATA_GROUP, DEPLOYMENTS_TABLE, PROMOTIONS_TABLE, SPLITS_TABLE
from mlops_assets.core import aliases
from mlops_assets.core.champion import ChampionOutcome
from mlops_assets.core.history import read_history
from mlops_assets.core.registry import RegisteredVersion
from mlops_assets.core.tables import TableRef
from mlops_assets.defs.deployment import (
    DeploymentConfig,
    PromotionConfig,
    champion_model,
    model_deployment,
    rollback_job,
)
from mlops_assets.resources import Lakehouse, MlflowRegistry, ServingEndpoint
from mlops_assets_tests.core.promotion_fixtures import fresh_model, registry_fixture, splits_frame
from mlops_assets_tests.e2e.serving_process import ADMIN_TOKEN, start_server

pytestmark = pytest.mark.e2e
promotion_registry = registry_fixture


def splits_asset(missing_v3: bool = False):
    """``training_splits`` stand-in; ``missing_v3`` blanks V3 (a strict contract refuses it)."""

    @dg.asset(name="training_splits", group_name=DATA_GROUP)
    def splits(lakehouse: Lakehouse) -> TableRef:
        frame = splits_frame()
        if missing_v3:
            frame["V3"] = np.nan
        return lakehouse.tables().write(SPLITS_TABLE, frame, mode="overwrite")

    return splits


def challenger_asset(name: str, version: int):
    @dg.asset(name="registered_model_version")
    def registered() -> RegisteredVersion:
        return RegisteredVersion(name, str(version), "run", f"models:/{name}/{version}", "x")

    return registered


def champion_stub(name: str):
    """``champion_model`` stand-in, for a champion alias moved outside the decision."""

    @dg.asset(name="champion_model")
    def stub() -> ChampionOutcome:
        return ChampionOutcome(name, 0, None, None, True, None, None)

    return stub


@pytest.fixture(scope="module")
def world(promotion_registry, tmp_path_factory):
    name, versions = fresh_model(promotion_registry, "xgb_weak", "xgb_strict", "xgb_good", "broken")
    folder = tmp_path_factory.mktemp("deploy-server")
    server = start_server(
        folder,
        promotion_registry.tracking_uri,
        "champion",
        "--model-name",
        name,
        wait_path="/health",  # no champion yet: alive, not ready
    )
    resources = {
        "lakehouse": Lakehouse(root=str(folder / "pipeline-lake")),
        "mlflow": MlflowRegistry(tracking_uri=promotion_registry.tracking_uri, model_name=name),
        "serving": ServingEndpoint(url=server.url, admin_token=ADMIN_TOKEN, timeout_s=30),
    }
    yield name, versions, server, resources, dg.DagsterInstance.ephemeral()
    assert server.stop() == 0, server.output()


def run(world, assets):
    _, _, _, resources, instance = world
    keys = {key.to_user_string() for asset in assets for key in asset.keys}
    config = {}
    if "model_deployment" in keys:
        config["model_deployment"] = DeploymentConfig(wait_timeout_s=30)
    if any(asset is champion_model for asset in assets):
        config["champion_model"] = PromotionConfig(resamples=300, min_kappa=0.3)
    return dg.materialize(
        assets,
        resources=resources,
        run_config=dg.RunConfig(config),
        instance=instance,
        raise_on_error=False,
    )


def serving(server) -> int | None:
    return httpx.get(server.url + "/model", timeout=10).json()["version"]


def champion(world) -> str | None:
    name, _, _, resources, _ = world
    return aliases.alias_version(resources["mlflow"].target().client(), name, "champion")


def meta(result, key: str) -> dict:
    events = [e for e in result.get_asset_materialization_events() if e.asset_key.path == [key]]
    return {k: v.value for k, v in events[-1].materialization.metadata.items()} if events else {}


def test_promote_deploy_reject_roll_back_and_rollback_job(world) -> None:
    name, [weak, strict, good, broken], server, resources, _ = world
    lake = resources["lakehouse"].tables()

    # 1. First champion: promoted and deployed; the server now serves it.
    first = run(
        world, [splits_asset(), challenger_asset(name, weak), champion_model, model_deployment]
    )
    assert first.success, server.output()
    assert meta(first, "model_deployment")["status"] == "deployed"
    assert serving(server) == weak and champion(world) == str(weak)
    assert meta(first, "model_deployment")["smoke_passed"] is True

    # 2. A better challenger whose contract refuses the smoke rows (V3 missing): promoted,
    #    then the deployment fails and rolls back; the old version kept serving.
    rejected = run(
        world,
        [
            splits_asset(missing_v3=True),
            challenger_asset(name, strict),
            champion_model,
            model_deployment,
        ],
    )
    assert not rejected.success
    assert meta(rejected, "champion_model")["decision"] == "promote"
    [failure] = [e for e in rejected.all_events if e.event_type_value == "STEP_FAILURE"]
    reason = str(failure.event_specific_data.error)
    assert "refused the smoke rows" in reason and "'V3'" in reason
    assert f"rolled back to version {weak}, which serves" in reason, reason
    assert serving(server) == weak and champion(world) == str(weak)
    row = read_history(lake, DEPLOYMENTS_TABLE).iloc[-1]
    assert (row["status"], row["version"], row["serving_version"]) == ("rolled_back", strict, weak)

    # 3. Re-deciding the rolled-back challenger is a no-op: it is not promoted again.
    again = run(world, [splits_asset(), challenger_asset(name, strict), champion_model])
    assert meta(again, "champion_model")["decision"] == "already decided"
    assert champion(world) == str(weak)

    # 4. A better, well-behaved challenger: promoted and deployed.
    better = run(
        world, [splits_asset(), challenger_asset(name, good), champion_model, model_deployment]
    )
    assert better.success, server.output()
    assert serving(server) == good and champion(world) == str(good)

    # 5. The champion alias moved to a version the server cannot load: rolled back.
    client = resources["mlflow"].target().client()
    aliases.promote(client, name, str(broken))
    unloadable = run(world, [splits_asset(), champion_stub(name), model_deployment])
    assert not unloadable.success
    assert serving(server) == good and champion(world) == str(good)
    row = read_history(lake, DEPLOYMENTS_TABLE).iloc[-1]
    assert row["status"] == "rolled_back" and "could not load version" in row["reason"]

    # 6. The rollback job: champion back to previous_champion (the version `good` replaced).
    rolled = rollback_job.execute_in_process(resources=resources, raise_on_error=False)
    assert rolled.success, server.output()
    record = rolled.output_for_node("champion_rollback")
    assert (record.status, record.version, record.serving_version) == ("rolled_back", weak, weak)
    assert serving(server) == weak and champion(world) == str(weak)

    promotions = read_history(lake, PROMOTIONS_TABLE)
    assert promotions["action"].tolist() == [
        "promote",
        "promote",
        "rollback",
        "promote",
        "rollback",
        "rollback",
    ]
    deployments = read_history(lake, DEPLOYMENTS_TABLE)
    assert deployments["status"].tolist() == [
        "deployed",
        "rolled_back",
        "deployed",
        "rolled_back",
        "rolled_back",
    ]
    assert deployments["trigger"].tolist()[-1] == "rollback"
