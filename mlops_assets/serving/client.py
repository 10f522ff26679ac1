"""A small HTTP client of the serving endpoint (used by the ``ServingEndpoint`` resource)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx


class ServingError(RuntimeError):
    """The server answered an error (status and message kept)."""

    def __init__(self, status: int, message: str) -> None:
        """Keep the status and the server's message."""
        super().__init__(f"serving endpoint answered {status}: {message}")
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Prediction:
    """One scored row.

    Attributes:
        request_id: Id to send feedback for this row.
        label: 0/1 after the model's threshold.
        probability: Positive-class probability.
        model_version: Registry version that answered.
    """

    request_id: str
    label: int
    probability: float
    model_version: int


@dataclass(frozen=True)
class ReloadResult:
    """Outcome of ``POST /admin/reload``.

    Attributes:
        reloaded: Whether a version changed.
        changed: ``role: old -> new`` lines.
        error: Why a version failed to load (the previous one keeps serving), if any.
        version: Primary version serving after the call.
        canary_version: Canary version serving after the call, if any.
    """

    reloaded: bool
    changed: tuple[str, ...]
    error: str | None
    version: int | None
    canary_version: int | None


class ServingClient:
    """Talks to ``mlops serve`` over HTTP."""

    def __init__(self, url: str, admin_token: str | None = None, timeout_s: float = 30.0):
        """Bind to a server URL (``http://127.0.0.1:8080``)."""
        self.url = url.rstrip("/")
        self.admin_token = admin_token
        self.timeout_s = timeout_s

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        with httpx.Client(base_url=self.url, timeout=self.timeout_s) as http:
            return http.request(method, path, **kwargs)

    @staticmethod
    def _json(response: httpx.Response, ok: tuple[int, ...] = (200,)) -> dict[str, Any]:
        try:
            payload = response.json()
        except ValueError:
            payload = {"error": response.text[:500]}
        if response.status_code not in ok:
            raise ServingError(response.status_code, str(payload.get("error", payload)))
        return payload

    def ready(self) -> bool:
        """Whether a model version is loaded (False when the server is unreachable)."""
        try:
            return self._call("GET", "/ready").status_code == 200
        except httpx.HTTPError:
            return False

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        """Block until ``/ready`` answers 200.

        Raises:
            TimeoutError: With the server's last reason.
        """
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.ready():
                return
            time.sleep(0.2)
        raise TimeoutError(f"{self.url} not ready after {timeout_s:.0f} s")

    def model_info(self) -> dict[str, Any]:
        """The ``/model`` document (version, alias, lineage tags, loaded at, canary...)."""
        return self._json(self._call("GET", "/model"))

    def predict(self, rows: list[dict[str, Any]] | dict[str, Any]) -> list[Prediction]:
        """Score rows with ``/predict``.

        Raises:
            ServingError: For a refused request (4xx names the problem) or 503.
        """
        payload = self._json(self._call("POST", "/predict", json=rows))
        return [Prediction(**row) for row in payload["predictions"]]

    def reload(self, force: bool = False) -> ReloadResult:
        """Ask the server to re-resolve its aliases and hot-swap changed versions.

        A version that fails to load is reported in ``error`` (HTTP 409); the previous one
        keeps serving.

        Raises:
            ServingError: When admin is disabled (403) or the token is wrong (401).
        """
        if not self.admin_token:
            raise ServingError(0, "no admin token configured for this client")
        response = self._call(
            "POST",
            "/admin/reload",
            params={"force": str(force).lower()},
            headers={"Authorization": f"Bearer {self.admin_token}"},
        )
        payload = self._json(response, ok=(200, 409))
        serving = payload.get("serving") or {}
        canary = serving.get("canary") or {}
        return ReloadResult(
            reloaded=bool(payload.get("reloaded")),
            changed=tuple(payload.get("changed", ())),
            error=payload.get("error"),
            version=serving.get("version"),
            canary_version=canary.get("version"),
        )
