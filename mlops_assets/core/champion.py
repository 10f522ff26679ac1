"""Champion selection: compare the challenger with the champion, decide, move aliases, record.

Both versions are loaded from the registry and scored on the same held-out test rows (the
test split the challenger was trained from). Guardrails run on the challenger, a seeded
paired bootstrap compares the two, :func:`~mlops_assets.core.guardrails.decide` decides, a
promotion moves the aliases, and every decision is appended to ``promotions``.

Safe to repeat: when the challenger already is the champion, or ``promotions`` already
holds a decision for this (challenger, champion) pair, nothing is decided, moved or written
again and the earlier decision is reported. Safe to run concurrently: the whole decision
(read champion and history, compare, move, record) holds the model's registry lock
(:mod:`~mlops_assets.core.registry_lock`), so two runs, in any processes or machines, decide
one after the other and the second sees the first's decision and champion.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from mlops_assets.constants import PROMOTIONS_TABLE
from mlops_assets.core import aliases
from mlops_assets.core.comparison import Loader, Scored, TestRows, compare, score_version
from mlops_assets.core.guardrails import PromotionDecision, PromotionPolicy
from mlops_assets.core.history import (
    PromotionRecord,
    append_records,
    earlier_decision,
    metrics_json,
    read_history,
    record_from_row,
    utc_now,
)
from mlops_assets.core.model_io import load_bundle_from_uri
from mlops_assets.core.promotion import BootstrapSummary
from mlops_assets.core.registry_lock import registry_lock
from mlops_assets.core.tables import DeltaEngine
from mlops_assets.core.unseen_rows import SeenRowsCheck, exclude_champion_rows


@dataclass(frozen=True)
class ChampionOutcome:
    """What :func:`select_champion` did.

    Attributes:
        model_name: Registered model name.
        challenger_version: The challenger compared.
        champion_before: The champion when the asset ran (None: none).
        champion_after: The champion afterwards.
        already_decided: True when an earlier decision was reused (nothing written/moved).
        record: The ``promotions`` row written, or the earlier one (None: none exists).
        decision: This run's decision (None when already decided).
        moves: Alias moves applied by this run.
        challenger_metrics: The challenger's metrics on the test rows.
        champion_metrics: The champion's metrics on the same rows.
        seen_rows: What the guard against the champion's own training rows did (None: no
            champion, or no splits table named).
    """

    model_name: str
    challenger_version: int
    champion_before: int | None
    champion_after: int | None
    already_decided: bool
    record: PromotionRecord | None
    decision: PromotionDecision | None
    moves: tuple[aliases.AliasMove, ...] = ()
    challenger_metrics: dict[str, float] = field(default_factory=dict)
    champion_metrics: dict[str, float] = field(default_factory=dict)
    seen_rows: SeenRowsCheck | None = None

    @property
    def reason(self) -> str:
        """Why the champion is what it is after this run."""
        if self.decision is not None:
            return self.decision.reason
        if self.record is not None:
            return f"already decided at {self.record.decided_at:%Y-%m-%d %H:%M:%S} UTC " + (
                f"({self.record.action}): {self.record.reason}"
            )
        return f"version {self.challenger_version} already is the champion"

    @property
    def bootstrap(self) -> BootstrapSummary | None:
        """This run's bootstrap, if one ran."""
        return self.decision.bootstrap if self.decision is not None else None


def _record(
    model_name: str,
    challenger: Scored,
    champion: Scored | None,
    decision: PromotionDecision,
    moves: tuple[aliases.AliasMove, ...],
    rows: TestRows,
    run_id: str,
) -> PromotionRecord:
    boot = decision.bootstrap
    return PromotionRecord(
        decided_at=utc_now(),
        model_name=model_name,
        challenger_version=challenger.version,
        champion_version=champion.version if champion is not None else None,
        action="promote" if decision.promote else "keep",
        decision=decision.promote,
        reason=decision.reason,
        challenger_metrics=metrics_json(challenger.metrics),
        champion_metrics=metrics_json(champion.metrics if champion else {}),
        guardrails=json.dumps([asdict(result) for result in decision.guardrails]),
        alias_moves=aliases.moves_json(moves),
        bootstrap_resamples=boot.resamples if boot else None,
        bootstrap_rows=boot.rows if boot else None,
        kappa_delta_mean=boot.kappa_delta_mean if boot else None,
        kappa_delta_ci_low=boot.kappa_delta_ci[0] if boot else None,
        kappa_delta_ci_high=boot.kappa_delta_ci[1] if boot else None,
        f1_delta_mean=boot.f1_delta_mean if boot else None,
        f1_delta_ci_low=boot.f1_delta_ci[0] if boot else None,
        f1_delta_ci_high=boot.f1_delta_ci[1] if boot else None,
        prob_kappa_improves=boot.prob_kappa_improves if boot else None,
        splits_table=rows.source,
        dagster_run_id=run_id,
    )


def select_champion(
    client: Any,
    engine: DeltaEngine,
    model_name: str,
    challenger_version: int,
    rows: TestRows,
    policy: PromotionPolicy,
    resamples: int = 1000,
    seed: int = 0,
    run_id: str = "",
    loader: Loader = load_bundle_from_uri,
    lock_timeout_s: float = 600.0,
    splits_name: str | None = None,
) -> ChampionOutcome:
    """Decide whether the challenger becomes champion; move aliases and record the decision.

    Args:
        client: ``MlflowClient`` bound to the registry.
        engine: Delta engine holding ``promotions``.
        model_name: Registered model name.
        challenger_version: The challenger's version.
        rows: Held-out test rows (the challenger's test split).
        policy: Guardrail and decision thresholds.
        resamples: Paired bootstrap resamples.
        seed: Bootstrap seed.
        run_id: Dagster run id, recorded.
        loader: Loads a bundle from a model download URI (injectable for tests).
        lock_timeout_s: Longest wait for another run's decision on the same model.
        splits_name: The ``training_splits`` table ``rows`` come from. When given, test rows
            the champion was trained on (its lineage's splits version) are left out of the
            comparison (:mod:`~mlops_assets.core.unseen_rows`).

    Returns:
        The outcome; ``already_decided`` when an earlier decision was reused.

    Raises:
        LockTimeoutError: When another decision holds the lock past ``lock_timeout_s``.
    """
    with registry_lock(client, model_name, label=run_id, timeout_s=lock_timeout_s):
        return _decide(
            client,
            engine,
            model_name,
            challenger_version,
            rows,
            policy,
            resamples,
            seed,
            run_id,
            loader,
            splits_name,
        )


def _decide(
    client: Any,
    engine: DeltaEngine,
    model_name: str,
    challenger_version: int,
    rows: TestRows,
    policy: PromotionPolicy,
    resamples: int,
    seed: int,
    run_id: str,
    loader: Loader,
    splits_name: str | None = None,
) -> ChampionOutcome:
    """:func:`select_champion`'s decision, run while holding the model's registry lock."""
    champion_version = aliases.alias_version(client, model_name, aliases.CHAMPION_ALIAS)
    champion_id = int(champion_version) if champion_version is not None else None
    history = read_history(engine, PROMOTIONS_TABLE)
    if champion_id == challenger_version:
        earlier = _latest_promotion(history, model_name, challenger_version)
    else:
        earlier = earlier_decision(history, model_name, challenger_version, champion_id)
    if champion_id == challenger_version or earlier is not None:
        return ChampionOutcome(
            model_name, challenger_version, champion_id, champion_id, True, earlier, None
        )
    seen_rows = None
    if champion_id is not None and splits_name is not None:
        rows, seen_rows = exclude_champion_rows(
            client, engine, model_name, champion_id, splits_name, rows
        )
    challenger = score_version(client, model_name, challenger_version, rows, loader)
    champion = (
        score_version(client, model_name, champion_id, rows, loader)
        if champion_id is not None
        else None
    )
    decision = compare(challenger, champion, rows, policy, resamples, seed)
    moves = aliases.promote(client, model_name, str(challenger_version)) if decision.promote else ()
    record = _record(model_name, challenger, champion, decision, moves, rows, run_id)
    append_records(engine, [record])
    return ChampionOutcome(
        model_name=model_name,
        challenger_version=challenger_version,
        champion_before=champion_id,
        champion_after=challenger_version if decision.promote else champion_id,
        already_decided=False,
        record=record,
        decision=decision,
        moves=moves,
        challenger_metrics=challenger.metrics,
        champion_metrics=champion.metrics if champion else {},
        seen_rows=seen_rows,
    )


def _latest_promotion(
    history: pd.DataFrame, model_name: str, version: int
) -> PromotionRecord | None:
    if history.empty:
        return None
    mask = (
        (history["model_name"] == model_name)
        & (history["challenger_version"] == version)
        & history["action"].isin(("promote", "rollback"))
    )
    return record_from_row(history[mask].iloc[-1]) if mask.any() else None
