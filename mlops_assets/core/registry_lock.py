"""A registry-side lease lock: one champion decision at a time per registered model.

MLflow has no compare-and-set on aliases, but creating a registered model is atomic in every
registry store (a unique name: a primary key in the SQL stores, PostgreSQL included, behind
any number of tracking-server workers). The lock is the registered model
``<model>.champion-lock``: whoever creates it holds the lock, and deleting it releases it.
It works wherever the registry is reachable (no shared filesystem, no direct database
access), so two Dagster runs on two machines serialise their decisions.

A holder that dies leaves the lock behind; its ``expires_at`` tag (the lease) lets the next
caller break it. Holders must finish within the lease (default 15 min; a champion decision
takes seconds).
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

LOCK_SUFFIX = ".champion-lock"
TOKEN_TAG, OWNER_TAG, EXPIRES_TAG = "mlops.lock.token", "mlops.lock.owner", "mlops.lock.expires_at"
LOGGER = logging.getLogger(__name__)


class LockTimeoutError(TimeoutError):
    """The lock stayed held by someone else for longer than the caller would wait."""


@dataclass(frozen=True)
class HeldLock:
    """A lock this process holds.

    Attributes:
        name: The lock's registered model name.
        token: This holder's unique token (a tag on the lock).
        owner: Who holds it (host, pid and the caller's label).
        waited_s: Seconds spent waiting for it.
        broke_stale: Whether an expired lock of a dead holder was broken first.
    """

    name: str
    token: str
    owner: str
    waited_s: float
    broke_stale: bool


def lock_name(model_name: str) -> str:
    """The registered model name that serves as the lock of ``model_name``'s decisions."""
    return f"{model_name}{LOCK_SUFFIX}"


def _error_code(error: Exception) -> str:
    return str(getattr(error, "error_code", ""))


def _holder(client: Any, name: str) -> dict[str, str] | None:
    """The lock's tags, or None when nobody holds it."""
    from mlflow.exceptions import MlflowException

    try:
        return dict(client.get_registered_model(name).tags)
    except MlflowException as error:
        if _error_code(error) == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise


def _delete(client: Any, name: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client.delete_registered_model(name)
    except MlflowException as error:
        if _error_code(error) != "RESOURCE_DOES_NOT_EXIST":
            raise


def _try_create(client: Any, name: str, tags: dict[str, str]) -> bool:
    from mlflow.exceptions import MlflowException

    try:
        client.create_registered_model(
            name, tags=tags, description="Lock of champion decisions (mlops_assets); not a model."
        )
        return True
    except MlflowException as error:
        # ALREADY_EXISTS: someone holds it. DOES_NOT_EXIST: the SQL store's insert collided
        # with a holder that released before the store looked it up to report the collision.
        if _error_code(error) in ("RESOURCE_ALREADY_EXISTS", "RESOURCE_DOES_NOT_EXIST"):
            return False
        raise


@contextmanager
def registry_lock(
    client: Any,
    model_name: str,
    label: str = "",
    timeout_s: float = 600.0,
    lease_s: float = 900.0,
    poll_s: float = 0.25,
) -> Iterator[HeldLock]:
    """Hold ``model_name``'s decision lock for the ``with`` block.

    Args:
        client: ``MlflowClient`` bound to the registry.
        model_name: Registered model whose decisions are serialised.
        label: Names the holder in the lock's tags (e.g. the Dagster run id).
        timeout_s: Longest wait for a lock someone else holds.
        lease_s: How long the lock stays valid if this holder dies without releasing it.
        poll_s: Seconds between attempts.

    Yields:
        The held lock.

    Raises:
        LockTimeoutError: Naming the holder, when the lock stays held past ``timeout_s``.
    """
    name = lock_name(model_name)
    token = uuid.uuid4().hex
    owner = f"{socket.gethostname()}:{os.getpid()}:{label}"
    started = time.monotonic()
    broke = False
    while True:
        tags = {TOKEN_TAG: token, OWNER_TAG: owner, EXPIRES_TAG: f"{time.time() + lease_s:.3f}"}
        if _try_create(client, name, tags):
            break
        holder = _holder(client, name)
        if holder is not None and holder.get(TOKEN_TAG) == token:
            break  # our create landed but its answer was lost and the client retried it
        if holder is not None and float(holder.get(EXPIRES_TAG, "inf")) < time.time():
            # re-read right before breaking: only the lease we judged expired is deleted
            if _holder(client, name) == holder:
                LOGGER.warning("breaking the expired lock %s of %s", name, holder.get(OWNER_TAG))
                _delete(client, name)
                broke = True
            continue
        if time.monotonic() - started > timeout_s:
            who = holder.get(OWNER_TAG, "unknown") if holder else "unknown"
            raise LockTimeoutError(
                f"registry lock {name!r} is held by {who}; waited {timeout_s:.0f} s "
                f"(delete the registered model {name!r} if that holder is gone)"
            )
        time.sleep(poll_s)
    held = HeldLock(name, token, owner, time.monotonic() - started, broke)
    try:
        yield held
    finally:
        holder = _holder(client, name)
        if holder is not None and holder.get(TOKEN_TAG) == token:
            _delete(client, name)
        else:
            LOGGER.error("lock %s was no longer ours at release (lease expired?)", name)
