"""MLflow access shared by training and promotion: reachability, run links, registration.

A registered version gets the lineage tags of the run that produced it (copied onto the
version itself, so the registry alone tells where a version came from) and an alias.
Registering the same run twice reuses its version instead of creating a duplicate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import mlflow

from mlops_assets.constants import CHALLENGER_ALIAS
from mlops_assets.core.tracking import TrackingTarget

DEFAULT_UI_URL = "http://127.0.0.1:5000"


class TrackingUnavailableError(RuntimeError):
    """Raised when the MLflow tracking server or store cannot be reached."""


@dataclass(frozen=True)
class RegisteredVersion:
    """A model version in the MLflow registry.

    Attributes:
        name: Registered model name.
        version: Version number (as MLflow returns it, a string of digits).
        run_id: The MLflow run that logged the model.
        model_uri: ``models:/<name>/<version>``.
        alias: Alias set on this version (``challenger``).
        metrics: Metrics of the version (test split, ``test_kappa``, ...).
        tags: Tags set on the version (lineage and metrics).
    """

    name: str
    version: str
    run_id: str
    model_uri: str
    alias: str
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


def _is_http(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))


def connect(target: TrackingTarget, timeout_s: float = 5.0) -> str:
    """Check that the tracking store answers, activate it and return the experiment id.

    An HTTP server is probed on ``/health`` with a short timeout first, because MLflow's
    own client retries an unreachable server with back-off for minutes.

    Raises:
        TrackingUnavailableError: Naming the URI and the cause.
    """
    uri = target.tracking_uri
    if _is_http(uri):
        import httpx

        try:
            httpx.get(f"{uri.rstrip('/')}/health", timeout=timeout_s).raise_for_status()
        except httpx.HTTPError as error:
            raise TrackingUnavailableError(
                f"MLflow tracking server {uri} is unreachable: {type(error).__name__}: {error}"
            ) from error
    try:
        return target.activate()
    except Exception as error:
        raise TrackingUnavailableError(
            f"MLflow tracking store {uri} is unreachable: {type(error).__name__}: {error}"
        ) from error


def run_url(target: TrackingTarget, experiment_id: str, run_id: str, ui_url: str | None) -> str:
    """Link to a run in the MLflow UI (the tracking server, else ``ui_url`` or the default)."""
    base = target.tracking_uri if _is_http(target.tracking_uri) else ui_url or DEFAULT_UI_URL
    return f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"


def register_version(
    target: TrackingTarget,
    name: str,
    model_uri: str,
    run_id: str,
    tags: Mapping[str, str],
    metrics: Mapping[str, float],
    alias: str = CHALLENGER_ALIAS,
) -> RegisteredVersion:
    """Register ``model_uri`` as a version of ``name``, tag it and point ``alias`` at it.

    Args:
        target: Tracking server and registry.
        name: Registered model name (created on first use).
        model_uri: The logged model (``models:/<model id>`` or ``runs:/...``).
        run_id: The run that logged it.
        tags: Tags to copy onto the version (lineage).
        metrics: Metrics to report and to copy onto the version as ``metric.<name>`` tags.
        alias: Alias to set on the version.

    Returns:
        The registered version.

    Raises:
        TrackingUnavailableError: When the registry cannot be reached.
        ValueError: When ``run_id`` does not exist.
    """
    connect(target)
    client = target.client()
    try:
        client.get_run(run_id)
    except mlflow.exceptions.MlflowException as error:
        raise ValueError(f"run {run_id!r} does not exist in {target.tracking_uri}") from error
    version_tags = {**{str(k): str(v) for k, v in tags.items()}, "mlflow_run_id": run_id}
    version_tags.update({f"metric.{key}": f"{value:.6g}" for key, value in metrics.items()})
    existing = client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
    if existing:  # the same run registered again: reuse its version, refresh its tags
        version = str(min(int(found.version) for found in existing))
        for key, value in version_tags.items():
            client.set_model_version_tag(name, version, key, value)
    else:
        version = str(mlflow.register_model(model_uri, name, tags=version_tags).version)
    client.set_registered_model_alias(name, alias, version)
    return RegisteredVersion(
        name=name,
        version=version,
        run_id=run_id,
        model_uri=f"models:/{name}/{version}",
        alias=alias,
        metrics={key: float(value) for key, value in metrics.items()},
        tags=version_tags,
    )
