"""Deploy the champion and roll it back: registry aliases, the server and the history tables.

:func:`deploy_champion` (the ``model_deployment`` asset) makes the version the ``champion``
alias points at live; a failure moves ``champion`` back to the version that was serving, so
the registry and the endpoint agree again. :func:`rollback_champion` (the ``rollback_job``
and ``mlops rollback``) moves ``champion`` back to ``previous_champion`` and deploys it.
Alias moves go to ``promotions`` (action ``rollback``), attempts to ``deployments``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mlops_assets.constants import DEPLOYMENTS_TABLE, PROMOTIONS_TABLE, SPLITS_TABLE
from mlops_assets.core import aliases
from mlops_assets.core.comparison import Loader, TestRows, test_rows
from mlops_assets.core.deployment import (
    Deployer,
    DeploymentOutcome,
    DeploySettings,
    deploy_version,
)
from mlops_assets.core.history import (
    DeploymentRecord,
    PromotionRecord,
    append_records,
    last_serving,
    read_history,
    replaced_by,
    utc_now,
)
from mlops_assets.core.model_io import load_bundle_from_uri
from mlops_assets.core.smoke import SmokeCase, smoke_case
from mlops_assets.core.tables import DeltaEngine


@dataclass(frozen=True)
class Release:
    """Where a deployment or rollback happens.

    Attributes:
        registry: ``MlflowClient`` bound to the registry.
        engine: Delta engine holding ``promotions`` and ``deployments``.
        model_name: Registered model name.
        server_url: The serving endpoint's URL (recorded).
        settings: Deployment bounds.
        run_id: Dagster run id (recorded).
        loader: Loads a bundle from a model download URI (injectable for tests).
    """

    registry: Any
    engine: DeltaEngine
    model_name: str
    server_url: str
    settings: DeploySettings
    run_id: str = ""
    loader: Loader = load_bundle_from_uri

    def smoke_factory(self, rows: Callable[[int], TestRows]) -> Callable[[int], SmokeCase]:
        """Build the smoke case of a version from its offline bundle and sample rows."""

        def build(version: int) -> SmokeCase:
            uri = self.registry.get_model_version_download_uri(self.model_name, str(version))
            sample = rows(version)
            return smoke_case(
                version, self.loader(uri), sample.features, sample.labels, self.settings.smoke_rows
            )

        return build

    def restore(self, version: int, replaced: int | None, reason: str) -> tuple:
        """Point ``champion`` back at ``version`` and record the move in ``promotions``."""
        history = read_history(self.engine, PROMOTIONS_TABLE)
        previous = replaced_by(history, self.model_name, version)
        moves = aliases.restore(
            self.registry,
            self.model_name,
            str(version),
            None if previous is None else str(previous),
        )
        record = PromotionRecord(
            decided_at=utc_now(),
            model_name=self.model_name,
            challenger_version=version,
            champion_version=replaced,
            action="rollback",
            decision=True,
            reason=reason,
            alias_moves=aliases.moves_json(moves),
            dagster_run_id=self.run_id,
        )
        append_records(self.engine, [record])
        return moves

    def record(
        self, outcome: DeploymentOutcome, trigger: str, status: str, reason: str = ""
    ) -> DeploymentRecord:
        """Append the attempt to ``deployments`` (``reason`` prefixes the outcome's)."""
        smoke = outcome.smoke
        row = DeploymentRecord(
            attempted_at=utc_now(),
            model_name=self.model_name,
            trigger=trigger,
            version=outcome.version,
            previous_version=outcome.previous_version,
            serving_version=outcome.serving_version,
            status=status,
            reason=f"{reason}; {outcome.reason}" if reason else outcome.reason,
            server_url=self.server_url,
            smoke_rows=smoke.rows if smoke else None,
            smoke_compared=smoke.compared if smoke else None,
            smoke_max_abs_diff=smoke.max_abs_diff if smoke else None,
            smoke_label_mismatches=smoke.label_mismatches if smoke else None,
            seconds=round(outcome.seconds, 3),
            dagster_run_id=self.run_id,
        )
        append_records(self.engine, [row])
        return row


@dataclass(frozen=True)
class Rollout:
    """A recorded deployment attempt.

    Attributes:
        outcome: What happened on the server.
        record: The ``deployments`` row written.
        moves: Alias moves made (rollback).
    """

    outcome: DeploymentOutcome
    record: DeploymentRecord
    moves: tuple[aliases.AliasMove, ...] = ()

    @property
    def status(self) -> str:
        """The recorded status."""
        return self.record.status


def deploy_champion(release: Release, client: Any, rows: TestRows) -> Rollout | None:
    """Make the ``champion`` version live; roll back to the serving version on failure.

    The version rolled back to is the one the server reports before the reload; when the
    server already serves the new champion (its registry poll moved first), it is the last
    version a verified deployment left serving, else ``previous_champion``.

    Args:
        release: Registry, tables and settings.
        client: The serving endpoint (:class:`~mlops_assets.core.deployment.ServingApi`).
        rows: Sample rows for the smoke test (the test split).

    Returns:
        The recorded attempt, or None when no version has the ``champion`` alias.
    """
    champion = aliases.alias_version(release.registry, release.model_name, aliases.CHAMPION_ALIAS)
    if champion is None:
        return None
    version = int(champion)

    def restore(previous: int) -> tuple[aliases.AliasMove, ...]:
        reason = f"automatic rollback: version {version} failed its deployment"
        return release.restore(previous, version, reason)

    last_good = last_serving(read_history(release.engine, DEPLOYMENTS_TABLE), release.model_name)
    if last_good in (None, version):
        previous = aliases.alias_version(
            release.registry, release.model_name, aliases.PREVIOUS_CHAMPION_ALIAS
        )
        last_good = int(previous) if previous is not None else None
    deployer = Deployer(client, release.settings)
    smoke = release.smoke_factory(lambda _: rows)
    outcome = deploy_version(deployer, version, smoke, restore, last_good)
    return Rollout(outcome, release.record(outcome, "deploy", outcome.status), outcome.moves)


def splits_rows(engine: DeltaEngine, registry: Any, model_name: str, version: int) -> TestRows:
    """Test rows of the splits table version ``version`` was trained on (else the latest)."""
    tags = registry.get_model_version(model_name, str(version)).tags or {}
    pinned = tags.get("lineage.splits_version")
    at = int(pinned) if pinned and pinned.lstrip("-").isdigit() and int(pinned) >= 0 else None
    frame = engine.read(SPLITS_TABLE, at)
    return test_rows(frame, f"{SPLITS_TABLE}@v{at if at is not None else 'latest'}")


def rollback_champion(release: Release, client: Any) -> Rollout:
    """Move ``champion`` back to ``previous_champion``, deploy it and record both.

    Args:
        release: Registry, tables and settings.
        client: The serving endpoint.

    Returns:
        The recorded attempt; status ``rolled_back`` when the restored version serves,
        ``pending`` without a server, ``failed`` otherwise.

    Raises:
        AliasError: When there is no ``previous_champion`` to roll back to.
    """
    state = aliases.alias_state(release.registry, release.model_name)
    if state.previous_champion is None:
        raise aliases.AliasError(
            f"registered model {release.model_name!r} has no {aliases.PREVIOUS_CHAMPION_ALIAS!r} "
            f"alias: nothing to roll back to (champion: {state.champion or 'none'})"
        )
    target = int(state.previous_champion)
    current = int(state.champion) if state.champion is not None else None
    reason = f"rollback: champion {current} -> previous_champion {target}"
    moves = release.restore(target, current, reason)
    rows = release.smoke_factory(
        lambda version: splits_rows(release.engine, release.registry, release.model_name, version)
    )
    outcome = deploy_version(Deployer(client, release.settings), target, rows, None)
    status = "rolled_back" if outcome.status == "deployed" else outcome.status
    return Rollout(outcome, release.record(outcome, "rollback", status, reason), moves)
