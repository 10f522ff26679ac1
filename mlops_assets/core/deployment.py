"""Make a version live on the serving endpoint: reload, wait, smoke test, roll back on failure.

The logic talks to the server through :class:`ServingApi` (the ``ServingClient`` of
``mlops_assets.serving.client`` satisfies it; tests pass fakes) and moves the registry alias
through a callback, so it is testable without a server or a registry.

A deployment succeeds when the server reports the version and its answers on sample rows
equal the offline predictions of the same version (probabilities within a tolerance, the
same labels). Otherwise the ``champion`` alias is moved back to the version that was serving,
the server reloads it, and the rollback is verified. No server reachable: the deployment is
``pending`` (the server loads the champion when it starts).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from mlops_assets.core.aliases import AliasMove
from mlops_assets.core.smoke import UNREACHABLE, SmokeCase, SmokeResult, run_smoke


class ServingApi(Protocol):
    """What deployment needs from the serving endpoint."""

    def model_info(self) -> dict[str, Any]:
        """The ``/model`` document; ``version`` is the primary version serving (or None)."""
        ...

    def reload(self, force: bool = False) -> Any:
        """Ask the server to re-resolve its aliases; the result has ``version`` and ``error``."""
        ...

    def predict(self, rows: list[dict[str, Any]]) -> list[Any]:
        """Score rows; each prediction has ``label``, ``probability`` and ``model_version``."""
        ...


@dataclass(frozen=True)
class DeploySettings:
    """Bounds of one deployment.

    Attributes:
        wait_timeout_s: Longest wait for the server to report a version.
        poll_interval_s: Seconds between ``/model`` polls while waiting.
        smoke_rows: Sample rows scored in the smoke test.
        tolerance: Largest accepted probability difference server vs offline.
        smoke_attempts: Smoke requests tried when a canary answers instead of the version.
    """

    wait_timeout_s: float = 60.0
    poll_interval_s: float = 0.5
    smoke_rows: int = 20
    tolerance: float = 1e-6
    smoke_attempts: int = 5

    def __post_init__(self) -> None:
        """Refuse impossible bounds, naming the setting."""
        problems = [
            f"{name} must be > 0, got {getattr(self, name)}"
            for name in ("wait_timeout_s", "poll_interval_s", "smoke_rows", "smoke_attempts")
            if getattr(self, name) <= 0
        ]
        if self.tolerance < 0:
            problems.append(f"tolerance must be >= 0, got {self.tolerance}")
        if problems:
            raise ValueError("invalid deployment settings: " + "; ".join(problems))


@dataclass(frozen=True)
class DeploymentOutcome:
    """What :func:`deploy_version` did.

    Attributes:
        status: ``deployed``, ``pending``, ``rolled_back`` or ``failed``.
        version: The version this attempt tried to make live.
        previous_version: The version serving before: the server's report, or the last good
            version when the server had already followed the alias (None: none, no server).
        serving_version: The version serving afterwards as the server reported it.
        reason: One sentence.
        smoke: The smoke test of ``version`` (None when none ran).
        moves: Alias moves made by a rollback.
        seconds: Duration.
    """

    status: str
    version: int
    previous_version: int | None
    serving_version: int | None
    reason: str
    smoke: SmokeResult | None = None
    moves: tuple[AliasMove, ...] = ()
    seconds: float = 0.0


class DeploymentFailed(RuntimeError):
    """A step of the deployment failed; the message is the reason recorded."""

    def __init__(self, reason: str, smoke: SmokeResult | None = None) -> None:
        """Keep the reason and the smoke result, when a smoke test ran."""
        super().__init__(reason)
        self.smoke = smoke


def serving_version(info: dict[str, Any]) -> int | None:
    """The primary version a ``/model`` document reports (None: nothing loaded)."""
    version = info.get("version")
    return None if version is None else int(version)


@dataclass(frozen=True)
class Deployer:
    """Drives one server through reload, wait and smoke test.

    Attributes:
        client: The serving endpoint.
        settings: Bounds.
        sleep: Sleep function (injectable for tests).
        clock: Monotonic clock (injectable for tests).
    """

    client: ServingApi
    settings: DeploySettings
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic

    def reload(self, version: int) -> str:
        """Ask the server to load ``version`` now; return a note when it cannot be asked.

        Raises:
            DeploymentFailed: When the server reports that ``version`` failed to load.
        """
        try:
            result = self.client.reload()
            if result.version != version and result.error is None:
                result = self.client.reload(force=True)  # a failure cached by the poller
        except UNREACHABLE:
            raise
        except Exception as error:  # noqa: BLE001 - admin disabled or refused: poll instead
            return f" (reload refused: {error}; waited for the server's registry poll)"
        if result.version != version and result.error:
            raise DeploymentFailed(f"the server could not load version {version}: {result.error}")
        return ""

    def wait_for(self, version: int, note: str = "") -> None:
        """Poll ``/model`` until it reports ``version``.

        Raises:
            DeploymentFailed: When the server reports a load failure of ``version`` or the
                wait times out.
        """
        deadline = self.clock() + self.settings.wait_timeout_s
        while True:
            info = self.client.model_info()
            serving = serving_version(info)
            if serving == version:
                return
            failure = info.get("last_failure") or {}
            if failure.get("version") == version and failure.get("role", "primary") == "primary":
                raise DeploymentFailed(
                    f"the server could not load version {version}: {failure.get('error')}{note}"
                )
            if self.clock() >= deadline:
                raise DeploymentFailed(
                    f"the server still reports version {serving}, not {version}, after "
                    f"{self.settings.wait_timeout_s:g} s{note}"
                )
            self.sleep(self.settings.poll_interval_s)

    def make_live(self, version: int, smoke: Callable[[int], SmokeCase]) -> SmokeResult:
        """Reload, wait for ``version``, then smoke-test it.

        Raises:
            DeploymentFailed: With the reason (the smoke result is attached as ``smoke``).
        """
        self.wait_for(version, self.reload(version))
        try:
            case = smoke(version)
        except Exception as error:  # noqa: BLE001
            raise DeploymentFailed(
                f"offline predictions of version {version} for the smoke test failed: "
                f"{type(error).__name__}: {error}"
            ) from error
        result = run_smoke(self.client, case, self.settings.tolerance, self.settings.smoke_attempts)
        if not result.passed:
            reason = f"smoke test of version {version} failed: {result.detail}"
            raise DeploymentFailed(reason, result)
        return result


def deploy_version(
    deployer: Deployer,
    version: int,
    smoke: Callable[[int], SmokeCase],
    restore: Callable[[int], tuple[AliasMove, ...]] | None,
    last_good: int | None = None,
) -> DeploymentOutcome:
    """Make ``version`` live; on failure move the alias back and verify the old version serves.

    The version to go back to is the one the server reports before the reload; when the
    server already follows the alias (its registry poll was faster), it is ``last_good``.

    Args:
        deployer: The server driver.
        version: The version the registry alias already points at.
        smoke: Builds the smoke case of a version (loads it offline, predicts sample rows).
        restore: Points the alias back at a version and returns the moves; None: no rollback
            (a rollback deployment does not roll back again).
        last_good: The last version known to serve well (e.g. the last verified deployment).

    Returns:
        The outcome: ``deployed``, ``pending`` (no server), ``rolled_back`` or ``failed``.
    """
    started = deployer.clock()
    client = deployer.client

    def outcome(status: str, previous, serving, reason, smoke_result=None, moves=()):
        seconds = deployer.clock() - started
        return DeploymentOutcome(
            status, version, previous, serving, reason, smoke_result, moves, seconds
        )

    try:
        previous = serving_version(client.model_info())
    except UNREACHABLE as error:
        reason = (
            f"no server reachable ({type(error).__name__}); it loads version {version} "
            "(the champion) when it starts"
        )
        return outcome("pending", None, None, reason)
    if previous in (None, version) and last_good != version:
        previous = last_good if last_good is not None else previous
    try:
        result = deployer.make_live(version, smoke)
        return outcome("deployed", previous, version, f"version {version} serves", result)
    except (DeploymentFailed, *UNREACHABLE) as error:
        reason = str(error) or type(error).__name__
        smoke_result = getattr(error, "smoke", None)
    if restore is None or previous is None or previous == version:
        why = "no rollback requested" if restore is None else "no earlier version was serving"
        return outcome("failed", previous, None, f"{reason}; {why}", smoke_result)
    moves = restore(previous)
    try:
        deployer.wait_for(previous, deployer.reload(previous))
    except (DeploymentFailed, *UNREACHABLE) as error:
        reason = f"{reason}; rolled the alias back to {previous} but it does not serve: {error}"
        return outcome("failed", previous, None, reason, smoke_result, moves)
    reason = f"{reason}; rolled back to version {previous}, which serves"
    return outcome("rolled_back", previous, previous, reason, smoke_result, moves)
