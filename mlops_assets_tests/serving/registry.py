"""Test helper: real model bundles logged with ``log_bundle`` into a throwaway MLflow registry.

Reusable by any test that needs registered versions and aliases::

    registry = TestRegistry.create(tmp_path / "mlflow")
    v1 = registry.register(xgb_bundle(seed=0))
    registry.set_alias("champion", v1)

Everything is scoped to the registry's own SQLite file; the process-wide MLflow tracking URI
is restored afterwards, so other tests' ``MLFLOW_TRACKING_URI`` keeps working.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlparse

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.tracking._tracking_service.utils import _use_tracking_uri
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from xgboost import XGBClassifier

from mlops_assets.core.contract import InputContract, contract_from_frame
from mlops_assets.core.model_bundle import PIPELINE_FILE, ModelBundle
from mlops_assets.core.model_io import log_bundle
from mlops_assets.core.pyfunc_model import BUNDLE_ARTIFACT

MODEL_NAME = "fraud_detector"
FEATURES = ("V1", "V2", "V3", "Amount", "count")


def feature_frame(rows: int = 300, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """Small seeded credit-card-like frame: four floats (with a few NaN) and one integer."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "V1": rng.normal(size=rows),
            "V2": rng.normal(size=rows),
            "V3": rng.normal(size=rows),
            "Amount": rng.gamma(2.0, 40.0, size=rows),
            "count": rng.integers(0, 20, size=rows),
        }
    )
    labels = ((frame["V1"] + 0.5 * frame["V2"] + rng.normal(scale=0.3, size=rows)) > 1.2).astype(
        int
    )
    frame.loc[rng.choice(rows, max(1, rows // 25), replace=False), "V3"] = np.nan
    return frame, labels


def xgb_bundle(
    seed: int = 0, threshold: float = 0.5, trees: int = 20, required: tuple[str, ...] = ()
) -> ModelBundle:
    """The production shape: ColumnTransformer(imputer + scaler) -> XGBClassifier(hist).

    Args:
        seed: Data and model seed.
        threshold: Decision threshold.
        trees: Boosting rounds.
        required: Columns the contract marks as not nullable.
    """
    frame, labels = feature_frame(seed=seed)
    preprocess = ColumnTransformer(
        [("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), list(frame))]
    )
    classifier = XGBClassifier(
        tree_method="hist", n_estimators=trees, max_depth=3, n_jobs=1, random_state=seed
    )
    pipeline = Pipeline([("preprocess", preprocess), ("classifier", classifier)]).fit(frame, labels)
    contract = contract_from_frame(frame)
    columns = tuple(replace(spec, nullable=spec.name not in required) for spec in contract.columns)
    return ModelBundle(pipeline, threshold, InputContract(columns))


def logistic_bundle(seed: int = 1, threshold: float = 0.3) -> ModelBundle:
    """Imputer + scaler + LogisticRegression (the compiled path's generic classifier)."""
    frame, labels = feature_frame(seed=seed)
    pipeline = Pipeline(
        [
            ("preprocess", make_pipeline(SimpleImputer(), StandardScaler())),
            ("classifier", LogisticRegression()),
        ]
    ).fit(frame, labels)
    return ModelBundle(pipeline, threshold, contract_from_frame(frame))


def categorical_bundle(seed: int = 2) -> ModelBundle:
    """A contract with a string column: served on the exact pandas path."""
    frame, labels = feature_frame(seed=seed)
    frame["channel"] = np.where(frame["V2"] > 0, "web", "pos")
    preprocess = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(), StandardScaler()), list(FEATURES)),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["channel"]),
        ]
    )
    pipeline = Pipeline([("preprocess", preprocess), ("classifier", LogisticRegression())])
    return ModelBundle(pipeline.fit(frame, labels), 0.5, contract_from_frame(frame))


@contextmanager
def fast_model_logging() -> Iterator[None]:
    """Skip MLflow's pip-requirements inference (a 5-10 s subprocess per logged model)."""
    original = mlflow.models.infer_pip_requirements
    mlflow.models.infer_pip_requirements = lambda *args, fallback=None, **kwargs: fallback or []
    try:
        yield
    finally:
        mlflow.models.infer_pip_requirements = original


@dataclass(frozen=True)
class TestRegistry:
    """A SQLite MLflow registry under a folder, with helpers to register and alias versions."""

    __test__ = False  # not a pytest class

    folder: Path
    model_name: str = MODEL_NAME

    @classmethod
    def create(cls, folder: Path, model_name: str = MODEL_NAME) -> TestRegistry:
        """Create the folder (and the experiment on first registration)."""
        folder.mkdir(parents=True, exist_ok=True)
        return cls(folder=folder.resolve(), model_name=model_name)

    @property
    def tracking_uri(self) -> str:
        """SQLite tracking and registry URI."""
        return f"sqlite:///{self.folder / 'mlflow.db'}"

    def client(self) -> MlflowClient:
        """A client bound to this registry."""
        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    def register(self, bundle: ModelBundle, tags: dict[str, str] | None = None) -> int:
        """Log ``bundle`` with ``log_bundle`` in a run and register it; return the version."""
        client = self.client()
        experiment = client.get_experiment_by_name("serving-tests")
        experiment_id = (
            experiment.experiment_id
            if experiment is not None
            else client.create_experiment(
                "serving-tests", artifact_location=(self.folder / "artifacts").as_uri()
            )
        )
        example, _ = feature_frame(rows=5)
        if "channel" in bundle.contract.names:
            example["channel"] = "web"
        with _use_tracking_uri(self.tracking_uri), fast_model_logging():
            with mlflow.start_run(experiment_id=experiment_id):
                # integers as floats: the logged signature declares integer inputs as doubles
                uri = log_bundle(bundle, example.fillna(0.0).astype({"count": "float64"}))
            version = mlflow.register_model(uri, self.model_name, tags=tags)
        return int(version.version)

    def set_alias(self, alias: str, version: int) -> None:
        """Point ``alias`` at ``version``."""
        self.client().set_registered_model_alias(self.model_name, alias, str(version))

    def delete_alias(self, alias: str) -> None:
        """Remove ``alias``."""
        self.client().delete_registered_model_alias(self.model_name, alias)

    def break_artifacts(self, version: int) -> None:
        """Delete the stored pipeline of ``version`` so that loading it fails."""
        root = self.client().get_model_version_download_uri(self.model_name, str(version))
        local = Path(urlparse(root).path if root.startswith("file:") else root)
        target = local / "artifacts" / BUNDLE_ARTIFACT / PIPELINE_FILE
        if not target.is_file():
            raise FileNotFoundError(f"no stored pipeline at {target}")
        target.unlink()
