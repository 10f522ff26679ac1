"""Audited moves of the ``champion`` and ``previous_champion`` aliases in the MLflow registry.

The ``champion`` alias is the source of truth of what should serve: the serving endpoint
follows it. A promotion points ``champion`` at the challenger and keeps the former champion
reachable as ``previous_champion``; a rollback points ``champion`` back at
``previous_champion``. Every function returns the :class:`AliasMove` list it applied, so the
caller can record exactly what changed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from mlops_assets.constants import CHALLENGER_ALIAS, CHAMPION_ALIAS, PREVIOUS_CHAMPION_ALIAS


class AliasError(LookupError):
    """An alias move is impossible (alias missing, version unknown); the message says which."""


@dataclass(frozen=True)
class AliasMove:
    """One alias change.

    Attributes:
        alias: The alias that moved.
        from_version: Version it pointed at before (None: it did not exist).
        to_version: Version it points at now (None: it was removed).
    """

    alias: str
    from_version: str | None
    to_version: str | None

    def describe(self) -> str:
        """``champion: 1 -> 2`` (``none`` for a missing side)."""
        return f"{self.alias}: {self.from_version or 'none'} -> {self.to_version or 'none'}"


def moves_json(moves: Sequence[AliasMove]) -> str:
    """Serialise alias moves for a history row."""
    return json.dumps([asdict(move) for move in moves])


@dataclass(frozen=True)
class AliasState:
    """Where the managed aliases of one registered model point.

    Attributes:
        model_name: Registered model name.
        champion: Version of ``champion`` (None when unset).
        previous_champion: Version of ``previous_champion`` (None when unset).
        challenger: Version of ``challenger`` (None when unset).
    """

    model_name: str
    champion: str | None
    previous_champion: str | None
    challenger: str | None


def alias_version(client: Any, model_name: str, alias: str) -> str | None:
    """Return the version ``alias`` points at, or None when the alias (or model) is unset.

    Args:
        client: An ``MlflowClient`` bound to the registry.
        model_name: Registered model name.
        alias: Alias name.
    """
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(model_name, alias).version)
    except MlflowException as error:
        if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise


def alias_state(client: Any, model_name: str) -> AliasState:
    """Resolve ``champion``, ``previous_champion`` and ``challenger`` of ``model_name``."""
    return AliasState(
        model_name=model_name,
        champion=alias_version(client, model_name, CHAMPION_ALIAS),
        previous_champion=alias_version(client, model_name, PREVIOUS_CHAMPION_ALIAS),
        challenger=alias_version(client, model_name, CHALLENGER_ALIAS),
    )


def _point(
    client: Any, model_name: str, alias: str, version: str | None, before: str | None
) -> AliasMove | None:
    """Point ``alias`` at ``version`` (None removes it); return the move, None if unchanged."""
    if version == before:
        return None
    if version is None:
        client.delete_registered_model_alias(model_name, alias)
    else:
        client.set_registered_model_alias(model_name, alias, str(version))
    return AliasMove(alias, before, version)


def _check_version(client: Any, model_name: str, version: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client.get_model_version(model_name, str(version))
    except MlflowException as error:
        raise AliasError(f"registered model {model_name!r} has no version {version!r}") from error


def promote(client: Any, model_name: str, version: str) -> tuple[AliasMove, ...]:
    """Point ``champion`` at ``version`` and ``previous_champion`` at the former champion.

    Nothing moves when ``version`` already is the champion. Without a former champion,
    ``previous_champion`` is left as it is.

    Args:
        client: An ``MlflowClient`` bound to the registry.
        model_name: Registered model name.
        version: The version to promote.

    Returns:
        The moves applied, ``previous_champion`` first.

    Raises:
        AliasError: When ``version`` does not exist.
    """
    _check_version(client, model_name, version)
    state = alias_state(client, model_name)
    if state.champion == str(version):
        return ()
    moves = []
    if state.champion is not None:
        moves.append(
            _point(
                client, model_name, PREVIOUS_CHAMPION_ALIAS, state.champion, state.previous_champion
            )
        )
    moves.append(_point(client, model_name, CHAMPION_ALIAS, str(version), state.champion))
    return tuple(move for move in moves if move is not None)


def restore(
    client: Any, model_name: str, version: str, previous: str | None
) -> tuple[AliasMove, ...]:
    """Point ``champion`` back at ``version`` and ``previous_champion`` at ``previous``.

    Used by rollbacks: ``previous`` is the champion that ``version`` replaced when it was
    promoted (from the promotions history), or None to remove ``previous_champion``.

    Args:
        client: An ``MlflowClient`` bound to the registry.
        model_name: Registered model name.
        version: The version to make champion again.
        previous: The version ``previous_champion`` points at afterwards (None: removed).

    Returns:
        The moves applied, ``champion`` first.

    Raises:
        AliasError: When ``version`` does not exist.
    """
    _check_version(client, model_name, version)
    state = alias_state(client, model_name)
    if previous is not None and previous == str(version):
        previous = None
    moves = (
        _point(client, model_name, CHAMPION_ALIAS, str(version), state.champion),
        _point(client, model_name, PREVIOUS_CHAMPION_ALIAS, previous, state.previous_champion),
    )
    return tuple(move for move in moves if move is not None)
