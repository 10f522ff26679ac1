"""Champion selection against a real MLflow registry and real Delta history."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from mlops_assets.constants import PROMOTIONS_TABLE
from mlops_assets.core import aliases
from mlops_assets.core.champion import select_champion
from mlops_assets.core.comparison import test_rows
from mlops_assets.core.guardrails import PromotionPolicy
from mlops_assets.core.history import read_history
from mlops_assets.core.promotion_report import bootstrap_histogram_png, decision_markdown
from mlops_assets.core.tables import DeltaRsEngine
from mlops_assets_tests.core.promotion_fixtures import fresh_model, registry_fixture, splits_frame

promotion_registry = registry_fixture

ROWS = test_rows(splits_frame(), "training_splits@v0")


@pytest.fixture()
def engine(tmp_path) -> DeltaRsEngine:
    return DeltaRsEngine(root=str(tmp_path / "lake"))


def run(registry, engine, name, version, policy=None, resamples=300):
    policy = policy or PromotionPolicy()
    return select_champion(
        registry.client(), engine, name, version, ROWS, policy, resamples, seed=1, run_id="run-1"
    )


def with_champion(registry, *kinds):
    """A fresh model whose first version is champion; returns name and versions."""
    name, versions = fresh_model(registry, *kinds)
    aliases.promote(registry.client(), name, str(versions[0]))
    return name, versions


def test_first_promotion_needs_only_guardrails(promotion_registry, engine) -> None:
    name, [version] = fresh_model(promotion_registry, "good")
    outcome = run(promotion_registry, engine, name, version)
    assert outcome.decision.promote and "no champion yet" in outcome.reason
    assert outcome.champion_before is None and outcome.champion_after == version
    assert [m.describe() for m in outcome.moves] == [f"champion: none -> {version}"]
    state = aliases.alias_state(promotion_registry.client(), name)
    assert (state.champion, state.previous_champion) == (str(version), None)
    [row] = read_history(engine, PROMOTIONS_TABLE).to_dict("records")
    assert row["action"] == "promote" and row["decision"] and pd.isna(row["champion_version"])
    assert row["bootstrap_resamples"] is None and row["dagster_run_id"] == "run-1"
    assert json.loads(row["challenger_metrics"])["kappa"] == pytest.approx(0.79, abs=0.02)
    assert "**PROMOTED**" in decision_markdown(outcome, PromotionPolicy())


def test_better_challenger_is_promoted_and_former_champion_kept_reachable(
    promotion_registry, engine
) -> None:
    name, [weak, good] = with_champion(promotion_registry, "weak", "good")
    outcome = run(promotion_registry, engine, name, good)
    boot = outcome.bootstrap
    assert outcome.decision.promote and outcome.reason.startswith("challenger wins")
    assert boot.prob_kappa_improves >= 0.99 and boot.kappa_delta_ci[0] > 0
    state = aliases.alias_state(promotion_registry.client(), name)
    assert (state.champion, state.previous_champion) == (str(good), str(weak))
    assert {m.describe() for m in outcome.moves} == {
        f"champion: {weak} -> {good}",
        f"previous_champion: none -> {weak}",
    }
    [row] = read_history(engine, PROMOTIONS_TABLE).to_dict("records")
    assert (row["challenger_version"], row["champion_version"]) == (good, weak)
    assert row["prob_kappa_improves"] == pytest.approx(boot.prob_kappa_improves)
    assert row["kappa_delta_ci_low"] < row["kappa_delta_mean"] < row["kappa_delta_ci_high"]
    assert row["bootstrap_rows"] == len(ROWS.labels) and row["bootstrap_resamples"] == 300
    champion_metrics = json.loads(row["champion_metrics"])
    assert champion_metrics["kappa"] < json.loads(row["challenger_metrics"])["kappa"]
    assert [m["alias"] for m in json.loads(row["alias_moves"])] == [
        "previous_champion",
        "champion",
    ]
    png = bootstrap_histogram_png(boot, 0.9)
    assert png.startswith(b"\x89PNG") and len(png) > 2000


def test_worse_challenger_is_not_promoted(promotion_registry, engine) -> None:
    name, [good, weak] = with_champion(promotion_registry, "good", "weak")
    outcome = run(promotion_registry, engine, name, weak)
    assert not outcome.decision.promote and outcome.reason.startswith("champion kept")
    assert outcome.bootstrap.prob_kappa_improves < 0.01 and outcome.moves == ()
    assert aliases.alias_version(promotion_registry.client(), name, "champion") == str(good)
    [row] = read_history(engine, PROMOTIONS_TABLE).to_dict("records")
    assert row["action"] == "keep" and not row["decision"] and row["alias_moves"] == "[]"


@pytest.mark.parametrize("kind", ["good", "near"])
def test_tie_within_noise_keeps_the_champion(promotion_registry, engine, kind) -> None:
    name, [champion, challenger] = with_champion(promotion_registry, "good", kind)
    outcome = run(promotion_registry, engine, name, challenger)
    boot = outcome.bootstrap
    assert not outcome.decision.promote and "champion kept" in outcome.reason
    assert boot.prob_kappa_improves < 0.9
    if kind == "good":  # the same model twice: every resample is a tie
        assert boot.kappa_delta_ci == (0.0, 0.0) and boot.prob_kappa_improves == 0.0
    else:  # a different model of the same quality: the interval straddles zero
        assert boot.kappa_delta_ci[0] < 0 < boot.kappa_delta_ci[1]
    assert aliases.alias_version(promotion_registry.client(), name, "champion") == str(champion)


GUARDRAIL_CASES = [
    # (challenger kind, policy, failing guardrail, words in the reason)
    ("good", PromotionPolicy(min_kappa=0.95), "min_kappa", "vs minimum 0.9500"),
    ("good", PromotionPolicy(min_pr_auc=0.99), "min_pr_auc", "vs minimum 0.9900"),
    ("narrow", PromotionPolicy(), "serving_contract", "column 'count' removed"),
    ("good", PromotionPolicy(max_latency_ms_per_row=0.0), "latency_per_row", "budget 0.00 ms"),
    ("broken", PromotionPolicy(), "model_loads", "missing pipeline.skops"),
]


@pytest.mark.parametrize(("kind", "policy", "guardrail", "words"), GUARDRAIL_CASES)
def test_each_guardrail_blocks_with_its_reason(
    promotion_registry, engine, kind, policy, guardrail, words
) -> None:
    name, [weak, challenger] = with_champion(promotion_registry, "weak", kind)
    outcome = run(promotion_registry, engine, name, challenger, policy)
    failed = {g.name: g.detail for g in outcome.decision.guardrails if not g.passed}
    assert list(failed) == [guardrail] and words in failed[guardrail]
    assert not outcome.decision.promote and outcome.reason.startswith("blocked by guardrails")
    assert guardrail in outcome.reason and words in outcome.reason
    assert aliases.alias_version(promotion_registry.client(), name, "champion") == str(weak)
    [row] = read_history(engine, PROMOTIONS_TABLE).to_dict("records")
    assert row["action"] == "keep" and guardrail in row["reason"]
    assert {g["name"] for g in json.loads(row["guardrails"]) if not g["passed"]} == {guardrail}


def test_declared_contract_change_passes_the_contract_guardrail(promotion_registry, engine):
    name, [_, narrow] = with_champion(promotion_registry, "weak", "narrow")
    policy = PromotionPolicy(allow_contract_change=True)
    outcome = run(promotion_registry, engine, name, narrow, policy)
    contract = next(g for g in outcome.decision.guardrails if g.name == "serving_contract")
    assert contract.passed and contract.detail.startswith("declared contract change")
    assert outcome.decision.promote  # and it is clearly better than the weak champion


def test_rerun_is_idempotent(promotion_registry, engine) -> None:
    name, [weak, good] = with_champion(promotion_registry, "weak", "good")
    client = promotion_registry.client()
    first = run(promotion_registry, engine, name, good)
    again = run(promotion_registry, engine, name, good)  # champion is now the challenger
    assert first.decision.promote and again.already_decided and again.decision is None
    assert again.record == first.record and again.moves == ()
    assert again.reason.startswith("already decided at") and "(promote)" in again.reason
    kept_name, [champion, worse] = with_champion(promotion_registry, "good", "weak")
    kept = run(promotion_registry, engine, kept_name, worse)
    kept_again = run(promotion_registry, engine, kept_name, worse)
    assert kept_again.already_decided and kept_again.record == kept.record
    assert "(keep)" in kept_again.reason and "**Already decided**" in decision_markdown(
        kept_again, PromotionPolicy()
    )
    history = read_history(engine, PROMOTIONS_TABLE)
    assert len(history) == 2 and set(history["action"]) == {"promote", "keep"}
    state = aliases.alias_state(client, name)
    assert (state.champion, state.previous_champion) == (str(good), str(weak))
    assert aliases.alias_version(client, kept_name, "champion") == str(champion)


def test_alias_set_outside_the_system_is_reported_not_decided(promotion_registry, engine):
    name, [version] = with_champion(promotion_registry, "good")
    outcome = run(promotion_registry, engine, name, version)
    assert outcome.already_decided and outcome.record is None
    assert outcome.reason == f"version {version} already is the champion"
    assert read_history(engine, PROMOTIONS_TABLE).empty


def test_bad_test_rows_are_named() -> None:
    frame = splits_frame(rows=100)
    with pytest.raises(ValueError, match="split 'test' has no positives"):
        test_rows(frame.assign(label=0), "training_splits@v3")
    with pytest.raises(ValueError, match="column 'split' missing"):
        test_rows(frame.drop(columns="split"), "training_splits@v3")
