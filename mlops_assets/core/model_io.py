"""Log a :class:`ModelBundle` to MLflow as a pyfunc model, and load it back fast.

``log_bundle`` writes a pyfunc model (signature, input example, project code) that any
MLflow client loads with ``mlflow.pyfunc.load_model``. ``load_bundle_from_uri`` skips the
pyfunc layer and returns the bundle itself, which the serving hot path and the promotion
guardrails use.
"""

from __future__ import annotations

import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.models import infer_signature

from mlops_assets.core.model_bundle import ModelBundle, load_bundle, save_bundle
from mlops_assets.core.pyfunc_model import BUNDLE_ARTIFACT

PACKAGE_DIR = Path(__file__).resolve().parents[1]
PYFUNC_SCRIPT = Path(__file__).resolve().with_name("pyfunc_model.py")
# What loading and scoring a bundle imports. Declared instead of inferred: MLflow's inference
# loads the model in a subprocess (seconds per logged model) and, for a model-from-code
# pyfunc, misses XGBoost while listing test tools and this (non-PyPI) package.
MODEL_REQUIREMENTS = ("mlflow", "numpy", "pandas", "scipy", "scikit-learn", "skops", "xgboost")


def model_requirements() -> list[str]:
    """Pip requirements of a logged bundle, pinned to the installed versions."""
    return [f"{name}=={metadata.version(name)}" for name in MODEL_REQUIREMENTS]


def log_bundle(
    bundle: ModelBundle,
    input_example: pd.DataFrame,
    name: str = "model",
    extra: dict[str, Any] | None = None,
) -> str:
    """Log ``bundle`` as a pyfunc model in the active MLflow run.

    Args:
        bundle: The fitted bundle.
        input_example: A few raw rows with the contract's columns.
        name: Model name inside the run.
        extra: JSON-serialisable facts stored beside the threshold (metrics, lineage).

    Returns:
        The model URI (``models:/<model id>``), ready for ``mlflow.register_model``.
    """
    example = input_example[bundle.contract.names].head(5)
    probability = bundle.predict_proba(example)
    output = pd.DataFrame({"label": bundle.labels(probability), "probability": probability})
    with tempfile.TemporaryDirectory() as scratch:
        folder = save_bundle(bundle, Path(scratch) / BUNDLE_ARTIFACT, extra=extra)
        info = mlflow.pyfunc.log_model(
            name=name,
            python_model=str(PYFUNC_SCRIPT),
            artifacts={BUNDLE_ARTIFACT: str(folder)},
            code_paths=[str(PACKAGE_DIR)],
            signature=infer_signature(example, output),
            input_example=example,
            pip_requirements=model_requirements(),
        )
    return info.model_uri


def load_bundle_from_uri(model_uri: str) -> ModelBundle:
    """Download a logged model's bundle artifacts and load them (no pyfunc, no pickle).

    Args:
        model_uri: Any MLflow model URI (``models:/name/3``, ``models:/name@champion``, ...).

    Returns:
        The bundle.
    """
    with tempfile.TemporaryDirectory() as scratch:
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=f"{model_uri.rstrip('/')}/artifacts/{BUNDLE_ARTIFACT}", dst_path=scratch
        )
        return load_bundle(local)
