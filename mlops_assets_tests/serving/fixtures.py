"""Session fixtures for serving tests; import them into a conftest or test module.

``serving_registry`` is a throwaway MLflow registry holding five versions of
``fraud_detector`` (see :data:`VERSIONS`). Tests never move a shared alias: each one points its
own alias names at the versions it needs, so tests stay independent. The registry is built
once per session under pytest's base temp folder, even when several folders import the
fixture.
"""

from __future__ import annotations

import pytest

# version number -> what it is
VERSIONS = {
    1: "xgboost pipeline, threshold 0.5, lineage tags, column Amount required",
    2: "xgboost pipeline (other seed), threshold 0.3",
    3: "imputer + scaler + logistic regression",
    4: "string column (pandas scoring path)",
    5: "broken: its stored pipeline is deleted",
}
LINEAGE_TAGS = {"data_version": "transactions@v3", "git_commit": "0123abc"}


@pytest.fixture(scope="session")
def serving_registry(tmp_path_factory: pytest.TempPathFactory):
    """A registry with the versions of :data:`VERSIONS` and no aliases."""
    from mlops_assets_tests.serving.registry import (
        TestRegistry,
        categorical_bundle,
        logistic_bundle,
        xgb_bundle,
    )

    folder = tmp_path_factory.getbasetemp() / "serving-registry"
    registry = TestRegistry.create(folder)
    if (folder / "complete").is_file():
        return registry
    assert registry.register(xgb_bundle(seed=0, required=("Amount",)), tags=LINEAGE_TAGS) == 1
    assert registry.register(xgb_bundle(seed=1, threshold=0.3)) == 2
    assert registry.register(logistic_bundle()) == 3
    assert registry.register(categorical_bundle()) == 4
    assert registry.register(xgb_bundle(seed=2)) == 5
    registry.break_artifacts(5)
    (folder / "complete").touch()
    return registry
