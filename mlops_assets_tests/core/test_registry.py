"""Registering a logged model: lineage tags on the version, the challenger alias; lineage."""

from __future__ import annotations

import subprocess
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from mlops_assets.constants import CHALLENGER_ALIAS
from mlops_assets.core.contract import contract_from_frame
from mlops_assets.core.lineage import Lineage, git_commit, package_version
from mlops_assets.core.model_bundle import ModelBundle
from mlops_assets.core.model_io import load_bundle_from_uri, log_bundle
from mlops_assets.core.registry import (
    TrackingUnavailableError,
    connect,
    register_version,
    run_url,
)
from mlops_assets.core.tracking import TrackingTarget
from mlops_assets_tests.core.training_fixtures import lineage, tracking_target


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SQLite store per module (creating one costs seconds); one experiment per test."""
    return tmp_path_factory.mktemp("mlflow")


@pytest.fixture()
def target(store: Path, request: pytest.FixtureRequest) -> TrackingTarget:
    return tracking_target(store, experiment=request.node.name)


@pytest.fixture()
def name(request: pytest.FixtureRequest) -> str:
    """A registered model name of this test's own."""
    return request.node.name.removeprefix("test_")


def logged_model(target: TrackingTarget, tags: dict[str, str]) -> tuple[str, str]:
    """Log a tiny real bundle in a new run; return (model uri, run id)."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=120), "b": rng.normal(size=120)})
    model = LogisticRegression().fit(frame, (frame["a"] > 0.5).astype(int))
    bundle = ModelBundle(model, 0.5, contract_from_frame(frame))
    connect(target)
    with mlflow.start_run(tags=tags) as run:
        uri = log_bundle(bundle, frame)
    return uri, run.info.run_id


def test_registered_version_carries_lineage_tags_metrics_and_alias(
    target: TrackingTarget, name: str
) -> None:
    tags = lineage().tags()
    uri, run_id = logged_model(target, tags)
    registered = register_version(
        target, name, uri, run_id, tags, {"test_kappa": 0.81, "test_pr_auc": 0.8}
    )
    assert registered.version == "1" and registered.alias == CHALLENGER_ALIAS
    assert registered.model_uri == f"models:/{name}/1" and registered.run_id == run_id
    client = target.client()
    version = client.get_model_version(name, "1")
    assert version.run_id == run_id
    for key, value in tags.items():
        assert version.tags[key] == value  # on the version itself, not only on the run
    assert version.tags["metric.test_kappa"] == "0.81"
    assert str(client.get_model_version_by_alias(name, CHALLENGER_ALIAS).version) == "1"
    assert Lineage.from_tags(version.tags) == lineage()
    assert load_bundle_from_uri(f"models:/{name}@{CHALLENGER_ALIAS}").threshold == 0.5


def test_a_new_run_gets_a_new_version_and_the_alias_moves(
    target: TrackingTarget, name: str
) -> None:
    first_uri, first_run = logged_model(target, lineage().tags())
    second_uri, second_run = logged_model(target, lineage().tags())
    register_version(target, name, first_uri, first_run, {}, {})
    again = register_version(target, name, first_uri, first_run, {}, {})
    assert again.version == "1"  # the same run registered twice reuses its version
    second = register_version(target, name, second_uri, second_run, {}, {})
    assert second.version == "2"
    client = target.client()
    assert str(client.get_model_version_by_alias(name, CHALLENGER_ALIAS).version) == "2"
    assert len(client.search_model_versions(f"name = '{name}'")) == 2


def test_unknown_run_is_refused(target: TrackingTarget) -> None:
    connect(target)
    with pytest.raises(ValueError, match="run 'nope' does not exist"):
        register_version(target, "fraud", "models:/m-1", "nope", {}, {})


def test_unreachable_registry_is_reported() -> None:
    target = TrackingTarget(tracking_uri="http://127.0.0.1:9", experiment_name="x")
    with pytest.raises(TrackingUnavailableError, match="127.0.0.1:9 is unreachable"):
        register_version(target, "fraud", "models:/m-1", "run", {}, {})


def test_run_links() -> None:
    http = TrackingTarget(tracking_uri="http://mlflow:5000/", experiment_name="x")
    assert run_url(http, "1", "abc", None) == "http://mlflow:5000/#/experiments/1/runs/abc"
    local = TrackingTarget(tracking_uri="sqlite:///x.db", experiment_name="x")
    assert run_url(local, "1", "abc", None) == "http://127.0.0.1:5000/#/experiments/1/runs/abc"
    assert run_url(local, "2", "r", "http://ui:8080") == "http://ui:8080/#/experiments/2/runs/r"


def test_lineage_tags_round_trip_and_name_a_missing_tag() -> None:
    tags = lineage().tags()
    assert tags["lineage.splits_version"] == "4"
    assert Lineage.from_tags(tags) == lineage()
    del tags["lineage.git_commit"]
    with pytest.raises(KeyError, match="lineage.git_commit"):
        Lineage.from_tags(tags)


def test_git_commit_and_package_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    assert git_commit().startswith(head.strip()) and len(head.strip()) == 40
    assert git_commit(tmp_path) == "unknown"  # not a repository
    monkeypatch.setenv("MLOPS_GIT_COMMIT", "deadbeef")
    assert git_commit() == "deadbeef"
    assert package_version() == "0.1.0"
