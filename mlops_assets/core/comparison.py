"""Scoring two registry versions on the same test rows and deciding between them.

A version that cannot load or score is a finding, not a crash: for the challenger it fails
the ``model_loads`` / ``predicts_on_contract`` guardrails; for the champion it means no paired
comparison is possible (the challenger then wins only with a declared contract change).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mlops_assets.constants import LABEL_COLUMN
from mlops_assets.core.evaluation import evaluate
from mlops_assets.core.guardrails import (
    GuardrailResult,
    PromotionDecision,
    PromotionPolicy,
    check_guardrails,
    decide,
)
from mlops_assets.core.model_bundle import ModelBundle
from mlops_assets.core.promotion import paired_bootstrap
from mlops_assets.core.splits import feature_columns, split_frames
from mlops_assets.core.thresholds import check_binary_labels

Loader = Callable[[str], ModelBundle]


@dataclass(frozen=True)
class TestRows:
    """Held-out rows both models are scored on.

    Attributes:
        features: Raw feature columns (every column but ``label`` and ``split``).
        labels: 0/1 labels.
        source: Where the rows come from (``training_splits@v4``), for the history.
    """

    __test__ = False  # not a pytest class

    features: pd.DataFrame
    labels: np.ndarray = field(repr=False)
    source: str


def test_rows(splits: pd.DataFrame, source: str) -> TestRows:
    """The test split of a ``training_splits`` frame as :class:`TestRows`.

    Raises:
        SplitError: When the frame has no usable ``split`` column or test rows.
        ValueError: When the test labels are not 0/1 with both classes.
    """
    test = split_frames(splits).test
    if LABEL_COLUMN not in test.columns:
        raise ValueError(f"{source}: column {LABEL_COLUMN!r} missing; columns are {list(test)}")
    labels = check_binary_labels(test[LABEL_COLUMN].to_numpy(), f"{source} split 'test'")
    return TestRows(test[feature_columns(test)], labels, source)


test_rows.__test__ = False  # not a pytest function


@dataclass(frozen=True)
class Scored:
    """One version scored on the test rows (or why it could not be)."""

    version: int
    bundle: ModelBundle | None = None
    labels: np.ndarray | None = field(default=None, repr=False)
    metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None


def score_version(
    client: Any, model_name: str, version: int, rows: TestRows, loader: Loader
) -> Scored:
    """Load ``version`` from the registry and score it on ``rows``; errors are kept, not raised."""
    try:
        uri = client.get_model_version_download_uri(model_name, str(version))
        bundle = loader(uri)
    except Exception as error:  # noqa: BLE001 - a version that cannot load is a finding
        return Scored(version, error=f"version {version} failed to load: {_text(error)}")
    try:
        probabilities = bundle.predict_proba(rows.features)
        evaluation = evaluate(rows.labels, probabilities, bundle.threshold, rows.source)
    except Exception as error:  # noqa: BLE001
        return Scored(version, bundle, error=f"version {version} failed to score: {_text(error)}")
    return Scored(version, bundle, bundle.labels(probabilities), evaluation.metrics())


def _text(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"


def compare(
    challenger: Scored,
    champion: Scored | None,
    rows: TestRows,
    policy: PromotionPolicy,
    resamples: int,
    seed: int,
) -> PromotionDecision:
    """Run the guardrails on the challenger, bootstrap against the champion, decide.

    Args:
        challenger: The challenger scored on ``rows``.
        champion: The champion scored on the same rows (None: there is no champion).
        rows: The test rows.
        policy: Thresholds.
        resamples: Paired bootstrap resamples.
        seed: Bootstrap seed.
    """
    if challenger.bundle is None:
        loads = (GuardrailResult("model_loads", False, str(challenger.error)),)
        return decide(loads, None, policy)
    guardrails = (GuardrailResult("model_loads", True, "loaded from the registry"),)
    guardrails += check_guardrails(
        challenger.bundle,
        challenger.metrics,
        rows.features,
        policy,
        champion.bundle.contract if champion is not None and champion.bundle else None,
    )
    if champion is None:
        return decide(guardrails, None, policy)
    if champion.labels is None or challenger.labels is None:
        failed = champion.error if champion.labels is None else challenger.error
        base = decide(guardrails, None, policy)
        if base.promote and policy.allow_contract_change and champion.labels is None:
            reason = f"declared contract change; champion cannot be compared ({failed})"
            return PromotionDecision(True, reason, guardrails, None)
        if not base.promote:
            return base
        reason = f"champion kept: no paired comparison possible ({failed})"
        return PromotionDecision(False, reason, guardrails, None)
    bootstrap = paired_bootstrap(rows.labels, champion.labels, challenger.labels, resamples, seed)
    return decide(guardrails, bootstrap, policy)
