"""TrackingTarget: the experiment is created once, even by two processes at the same moment."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow import MlflowClient

from mlops_assets.core.tracking import TrackingTarget, _create_or_get


def test_an_experiment_created_meanwhile_by_another_process_is_used(tmp_path: Path) -> None:
    """The race two concurrent training runs hit on PostgreSQL: get says none, create collides."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    first = client.create_experiment("shared")  # the other process won the race
    assert _create_or_get(client, "shared", None) == first
    assert TrackingTarget(uri, "shared").activate() == first


def test_other_create_errors_are_not_hidden(tmp_path: Path) -> None:
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    with pytest.raises(Exception, match="name"):
        _create_or_get(client, "", None)  # an invalid name: not a collision
