"""A fitted model as every prediction path uses it: pipeline, decision threshold, contract.

Serialisation is deliberate: the pipeline is stored with skops, never with pickle. Loading
trusts only the object types skops reports that fall under an allowlist of module prefixes
(scikit-learn, imbalanced-learn, XGBoost, NumPy, SciPy and this project); a file that
asks for anything else is refused with the offending type named.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlops_assets.core.contract import InputContract

PIPELINE_FILE = "pipeline.skops"
BUNDLE_FILE = "bundle.json"
TRUSTED_MODULE_PREFIXES = (
    "sklearn.",
    "imblearn.",
    "xgboost.",
    "numpy.",
    "scipy.",
    "builtins.",
    "collections.",
    "mlops_assets.",
)


class UntrustedModelError(ValueError):
    """Raised when a stored pipeline asks to load an object type outside the allowlist."""


@dataclass(frozen=True)
class ModelBundle:
    """A fitted classifier with the threshold chosen on validation and its input contract.

    Attributes:
        pipeline: Fitted scikit-learn compatible estimator; ``predict_proba`` takes a frame
            with the contract's columns, raw as they arrive in production.
        threshold: Probability at or above which a row is labelled positive.
        contract: The serving input contract (feature columns, kinds, order).
    """

    pipeline: Any
    threshold: float
    contract: InputContract

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        """Return the positive-class probability of each row."""
        return np.asarray(self.pipeline.predict_proba(features[self.contract.names]))[:, 1]

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        """Return the 0/1 label of each row, using the stored threshold."""
        return self.labels(self.predict_proba(features))

    def labels(self, probabilities: np.ndarray) -> np.ndarray:
        """Apply the stored threshold to probabilities."""
        return (np.asarray(probabilities) >= self.threshold).astype(np.int8)


def save_bundle(
    bundle: ModelBundle, folder: str | Path, extra: dict[str, Any] | None = None
) -> Path:
    """Write the bundle into ``folder`` (skops pipeline + JSON threshold and contract).

    Args:
        bundle: The fitted bundle.
        folder: Target folder, created if missing.
        extra: Additional JSON-serialisable facts stored beside the threshold (metrics...).

    Returns:
        The folder.
    """
    import skops.io as sio

    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    sio.dump(bundle.pipeline, target / PIPELINE_FILE)
    payload = {
        "threshold": float(bundle.threshold),
        "contract": json.loads(bundle.contract.to_json()),
        "extra": extra or {},
    }
    (target / BUNDLE_FILE).write_text(json.dumps(payload, indent=2))
    return target


def load_bundle(folder: str | Path) -> ModelBundle:
    """Load a bundle written by :func:`save_bundle`, trusting only allowlisted types.

    Args:
        folder: Folder holding ``pipeline.skops`` and ``bundle.json``.

    Returns:
        The bundle.

    Raises:
        FileNotFoundError: When a file of the bundle is missing.
        UntrustedModelError: When the pipeline needs a type outside the allowlist.
    """
    import skops.io as sio

    source = Path(folder)
    for name in (PIPELINE_FILE, BUNDLE_FILE):
        if not (source / name).is_file():
            raise FileNotFoundError(f"model bundle at {source} is missing {name}")
    untrusted = sio.get_untrusted_types(file=source / PIPELINE_FILE)
    refused = [name for name in untrusted if not name.startswith(TRUSTED_MODULE_PREFIXES)]
    if refused:
        raise UntrustedModelError(
            f"model bundle at {source} needs types outside the allowlist: {', '.join(refused)}"
        )
    pipeline = sio.load(source / PIPELINE_FILE, trusted=untrusted)
    payload = json.loads((source / BUNDLE_FILE).read_text())
    contract = InputContract.from_json(json.dumps(payload["contract"]))
    return ModelBundle(pipeline=pipeline, threshold=float(payload["threshold"]), contract=contract)


def bundle_extra(folder: str | Path) -> dict[str, Any]:
    """Return the ``extra`` facts stored with a bundle."""
    return json.loads((Path(folder) / BUNDLE_FILE).read_text()).get("extra", {})
