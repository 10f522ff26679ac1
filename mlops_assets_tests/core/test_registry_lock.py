"""The registry lock and concurrent champion decisions, against a real MLflow registry."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from mlops_assets.constants import PROMOTIONS_TABLE
from mlops_assets.core import aliases
from mlops_assets.core.champion import select_champion
from mlops_assets.core.comparison import test_rows
from mlops_assets.core.guardrails import PromotionPolicy
from mlops_assets.core.history import read_history
from mlops_assets.core.registry_lock import (
    EXPIRES_TAG,
    OWNER_TAG,
    LockTimeoutError,
    lock_name,
    registry_lock,
)
from mlops_assets.core.tables import DeltaRsEngine
from mlops_assets_tests.core.promotion_fixtures import fresh_model, registry_fixture, splits_frame

promotion_registry = registry_fixture
ROWS = test_rows(splits_frame(), "training_splits@v0")


def _together(*calls):
    """Run ``calls`` in threads released at the same instant; return their results in order."""
    barrier = threading.Barrier(len(calls))

    def go(call):
        barrier.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(go, calls))


def test_lock_admits_one_holder_at_a_time_and_is_released(promotion_registry) -> None:
    client = promotion_registry.client()
    name, _ = fresh_model(promotion_registry, "good")
    inside, overlaps, entries = [0], [0], []
    guard = threading.Lock()

    def hold(label: str):
        def call():
            with registry_lock(client, name, label=label, poll_s=0.05) as held:
                with guard:
                    inside[0] += 1
                    overlaps[0] = max(overlaps[0], inside[0])
                entries.append(label)
                time.sleep(0.2)
                with guard:
                    inside[0] -= 1
                return held

        return call

    held = _together(*(hold(f"worker-{index}") for index in range(4)))
    print(f"\nregistry lock: 4 holders, most at once {overlaps[0]}, entries {entries}")
    assert overlaps[0] == 1 and sorted(entries) == [f"worker-{index}" for index in range(4)]
    assert len({lock.token for lock in held}) == 4
    assert max(lock.waited_s for lock in held) >= 0.5  # the last one waited for three others
    assert client.search_registered_models(f"name = '{lock_name(name)}'") == []


def test_expired_lock_is_broken_and_a_live_one_times_out_naming_its_holder(
    promotion_registry,
) -> None:
    client = promotion_registry.client()
    name, _ = fresh_model(promotion_registry, "good")
    stale = {EXPIRES_TAG: f"{time.time() - 1:.3f}", OWNER_TAG: "dead-host:1:run-x"}
    client.create_registered_model(lock_name(name), tags=stale)
    with registry_lock(client, name, label="next") as held:
        assert held.broke_stale
        with pytest.raises(LockTimeoutError, match=r"held by .*:next"):
            with registry_lock(client, name, timeout_s=0.3, poll_s=0.05):
                pass
    with registry_lock(client, name) as again:
        assert not again.broke_stale


def _decide(registry, engine, name, version, run_id):
    return lambda: select_champion(
        registry.client(), engine, name, version, ROWS, PromotionPolicy(), 200, 1, run_id
    )


def test_two_runs_deciding_the_same_pair_at_once_decide_and_move_once(
    promotion_registry, tmp_path
) -> None:
    engine = DeltaRsEngine(root=str(tmp_path / "lake"))
    name, [weak, good] = fresh_model(promotion_registry, "weak", "good")
    aliases.promote(promotion_registry.client(), name, str(weak))
    outcomes = _together(
        _decide(promotion_registry, engine, name, good, "run-a"),
        _decide(promotion_registry, engine, name, good, "run-b"),
    )
    decided = [outcome for outcome in outcomes if not outcome.already_decided]
    history = read_history(engine, PROMOTIONS_TABLE)
    print(f"\nsame pair twice at once: {len(decided)} decision, {len(history)} promotions row")
    assert len(decided) == 1 and decided[0].decision.promote
    assert len(history) == 1 and len(decided[0].moves) == 2
    reused = next(outcome for outcome in outcomes if outcome.already_decided)
    assert reused.moves == () and reused.champion_after == good
    state = aliases.alias_state(promotion_registry.client(), name)
    assert (state.champion, state.previous_champion) == (str(good), str(weak))


def test_two_challengers_at_once_are_each_judged_against_the_champion_of_their_turn(
    promotion_registry, tmp_path
) -> None:
    engine = DeltaRsEngine(root=str(tmp_path / "lake"))
    name, [weak, good, xgb_good] = fresh_model(promotion_registry, "weak", "good", "xgb_good")
    aliases.promote(promotion_registry.client(), name, str(weak))
    outcomes = _together(
        _decide(promotion_registry, engine, name, good, "run-a"),
        _decide(promotion_registry, engine, name, xgb_good, "run-b"),
    )
    history = read_history(engine, PROMOTIONS_TABLE)
    first, second = history.to_dict("records")
    pairs = [(r["challenger_version"], r["champion_version"], r["action"]) for r in (first, second)]
    print(f"\ntwo challengers at once: (challenger, champion, action) {pairs}")
    assert not any(outcome.already_decided for outcome in outcomes)
    assert first["champion_version"] == weak and first["action"] == "promote"
    # the second decision compared against the champion the first one left, not a stale one
    assert second["champion_version"] == first["challenger_version"]
    moves = sum(len(outcome.moves) for outcome in outcomes)
    promotes = sum(record["action"] == "promote" for record in (first, second))
    assert moves == 2 * promotes  # champion and previous_champion, once per promotion
    state = aliases.alias_state(promotion_registry.client(), name)
    winner = (
        second["challenger_version"]
        if second["action"] == "promote"
        else second["champion_version"]
    )
    assert state.champion == str(winner)


class _LostAnswer:
    """A client whose first create lands but answers 'already exists' (a retried request)."""

    def __init__(self, client) -> None:
        self.client, self.creates = client, 0

    def __getattr__(self, name):
        return getattr(self.client, name)

    def create_registered_model(self, name, **kwargs):
        from mlflow.exceptions import MlflowException
        from mlflow.protos.databricks_pb2 import RESOURCE_ALREADY_EXISTS

        self.creates += 1
        self.client.create_registered_model(name, **kwargs)
        if self.creates == 1:
            raise MlflowException("already exists", error_code=RESOURCE_ALREADY_EXISTS)


def test_a_create_whose_answer_was_lost_still_holds_the_lock(promotion_registry) -> None:
    client = _LostAnswer(promotion_registry.client())
    name, _ = fresh_model(promotion_registry, "good")
    with registry_lock(client, name, timeout_s=2.0) as held:
        assert client.creates == 1 and not held.broke_stale
    assert client.search_registered_models(f"name = '{lock_name(name)}'") == []
