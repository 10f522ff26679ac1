"""MLflow tracking setup shared by training, promotion, serving and monitoring."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient


@dataclass(frozen=True)
class TrackingTarget:
    """An MLflow tracking server / registry and the experiment runs go to.

    Attributes:
        tracking_uri: Tracking URI (``sqlite:///...``, ``http://host:5000``, ...).
        registry_uri: Registry URI; the tracking URI when None.
        experiment_name: Experiment for the runs.
        artifact_root: Artifact location used when the experiment is first created.
    """

    tracking_uri: str
    experiment_name: str
    registry_uri: str | None = None
    artifact_root: str | None = None

    def activate(self) -> str:
        """Point the ``mlflow`` module at this target and return the experiment id.

        Creates the experiment (with its artifact root) on first use; when another process
        creates it at the same moment, that one is used.
        """
        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.registry_uri or self.tracking_uri)
        client = self.client()
        experiment = client.get_experiment_by_name(self.experiment_name)
        if experiment is None:
            location = None
            if self.artifact_root:
                location = self.artifact_root
                if "://" not in location:
                    Path(location).mkdir(parents=True, exist_ok=True)
                    location = Path(location).resolve().as_uri()
            experiment_id = _create_or_get(client, self.experiment_name, location)
        else:
            experiment_id = experiment.experiment_id
        mlflow.set_experiment(experiment_id=experiment_id)
        return experiment_id

    def client(self) -> MlflowClient:
        """Return a client bound to this target."""
        return MlflowClient(
            tracking_uri=self.tracking_uri, registry_uri=self.registry_uri or self.tracking_uri
        )


def _create_or_get(client: MlflowClient, name: str, location: str | None) -> str:
    """Create experiment ``name``, or return the id of the one a concurrent caller created."""
    try:
        return client.create_experiment(name, artifact_location=location)
    except mlflow.exceptions.MlflowException as error:
        if getattr(error, "error_code", "") != "RESOURCE_ALREADY_EXISTS":
            raise
        existing = client.get_experiment_by_name(name)
        if existing is None:
            raise
        return existing.experiment_id
