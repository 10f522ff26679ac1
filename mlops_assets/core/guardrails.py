"""Promotion guardrails and the champion/challenger decision.

Guardrails block a promotion whatever the statistics say: minimum quality (kappa, PR AUC),
the serving input contract (the challenger must take the champion's columns and kinds
unless a contract change is declared, and must predict on them), and per-row latency.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mlops_assets.core.contract import InputContract
from mlops_assets.core.model_bundle import ModelBundle
from mlops_assets.core.promotion import BootstrapSummary


@dataclass(frozen=True)
class PromotionPolicy:
    """Thresholds of the promotion decision.

    Attributes:
        min_prob_kappa_improves: Required bootstrap probability that kappa improves.
        f1_tolerance: How much lower the challenger's mean F1 may be than the champion's.
        min_kappa: Guardrail: minimum test kappa of the challenger.
        min_pr_auc: Guardrail: minimum test PR AUC of the challenger.
        max_latency_ms_per_row: Guardrail: median single-row prediction latency budget.
        allow_contract_change: Whether a challenger may change the serving input contract.
    """

    min_prob_kappa_improves: float = 0.9
    f1_tolerance: float = 0.01
    min_kappa: float = 0.5
    min_pr_auc: float = 0.5
    max_latency_ms_per_row: float = 20.0
    allow_contract_change: bool = False


@dataclass(frozen=True)
class GuardrailResult:
    """Outcome of one guardrail.

    Attributes:
        name: Guardrail name.
        passed: Whether it passed.
        detail: The measured value against its limit, or the failure.
    """

    name: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class PromotionDecision:
    """What the comparison decided, and why.

    Attributes:
        promote: Whether the challenger becomes champion.
        reason: One sentence a person can act on.
        guardrails: Every guardrail outcome.
        bootstrap: The paired bootstrap, when a champion existed and guardrails passed.
    """

    promote: bool
    reason: str
    guardrails: tuple[GuardrailResult, ...]
    bootstrap: BootstrapSummary | None


def median_row_latency_ms(
    bundle: ModelBundle, rows: pd.DataFrame, repeats: int = 30, rounds: int = 3
) -> float:
    """Median milliseconds of single-row ``predict_proba`` calls over the first rows.

    Measured as served (the classifier on one thread, like ``mlops serve``), after one
    warm-up call, and as the lowest of ``rounds`` medians: as with ``timeit``, slower
    rounds measure other processes competing for the CPU, not the model.
    """
    served = _single_threaded(bundle)
    count = min(repeats, len(rows))
    if count:
        served.predict_proba(rows.iloc[[0]])
    medians = []
    for _ in range(rounds if count else 0):
        timings = []
        for index in range(count):
            row = rows.iloc[[index]]
            started = time.perf_counter()
            served.predict_proba(row)
            timings.append((time.perf_counter() - started) * 1000.0)
        medians.append(float(np.median(timings)))
    return min(medians) if medians else float("inf")


def _classifier(pipeline: Any) -> Any:
    return pipeline.steps[-1][1] if hasattr(pipeline, "steps") else pipeline


def _single_threaded(bundle: ModelBundle) -> ModelBundle:
    if not hasattr(_classifier(bundle.pipeline), "get_booster"):
        return bundle
    served = copy.deepcopy(bundle)
    _classifier(served.pipeline).set_params(n_jobs=1)
    _classifier(served.pipeline).get_booster().set_param({"nthread": 1})
    return served


def check_guardrails(
    challenger: ModelBundle,
    metrics: dict[str, float],
    test_features: pd.DataFrame,
    policy: PromotionPolicy,
    champion_contract: InputContract | None,
) -> tuple[GuardrailResult, ...]:
    """Run every guardrail on the challenger.

    Args:
        challenger: The challenger bundle, loaded from the registry.
        metrics: The challenger's test metrics (``kappa``, ``pr_auc``).
        test_features: Raw test rows with at least the contract's columns.
        policy: Thresholds.
        champion_contract: The current champion's contract, or None without a champion.

    Returns:
        One result per guardrail, in a stable order.
    """
    results = [
        _at_least("min_kappa", metrics.get("kappa"), policy.min_kappa),
        _at_least("min_pr_auc", metrics.get("pr_auc"), policy.min_pr_auc),
    ]
    changes = champion_contract.differences(challenger.contract) if champion_contract else []
    contract_ok = not changes or policy.allow_contract_change
    detail = "same columns and kinds as the champion" if not changes else "; ".join(changes)
    if changes and policy.allow_contract_change:
        detail = f"declared contract change: {detail}"
    results.append(GuardrailResult("serving_contract", contract_ok, detail))
    try:
        probabilities = challenger.predict_proba(test_features.head(256))
        finite = bool(np.isfinite(probabilities).all())
        results.append(
            GuardrailResult(
                "predicts_on_contract",
                finite,
                "finite probabilities on contract rows" if finite else "non-finite probabilities",
            )
        )
        latency = median_row_latency_ms(challenger, test_features)
        results.append(
            GuardrailResult(
                "latency_per_row",
                latency <= policy.max_latency_ms_per_row,
                f"{latency:.2f} ms median vs budget {policy.max_latency_ms_per_row:.2f} ms",
            )
        )
    except Exception as error:  # any failure to predict is a guardrail failure, not a crash
        results.append(
            GuardrailResult("predicts_on_contract", False, f"{type(error).__name__}: {error}")
        )
    return tuple(results)


def _at_least(name: str, value: float | None, limit: float) -> GuardrailResult:
    if value is None or not np.isfinite(value):
        return GuardrailResult(name, False, f"metric missing (limit {limit:.3f})")
    return GuardrailResult(name, value >= limit, f"{value:.4f} vs minimum {limit:.4f}")


def decide(
    guardrails: tuple[GuardrailResult, ...],
    bootstrap: BootstrapSummary | None,
    policy: PromotionPolicy,
) -> PromotionDecision:
    """Combine guardrails and the bootstrap into a decision.

    Args:
        guardrails: Results of :func:`check_guardrails`.
        bootstrap: The paired bootstrap against the champion, or None when there is none.
        policy: Thresholds.

    Returns:
        The decision with its reason.
    """
    failed = [result for result in guardrails if not result.passed]
    if failed:
        reason = "blocked by guardrails: " + "; ".join(f"{r.name} ({r.detail})" for r in failed)
        return PromotionDecision(False, reason, guardrails, bootstrap)
    if bootstrap is None:
        return PromotionDecision(True, "no champion yet; guardrails passed", guardrails, None)
    improves = bootstrap.prob_kappa_improves >= policy.min_prob_kappa_improves
    f1_ok = bootstrap.f1_delta_mean >= -policy.f1_tolerance
    summary = (
        f"P(kappa improves)={bootstrap.prob_kappa_improves:.3f} "
        f"(need >= {policy.min_prob_kappa_improves:.2f}), "
        f"mean F1 delta={bootstrap.f1_delta_mean:+.4f} (tolerance {policy.f1_tolerance:.4f})"
    )
    if improves and f1_ok:
        return PromotionDecision(True, f"challenger wins: {summary}", guardrails, bootstrap)
    return PromotionDecision(False, f"champion kept: {summary}", guardrails, bootstrap)
