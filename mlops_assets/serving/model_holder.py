"""Which model versions serve, and how they change: load, warm, verify, then swap atomically.

The holder keeps one immutable :class:`ServingState` (primary version, optional canary
version, canary fraction). A request reads the state once and finishes on the versions it
saw, so a swap never affects a request in flight. :meth:`ModelHolder.refresh` resolves the
configured aliases of the configured registered model (never any other model), loads every
version that changed, warms and checks it, and publishes a new state only with versions that
passed; a version that fails is reported and the previous one keeps serving. A poller thread
calls ``refresh`` at a fixed interval so a moved alias is noticed without an admin call.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from mlops_assets.core.inference_log import RESERVED_COLUMNS
from mlops_assets.core.model_bundle import ModelBundle
from mlops_assets.core.model_io import load_bundle_from_uri
from mlops_assets.serving.loaded_model import (
    LoadedModel,
    LoadFailure,
    ModelLoadError,
    RefreshOutcome,
    ServingState,
    canary_share,
    input_examples,
    limit_threads,
    now_iso,
    warm,
)
from mlops_assets.serving.validation import ContractValidator, UnexpectedPolicy

__all__ = ["ModelHolder", "ServingState", "LoadedModel", "ModelLoadError", "canary_share"]

logger = logging.getLogger(__name__)
PRIMARY, CANARY = "primary", "canary"


class ModelHolder:
    """Loads the configured aliases of one registered model and swaps them in atomically."""

    def __init__(
        self,
        client: Any,
        model_name: str,
        alias: str,
        canary_alias: str | None = None,
        canary_fraction: float = 0.0,
        unexpected: UnexpectedPolicy = "reject",
        max_rows: int = 1000,
        threads: int = 1,
        loader: Callable[[str], ModelBundle] = load_bundle_from_uri,
    ) -> None:
        """Configure; nothing is loaded before the first :meth:`refresh`.

        Args:
            client: ``MlflowClient`` bound to the registry.
            model_name: The only registered model this server loads.
            alias: Alias of the primary version (``champion``).
            canary_alias: Optional alias of a canary version.
            canary_fraction: Share of requests the canary answers (0..1).
            unexpected: Policy for columns outside the contract.
            max_rows: Most rows per request.
            threads: Threads the classifier may use per prediction.
            loader: Loads a bundle from a model URI (injectable for tests).
        """
        if not 0.0 <= canary_fraction <= 1.0:
            raise ValueError(f"canary fraction must be within [0, 1], got {canary_fraction}")
        self.client = client
        self.model_name = model_name
        self.aliases = {PRIMARY: alias, CANARY: canary_alias}
        self.unexpected = unexpected
        self.max_rows = max_rows
        self.threads = threads
        self.loader = loader
        self.state = ServingState(canary_fraction=canary_fraction)
        self.failures: dict[str, LoadFailure] = {}
        self.last_failure: LoadFailure | None = None
        self.failure_count = 0
        self.waiting_reason: str | None = "the first registry poll has not finished"
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None

    def _resolve(self, alias: str) -> Any | None:
        from mlflow.exceptions import MlflowException

        try:
            return self.client.get_model_version_by_alias(self.model_name, alias)
        except MlflowException as error:
            if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                return None
            raise

    def load(self, role: str, alias: str, version: Any) -> LoadedModel:
        """Load, warm and verify one registry version.

        Raises:
            ModelLoadError: With the version and the reason.
        """
        started = time.perf_counter()
        number = int(version.version)
        try:
            uri = self.client.get_model_version_download_uri(self.model_name, number)
            bundle = self.loader(uri)
            limit_threads(bundle, self.threads)
            clash = sorted(RESERVED_COLUMNS & set(bundle.contract.names))
            if clash:
                raise ModelLoadError(f"contract columns {clash} clash with inference_log columns")
            scorer, contract = warm(bundle, input_examples(uri))
        except Exception as error:  # noqa: BLE001 - reported, the old version keeps serving
            raise ModelLoadError(
                f"{self.model_name} version {number} ({alias}) failed to load: "
                f"{type(error).__name__}: {error}"
            ) from error
        return LoadedModel(
            name=self.model_name,
            version=number,
            alias=alias,
            role=role,
            scorer=scorer,
            validator=ContractValidator(contract, self.unexpected, self.max_rows),
            tags=dict(version.tags or {}),
            run_id=version.run_id,
            loaded_at=datetime.now(UTC),
            load_seconds=time.perf_counter() - started,
        )

    def refresh(self, force: bool = False) -> RefreshOutcome:
        """Re-resolve the aliases and swap in every version that changed and loads cleanly.

        Args:
            force: Reload even versions already serving or that failed before.
        """
        with self._lock:
            state, outcome = self.state, RefreshOutcome()
            updates: dict[str, LoadedModel | None] = {}
            for role, alias in self.aliases.items():
                if alias is None:
                    continue
                current = getattr(state, role)
                version = self._resolve(alias)
                if role == PRIMARY:
                    self.waiting_reason = (
                        f"no version of {self.model_name!r} has alias {alias!r} yet"
                        if version is None and current is None
                        else None
                    )
                if version is None:
                    if role == CANARY and current is not None:
                        updates[role] = None  # the canary alias was removed: stop the canary
                    continue
                number = int(version.version)
                failed = self.failures.get(role)
                if not force and current is not None and current.version == number:
                    continue
                if not force and failed is not None and failed.version == number:
                    # Already tried (by the poller or an earlier reload): report it, no retry.
                    outcome.failures.append(failed)
                    continue
                if role == PRIMARY and current is None:
                    self.waiting_reason = f"loading version {number}"
                try:
                    updates[role] = self.load(role, alias, version)
                except ModelLoadError as error:
                    logger.error("%s", error)
                    failure = LoadFailure(role, alias, number, str(error), now_iso())
                    self.failures[role] = self.last_failure = failure
                    self.failure_count += 1
                    if role == PRIMARY and current is None:
                        self.waiting_reason = f"version {number} failed to load: {error}"
                    outcome.failures.append(failure)
            if updates:
                self.state = replace(state, **updates)  # the atomic swap
                for role, loaded in updates.items():
                    self.failures.pop(role, None)
                    if role == PRIMARY and loaded is not None:
                        self.waiting_reason = None
                    outcome.changed.append(
                        f"{role}: {getattr(state, role).version if getattr(state, role) else None}"
                        f" -> {loaded.version if loaded else None}"
                    )
                logger.info("serving state changed: %s", "; ".join(outcome.changed))
            return outcome

    def start_polling(self, interval_s: float) -> None:
        """Refresh now and then every ``interval_s`` seconds in a daemon thread."""
        if self._poller is not None:
            return

        def poll() -> None:
            while True:
                try:
                    self.refresh()
                except Exception:  # noqa: BLE001 - a registry hiccup must not stop polling
                    logger.exception("registry poll failed")
                if self._stop.wait(interval_s):
                    return

        self._poller = threading.Thread(target=poll, name="registry-poller", daemon=True)
        self._poller.start()

    def stop(self) -> None:
        """Stop the poller."""
        self._stop.set()
        if self._poller is not None:
            self._poller.join(timeout=30)
            self._poller = None
