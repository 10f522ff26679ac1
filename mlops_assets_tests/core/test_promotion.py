from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import cohen_kappa_score, confusion_matrix, f1_score

from mlops_assets.core.contract import ColumnSpec, InputContract, contract_from_frame
from mlops_assets.core.guardrails import PromotionPolicy, check_guardrails, decide
from mlops_assets.core.model_bundle import ModelBundle
from mlops_assets.core.promotion import kappa_and_f1, paired_bootstrap


def _labels(n: int = 20_000, seed: int = 3):
    rng = np.random.default_rng(seed)
    truth = (rng.random(n) < 0.02).astype(int)

    def noisy(rate: float) -> np.ndarray:
        flipped = truth.copy()
        flips = rng.random(n) < rate
        flipped[flips] ^= 1
        return flipped

    return truth, noisy


def test_kappa_and_f1_match_sklearn() -> None:
    truth, noisy = _labels()
    predicted = noisy(0.01)
    tn, fp, fn, tp = confusion_matrix(truth, predicted).ravel()
    kappa, f1 = kappa_and_f1(tp, fp, fn, tn)
    assert kappa == pytest.approx(cohen_kappa_score(truth, predicted))
    assert f1 == pytest.approx(f1_score(truth, predicted))


def test_bootstrap_is_seeded_and_sees_a_better_challenger() -> None:
    truth, noisy = _labels()
    champion, challenger = noisy(0.01), noisy(0.002)
    first = paired_bootstrap(truth, champion, challenger, resamples=300, seed=7)
    again = paired_bootstrap(truth, champion, challenger, resamples=300, seed=7)
    assert first == again and len(first.kappa_deltas) == 300
    assert first.prob_kappa_improves > 0.99
    assert first.kappa_delta_ci[0] > 0 and first.f1_delta_mean > 0


def test_identical_models_are_a_tie() -> None:
    truth, noisy = _labels()
    same = noisy(0.005)
    summary = paired_bootstrap(truth, same, same, resamples=200)
    assert summary.prob_kappa_improves == 0.0
    assert summary.kappa_delta_ci == (0.0, 0.0)


def test_bootstrap_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="equal lengths"):
        paired_bootstrap(np.zeros(3), np.zeros(3), np.zeros(2))
    with pytest.raises(ValueError, match="resamples"):
        paired_bootstrap(np.zeros(3), np.zeros(3), np.zeros(3), resamples=0)


@pytest.fixture()
def challenger() -> tuple[ModelBundle, pd.DataFrame]:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300)})
    model = LogisticRegression().fit(frame, (frame["a"] > 1).astype(int))
    return ModelBundle(model, 0.5, contract_from_frame(frame)), frame


def test_guardrails_pass_and_first_promotion(challenger) -> None:
    bundle, frame = challenger
    results = check_guardrails(
        bundle, {"kappa": 0.9, "pr_auc": 0.9}, frame, PromotionPolicy(), None
    )
    assert [r.name for r in results] == [
        "min_kappa",
        "min_pr_auc",
        "serving_contract",
        "predicts_on_contract",
        "latency_per_row",
    ]
    decision = decide(results, None, PromotionPolicy())
    assert decision.promote and "no champion" in decision.reason


def test_each_guardrail_blocks_with_its_reason(challenger) -> None:
    bundle, frame = challenger
    other = InputContract((ColumnSpec("a", "number"), ColumnSpec("c", "string")))
    policy = PromotionPolicy(max_latency_ms_per_row=0.0)
    results = check_guardrails(bundle, {"kappa": 0.1}, frame, policy, other)
    failed = {r.name: r.detail for r in results if not r.passed}
    assert set(failed) == {"min_kappa", "min_pr_auc", "serving_contract", "latency_per_row"}
    assert "column 'c' removed" in failed["serving_contract"]
    assert "metric missing" in failed["min_pr_auc"]
    decision = decide(results, None, policy)
    assert not decision.promote and "min_kappa" in decision.reason
    declared = check_guardrails(
        bundle,
        {"kappa": 0.9, "pr_auc": 0.9},
        frame,
        PromotionPolicy(allow_contract_change=True),
        other,
    )
    assert all(r.passed for r in declared)


def test_broken_model_fails_predict_guardrail(challenger) -> None:
    bundle, frame = challenger
    results = check_guardrails(
        bundle, {"kappa": 0.9, "pr_auc": 0.9}, frame.drop(columns="b"), PromotionPolicy(), None
    )
    failed = [r for r in results if not r.passed]
    assert [r.name for r in failed] == ["predicts_on_contract"] and "KeyError" in failed[0].detail


def test_decision_against_champion() -> None:
    truth, noisy = _labels()
    champion = noisy(0.01)
    better = paired_bootstrap(truth, champion, noisy(0.002), resamples=200)
    worse = paired_bootstrap(truth, champion, noisy(0.03), resamples=200)
    tie = paired_bootstrap(truth, champion, champion, resamples=200)
    policy = PromotionPolicy()
    assert decide((), better, policy).promote
    assert not decide((), worse, policy).promote
    kept = decide((), tie, policy)
    assert not kept.promote and "champion kept" in kept.reason
