"""Alias moves on a real MLflow registry: promote, restore, state, bad versions."""

from __future__ import annotations

import json

import pytest

from mlops_assets.core import aliases
from mlops_assets_tests.core.promotion_fixtures import fresh_model, registry_fixture

promotion_registry = registry_fixture


def test_promote_moves_champion_and_keeps_the_former_one(promotion_registry) -> None:
    client = promotion_registry.client()
    name, [v1, v2, v3] = fresh_model(promotion_registry, "good", "weak", "near")
    assert aliases.alias_state(client, name) == aliases.AliasState(name, None, None, None)
    first = aliases.promote(client, name, str(v1))
    assert first == (aliases.AliasMove("champion", None, str(v1)),)
    second = aliases.promote(client, name, str(v2))
    assert [m.describe() for m in second] == [
        f"previous_champion: none -> {v1}",
        f"champion: {v1} -> {v2}",
    ]
    third = aliases.promote(client, name, str(v3))
    assert [m.describe() for m in third] == [
        f"previous_champion: {v1} -> {v2}",
        f"champion: {v2} -> {v3}",
    ]
    assert aliases.promote(client, name, str(v3)) == ()  # already champion: nothing moves
    state = aliases.alias_state(client, name)
    assert (state.champion, state.previous_champion) == (str(v3), str(v2))
    assert json.loads(aliases.moves_json(third))[1] == {
        "alias": "champion",
        "from_version": str(v2),
        "to_version": str(v3),
    }


def test_restore_points_champion_back_and_sets_or_removes_previous(promotion_registry) -> None:
    client = promotion_registry.client()
    name, [v1, v2, v3] = fresh_model(promotion_registry, "good", "weak", "near")
    for version in (v1, v2, v3):
        aliases.promote(client, name, str(version))
    moves = aliases.restore(client, name, str(v2), str(v1))
    assert [m.describe() for m in moves] == [
        f"champion: {v3} -> {v2}",
        f"previous_champion: {v2} -> {v1}",
    ]
    moves = aliases.restore(client, name, str(v1), None)
    assert [m.describe() for m in moves] == [
        f"champion: {v2} -> {v1}",
        f"previous_champion: {v1} -> none",
    ]
    state = aliases.alias_state(client, name)
    assert (state.champion, state.previous_champion) == (str(v1), None)
    assert aliases.restore(client, name, str(v1), str(v1)) == ()  # previous == champion: unset


def test_unknown_version_or_model_is_named(promotion_registry) -> None:
    client = promotion_registry.client()
    name, _ = fresh_model(promotion_registry, "good")
    with pytest.raises(aliases.AliasError, match=f"'{name}' has no version '9'"):
        aliases.promote(client, name, "9")
    with pytest.raises(aliases.AliasError, match="'no_such_model' has no version '1'"):
        aliases.restore(client, "no_such_model", "1", None)
    assert aliases.alias_version(client, "no_such_model", "champion") is None
