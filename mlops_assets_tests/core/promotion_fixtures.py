"""Real registered versions and a splits table for the promotion and deployment tests.

A session registry holds one registered model (``promo_source``) with versions of known
quality on the rows of :func:`splits_frame`; every test copies the versions it needs, in the
order it needs, into a fresh registered model (``copy_model_version``: no re-logging), so
tests never share aliases. Use the fixture with
``from ...promotion_fixtures import registry_fixture`` and
``promotion_registry = registry_fixture`` (pytest finds it by its name).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from mlops_assets.constants import LABEL_COLUMN, SPLIT_COLUMN
from mlops_assets.core.contract import InputContract, contract_from_frame
from mlops_assets.core.model_bundle import ModelBundle
from mlops_assets_tests.serving.registry import TestRegistry, feature_frame, xgb_bundle

SOURCE_MODEL = "promo_source"
# kind -> source version; kappa on splits_frame()'s test rows in the comments
KINDS = {
    "good": 1,  # logistic regression, 0.79
    "weak": 2,  # the same trained on 20 % flipped labels, 0.70
    "near": 3,  # logistic regression on other rows, 0.80: within noise of "good"
    "narrow": 4,  # "good" without the `count` column: another serving contract
    "broken": 5,  # "good" with its stored pipeline deleted: cannot load
    "strict": 6,  # "good" whose contract refuses a missing V3 (the server rejects such rows)
    # XGBoost pipelines (the production shape, served on the compiled path) for the e2e tests
    "xgb_weak": 7,  # 3 trees, 0.50
    "xgb_good": 8,  # 60 trees, 0.78
    "xgb_strict": 9,  # "xgb_good" whose contract refuses a missing V3
}
_names = itertools.count()


def logistic(
    seed: int,
    flip: float = 0.0,
    columns: list[str] | None = None,
    required: tuple[str, ...] = (),
) -> ModelBundle:
    """Imputer + scaler + logistic regression on :func:`feature_frame` rows of ``seed``.

    Args:
        seed: Seed of the training rows.
        flip: Share of training labels flipped (a weaker model).
        columns: Feature columns (default: all of them).
        required: Columns the contract marks as not nullable.
    """
    frame, labels = feature_frame(seed=seed)
    flipped = np.random.default_rng(seed).random(len(labels)) < flip
    labels = labels.where(~flipped, 1 - labels)
    if columns:
        frame = frame[columns]
    pipeline = Pipeline(
        [
            ("preprocess", make_pipeline(SimpleImputer(), StandardScaler())),
            ("classifier", LogisticRegression()),
        ]
    ).fit(frame, labels)
    specs = contract_from_frame(frame).columns
    contract = InputContract(tuple(replace(s, nullable=s.name not in required) for s in specs))
    return ModelBundle(pipeline, 0.5, contract)


@contextmanager
def registry_uri(uri: str) -> Iterator[None]:
    """Point the process-wide MLflow registry URI at ``uri``, restoring it afterwards.

    ``mlflow.register_model`` (used by ``TestRegistry.register``) follows the process-wide
    registry URI, which ``TrackingTarget.activate`` in an earlier test may have set (also
    as ``MLFLOW_REGISTRY_URI`` in the environment).
    """
    from mlflow.tracking._model_registry import utils

    saved, saved_env = utils._registry_uri, os.environ.get("MLFLOW_REGISTRY_URI")
    utils._registry_uri = uri
    os.environ["MLFLOW_REGISTRY_URI"] = uri
    try:
        yield
    finally:
        utils._registry_uri = saved
        if saved_env is None:
            os.environ.pop("MLFLOW_REGISTRY_URI", None)
        else:
            os.environ["MLFLOW_REGISTRY_URI"] = saved_env


@pytest.fixture(scope="session", name="promotion_registry")
def registry_fixture(tmp_path_factory: pytest.TempPathFactory) -> TestRegistry:
    """The session registry with the versions of :data:`KINDS`."""
    folder = tmp_path_factory.getbasetemp() / "promotion-registry"
    registry = TestRegistry.create(folder, model_name=SOURCE_MODEL)
    if (folder / "complete").is_file():
        return registry
    with registry_uri(registry.tracking_uri):
        _register_kinds(registry)
    (folder / "complete").touch()
    return registry


def _register_kinds(registry: TestRegistry) -> None:
    assert registry.register(logistic(1)) == KINDS["good"]
    assert registry.register(logistic(1, flip=0.2)) == KINDS["weak"]
    assert registry.register(logistic(3)) == KINDS["near"]
    assert registry.register(logistic(1, columns=["V1", "V2", "V3", "Amount"])) == KINDS["narrow"]
    assert registry.register(logistic(1)) == KINDS["broken"]
    registry.break_artifacts(KINDS["broken"])
    assert registry.register(logistic(1, required=("V3",))) == KINDS["strict"]
    assert registry.register(xgb_bundle(seed=0, trees=3)) == KINDS["xgb_weak"]
    assert registry.register(xgb_bundle(seed=3, trees=60)) == KINDS["xgb_good"]
    strict = xgb_bundle(seed=3, trees=60, required=("V3",))
    assert registry.register(strict) == KINDS["xgb_strict"]


def fresh_model(registry: TestRegistry, *kinds: str) -> tuple[str, list[int]]:
    """Copy the versions of ``kinds`` into a new registered model; return its name, versions."""
    client = registry.client()
    name = f"model_{next(_names)}"
    versions = [
        int(client.copy_model_version(f"models:/{SOURCE_MODEL}/{KINDS[kind]}", name).version)
        for kind in kinds
    ]
    return name, versions


def splits_frame(rows: int = 1500, seed: int = 9) -> pd.DataFrame:
    """A ``training_splits`` frame: features, ``label`` and ``split`` (80 % test rows)."""
    frame, labels = feature_frame(rows=rows, seed=seed)
    split = np.where(np.arange(rows) % 10 == 0, "train", "test")
    split[np.arange(rows) % 10 == 1] = "valid"
    return frame.assign(**{LABEL_COLUMN: labels.astype("int64"), SPLIT_COLUMN: split})
