"""The model being monitored: the ``champion`` version, its features, data lineage and metrics.

Everything comes from the registry: the alias names the version, the version's lineage
tags (``lineage.splits_uri`` / ``lineage.splits_version``) name the ``training_splits``
table version it was trained on, its ``metric.test_*`` tags hold its test metrics, and the
``bundle.json`` stored with the model holds its input contract (only that small file is
downloaded, not the pipeline).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from mlops_assets.constants import CHAMPION_ALIAS, SPLIT_COLUMN
from mlops_assets.core.lineage import TAG_PREFIX
from mlops_assets.core.model_bundle import BUNDLE_FILE
from mlops_assets.core.monitoring import MonitoringError
from mlops_assets.core.performance import PERFORMANCE_METRICS
from mlops_assets.core.pyfunc_model import BUNDLE_ARTIFACT
from mlops_assets.core.registry import connect
from mlops_assets.core.tables import DeltaEngine, TableNotFoundError, TableRef
from mlops_assets.core.tracking import TrackingTarget

SPLITS_URI_TAG = f"{TAG_PREFIX}splits_uri"
SPLITS_VERSION_TAG = f"{TAG_PREFIX}splits_version"
TEST_METRIC_TAG = "metric.test_{}"


@dataclass(frozen=True)
class MonitoredModel:
    """The registered version a monitoring asset looks at.

    Attributes:
        name: Registered model name.
        version: Version number.
        alias: The alias it was resolved from.
        features: Its input contract's columns, in order.
        splits_uri: URI of the ``training_splits`` table it was trained on.
        splits_version: The Delta version of that table.
        test_metrics: ``kappa``, ``f1``, ``pr_auc`` on its test split (those tagged).
    """

    name: str
    version: int
    alias: str
    features: tuple[str, ...]
    splits_uri: str
    splits_version: int
    test_metrics: Mapping[str, float] = field(default_factory=dict)

    def describe(self) -> str:
        """``fraud_detector v3 (champion)``."""
        return f"{self.name} v{self.version} ({self.alias})"


def _contract_columns(model_name: str, version: str) -> tuple[str, ...]:
    import mlflow

    uri = f"models:/{model_name}/{version}/artifacts/{BUNDLE_ARTIFACT}/{BUNDLE_FILE}"
    with tempfile.TemporaryDirectory() as scratch:
        try:
            local = mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=scratch)
        except Exception as error:
            raise MonitoringError(
                f"{model_name} v{version}: cannot read its input contract at {uri}: {error}"
            ) from error
        payload = json.loads(Path(local).read_text())
    return tuple(str(column["name"]) for column in payload["contract"]["columns"])


def resolve_champion(
    target: TrackingTarget, model_name: str, alias: str = CHAMPION_ALIAS
) -> MonitoredModel:
    """Resolve ``alias`` of ``model_name`` to the version, its features, lineage and metrics.

    Raises:
        TrackingUnavailableError: The registry cannot be reached.
        MonitoringError: No such alias (nothing promoted yet), or a lineage tag is missing.
    """
    from mlflow.exceptions import MlflowException

    connect(target)
    client = target.client()
    try:
        found = client.get_model_version_by_alias(model_name, alias)
    except MlflowException as error:
        raise MonitoringError(
            f"registered model {model_name!r} has no {alias!r} alias in "
            f"{target.tracking_uri}: nothing is promoted yet, so there is nothing to monitor"
        ) from error
    tags = dict(found.tags or {})
    missing = [tag for tag in (SPLITS_URI_TAG, SPLITS_VERSION_TAG) if tag not in tags]
    if missing:
        raise MonitoringError(
            f"{model_name} v{found.version} ({alias}) lacks lineage tag(s) {missing}: "
            "its training data cannot be found"
        )
    metrics = {}
    for name in PERFORMANCE_METRICS:
        raw = tags.get(TEST_METRIC_TAG.format(name))
        if raw is not None:
            metrics[name] = float(raw)
    return MonitoredModel(
        name=model_name,
        version=int(found.version),
        alias=alias,
        features=_contract_columns(model_name, str(found.version)),
        splits_uri=tags[SPLITS_URI_TAG],
        splits_version=int(tags[SPLITS_VERSION_TAG]),
        test_metrics=metrics,
    )


def _normalised(uri: str) -> str:
    for prefix in ("file://", "file:"):
        if uri.startswith(prefix):
            uri = uri[len(prefix) :]
            break
    return os.path.normpath(uri) if "://" not in uri else uri.rstrip("/")


def training_rows(engine: DeltaEngine, model: MonitoredModel) -> tuple[pd.DataFrame, TableRef]:
    """The train split (not resampled) of the ``training_splits`` version ``model`` learned from.

    Raises:
        MonitoringError: The table is not under the engine's root, or the version is gone.
    """
    name = model.splits_uri.rstrip("/").rsplit("/", 1)[-1]
    if _normalised(engine.uri(name)) != _normalised(model.splits_uri):
        raise MonitoringError(
            f"{model.describe()} was trained on {model.splits_uri}, which is not a table of "
            f"this lakehouse ({engine.root})"
        )
    try:
        frame = engine.read(name, model.splits_version)
    except TableNotFoundError as error:
        raise MonitoringError(
            f"{model.describe()}: its training data {name}@v{model.splits_version} cannot be "
            f"read: {error}"
        ) from error
    if SPLIT_COLUMN not in frame.columns:
        raise MonitoringError(f"{name}@v{model.splits_version} has no {SPLIT_COLUMN!r} column")
    train = frame[frame[SPLIT_COLUMN] == "train"].drop(columns=[SPLIT_COLUMN])
    ref = TableRef(name, engine.uri(name), model.splits_version)
    return train.reset_index(drop=True), ref
