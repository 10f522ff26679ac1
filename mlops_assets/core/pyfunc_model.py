"""MLflow "model from code" script: the pyfunc face of a :class:`ModelBundle`.

MLflow stores this file as the model's code instead of pickling a Python object, so loading
the logged model runs no pickle: the pipeline comes from skops with an allowlist.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel

from mlops_assets.core.model_bundle import ModelBundle, load_bundle

BUNDLE_ARTIFACT = "bundle"


class BundlePythonModel(PythonModel):
    """Pyfunc model returning ``label`` (thresholded) and ``probability`` per row."""

    bundle: ModelBundle

    def load_context(self, context) -> None:
        """Load the bundle from the model's artifacts."""
        self.bundle = load_bundle(Path(context.artifacts[BUNDLE_ARTIFACT]))

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        """Score raw rows: the pipeline does every transformation itself."""
        frame = pd.DataFrame(model_input)
        probability = self.bundle.predict_proba(frame)
        return pd.DataFrame({"label": self.bundle.labels(probability), "probability": probability})


mlflow.models.set_model(BundlePythonModel())
