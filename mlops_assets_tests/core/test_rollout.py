"""Deploy and roll back the champion: a real registry and real Delta history, a fake server."""

from __future__ import annotations

import json

import pytest

from mlops_assets.constants import DEPLOYMENTS_TABLE, PROMOTIONS_TABLE, SPLITS_TABLE
from mlops_assets.core import aliases
from mlops_assets.core.comparison import test_rows
from mlops_assets.core.deployment import DeploySettings
from mlops_assets.core.history import PromotionRecord, append_records, read_history, utc_now
from mlops_assets.core.rollout import Release, deploy_champion, rollback_champion
from mlops_assets.core.tables import DeltaRsEngine
from mlops_assets_tests.core.promotion_fixtures import fresh_model, registry_fixture, splits_frame
from mlops_assets_tests.core.test_deployment import FakeServer

promotion_registry = registry_fixture
ROWS = test_rows(splits_frame(rows=300), "training_splits@v0")


class Aliases:
    """The registry's aliases of one model, as the fake server reads them."""

    def __init__(self, client, name: str) -> None:
        self.client, self.name = client, name

    def __getitem__(self, alias: str) -> int:
        return int(aliases.alias_version(self.client, self.name, alias))


@pytest.fixture()
def setup(promotion_registry, tmp_path):
    """A model with versions 1 good, 2 near, 3 weak (as the fake server's bundles)."""
    name, versions = fresh_model(promotion_registry, "good", "near", "weak")
    assert versions == [1, 2, 3]
    client = promotion_registry.client()
    engine = DeltaRsEngine(root=str(tmp_path / "lake"))
    settings = DeploySettings(wait_timeout_s=2.0, poll_interval_s=0.05, smoke_rows=8)
    release = Release(client, engine, name, "http://fake", settings, run_id="run-7")
    return release, Aliases(client, name)


def promote(release: Release, version: int, champion: int | None) -> None:
    """Promote as champion_model does: alias moves plus a promotions row."""
    moves = aliases.promote(release.registry, release.model_name, str(version))
    record = PromotionRecord(
        utc_now(), release.model_name, version, champion, "promote", True, "test promotion",
        alias_moves=aliases.moves_json(moves),
    )  # fmt: skip
    append_records(release.engine, [record])


def test_nothing_to_deploy_without_a_champion(setup) -> None:
    release, registry = setup
    assert deploy_champion(release, FakeServer(registry), ROWS) is None
    assert read_history(release.engine, DEPLOYMENTS_TABLE).empty


def test_deployment_is_recorded(setup) -> None:
    release, registry = setup
    promote(release, 1, None)
    promote(release, 2, 1)
    rollout = deploy_champion(release, FakeServer(registry, serving=1), ROWS)
    assert rollout.status == "deployed" and rollout.moves == ()
    [row] = read_history(release.engine, DEPLOYMENTS_TABLE).to_dict("records")
    assert (row["version"], row["previous_version"], row["serving_version"]) == (2, 1, 2)
    assert row["trigger"] == "deploy" and row["status"] == "deployed"
    assert row["smoke_rows"] == 8 and row["smoke_compared"] == 8 and row["smoke_max_abs_diff"] == 0
    assert row["server_url"] == "http://fake" and row["dagster_run_id"] == "run-7"


def test_failed_deployment_moves_champion_back_and_records_both_tables(setup) -> None:
    release, registry = setup
    promote(release, 1, None)
    promote(release, 2, 1)
    server = FakeServer(registry, serving=1, skew={2: 0.3})
    rollout = deploy_champion(release, server, ROWS)
    assert rollout.status == "rolled_back" and server.serving == 1
    state = aliases.alias_state(release.registry, release.model_name)
    assert (state.champion, state.previous_champion) == ("1", None)  # 1 replaced no one
    deployment = read_history(release.engine, DEPLOYMENTS_TABLE).iloc[-1]
    assert deployment["status"] == "rolled_back" and deployment["serving_version"] == 1
    assert "smoke test of version 2 failed" in deployment["reason"]
    assert deployment["smoke_label_mismatches"] > 0
    rollback = read_history(release.engine, PROMOTIONS_TABLE).iloc[-1]
    assert rollback["action"] == "rollback" and rollback["reason"].startswith("automatic rollback")
    assert (rollback["challenger_version"], rollback["champion_version"]) == (1, 2)
    assert {m["alias"] for m in json.loads(rollback["alias_moves"])} == {
        "champion",
        "previous_champion",
    }


def test_rollback_job_logic_restores_previous_champion(setup) -> None:
    release, registry = setup
    release.engine.write(SPLITS_TABLE, splits_frame(rows=300), mode="overwrite")
    for version, champion in ((1, None), (2, 1), (3, 2)):
        promote(release, version, champion)
    server = FakeServer(registry, serving=3)
    rollout = rollback_champion(release, server)
    assert rollout.status == "rolled_back" and server.serving == 2
    assert rollout.record.trigger == "rollback" and rollout.outcome.smoke.passed
    state = aliases.alias_state(release.registry, release.model_name)
    assert (state.champion, state.previous_champion) == ("2", "1")  # walks back the history
    again = rollback_champion(release, server)
    assert again.status == "rolled_back" and server.serving == 1
    state = aliases.alias_state(release.registry, release.model_name)
    assert (state.champion, state.previous_champion) == ("1", None)
    with pytest.raises(aliases.AliasError, match="no 'previous_champion' alias: nothing to roll"):
        rollback_champion(release, server)
    promotions = read_history(release.engine, PROMOTIONS_TABLE)
    rollbacks = promotions[promotions["action"] == "rollback"]
    assert rollbacks["reason"].tolist() == [
        "rollback: champion 3 -> previous_champion 2",
        "rollback: champion 2 -> previous_champion 1",
    ]
    deployments = read_history(release.engine, DEPLOYMENTS_TABLE)
    assert deployments["status"].tolist() == ["rolled_back", "rolled_back"]
    assert deployments["version"].tolist() == [2, 1]
    assert deployments["previous_version"].tolist() == [3, 2]


def test_rollback_without_a_server_is_pending_but_moves_the_alias(setup) -> None:
    release, registry = setup
    promote(release, 1, None)
    promote(release, 2, 1)
    rollout = rollback_champion(release, FakeServer(registry, reachable=False))
    assert rollout.status == "pending" and "no server reachable" in rollout.record.reason
    assert aliases.alias_version(release.registry, release.model_name, "champion") == "1"
    assert read_history(release.engine, PROMOTIONS_TABLE)["action"].tolist()[-1] == "rollback"


def test_server_faster_than_the_deployment_still_rolls_back_to_the_last_good(setup) -> None:
    release, registry = setup
    promote(release, 1, None)
    assert deploy_champion(release, FakeServer(registry, serving=None), ROWS).status == "deployed"
    promote(release, 2, 1)
    server = FakeServer(registry, serving=2, skew={2: 0.3})  # polled the alias already
    rollout = deploy_champion(release, server, ROWS)
    assert rollout.status == "rolled_back" and rollout.record.previous_version == 1
    assert server.serving == 1
    assert aliases.alias_version(release.registry, release.model_name, "champion") == "1"


def test_without_deployment_history_previous_champion_is_the_last_good(setup) -> None:
    release, registry = setup
    promote(release, 1, None)
    promote(release, 2, 1)
    server = FakeServer(registry, serving=2, skew={2: 0.3})
    rollout = deploy_champion(release, server, ROWS)
    assert rollout.status == "rolled_back" and server.serving == 1
