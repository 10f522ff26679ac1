"""A loaded model version and the immutable serving state; loading, warming and checking.

Warm-up scores rows built from the logged input example (with missing values where the
contract allows them), compiles the fast scoring path and keeps it only if it reproduces the
pipeline. A pipeline that cannot score missing values keeps serving with every column
required, so a null answers 422 instead of failing inside the model.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

import numpy as np

from mlops_assets.core.contract import InputContract
from mlops_assets.core.inference_log import KIND_CODES, prediction_signature
from mlops_assets.core.model_bundle import ModelBundle
from mlops_assets.serving.scorer import Scorer, build_scorer, warm_batch
from mlops_assets.serving.validation import ContractValidator

logger = logging.getLogger(__name__)


class ModelLoadError(RuntimeError):
    """A model version could not be loaded, warmed or verified."""


def canary_share(request_id: str) -> float:
    """Map a request id to [0, 1) deterministically (blake2b), for the canary split."""
    digest = hashlib.blake2b(request_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


@dataclass(frozen=True)
class LoadedModel:
    """A loaded, warmed model version.

    Attributes:
        name: Registered model name.
        version: Registry version number.
        alias: Alias it was resolved from.
        role: ``primary`` or ``canary``.
        scorer: Scoring path (holds the bundle).
        validator: Request validator built from its contract.
        tags: Version tags (lineage: data version, run, commit...).
        run_id: MLflow run that logged it.
        loaded_at: When it finished loading (UTC).
        load_seconds: Time spent loading and warming.
    """

    name: str
    version: int
    alias: str
    role: str
    scorer: Scorer
    validator: ContractValidator
    tags: dict[str, str]
    run_id: str | None
    loaded_at: datetime
    load_seconds: float

    @cached_property
    def log_signature(self) -> bytes:
        """What every inference-log record of this version shares (see ``core.inference_log``)."""
        contract = self.validator.contract
        codes = "".join(KIND_CODES[spec.kind] for spec in contract.columns)
        return prediction_signature(self.name, self.version, self.alias, contract.names, codes)

    def info(self) -> dict[str, Any]:
        """JSON-ready description for ``/model``."""
        return {
            "name": self.name,
            "version": self.version,
            "alias": self.alias,
            "role": self.role,
            "run_id": self.run_id,
            "tags": self.tags,
            "loaded_at": self.loaded_at.isoformat(),
            "load_seconds": round(self.load_seconds, 3),
            "threshold": self.scorer.bundle.threshold,
            "scoring_path": self.scorer.path,
            "scoring_path_reason": self.scorer.reason,
            "columns": [
                {"name": spec.name, "kind": spec.kind, "nullable": spec.nullable}
                for spec in self.validator.contract.columns
            ],
        }


@dataclass(frozen=True)
class ServingState:
    """What serves right now (replaced as a whole on every swap)."""

    primary: LoadedModel | None = None
    canary: LoadedModel | None = None
    canary_fraction: float = 0.0

    def pick(self, request_id: str) -> LoadedModel | None:
        """The version answering ``request_id``: canary when its share is below the fraction."""
        if self.canary is not None and canary_share(request_id) < self.canary_fraction:
            return self.canary
        return self.primary


@dataclass(frozen=True)
class LoadFailure:
    """A version that failed to load; the previous one kept serving."""

    role: str
    alias: str
    version: int | None
    error: str
    at: str


@dataclass(frozen=True)
class RefreshOutcome:
    """Result of one :meth:`ModelHolder.refresh`."""

    changed: list[str] = field(default_factory=list)
    failures: list[LoadFailure] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing failed."""
        return not self.failures


def limit_threads(bundle: ModelBundle, threads: int) -> None:
    """Cap the threads the classifier uses per prediction (serving is one request at a time)."""
    classifier = bundle.pipeline.steps[-1][1] if hasattr(bundle.pipeline, "steps") else None
    if classifier is not None and hasattr(classifier, "get_booster"):
        classifier.set_params(n_jobs=threads)
        classifier.get_booster().set_param({"nthread": threads})


def now_iso() -> str:
    """Current UTC time, ISO 8601."""
    return datetime.now(UTC).isoformat()


def warm(bundle: ModelBundle, examples: list[dict] | None) -> tuple[Scorer, InputContract]:
    """Score warm-up rows, compile the fast path, and refuse nulls if the model cannot take them.

    Rows with missing values go first when the contract allows them; a pipeline that cannot
    score them keeps serving with every column required (nulls answer 422, never 500).
    """
    contract = bundle.contract
    records = warm_batch(bundle, examples)
    if any(spec.nullable for spec in contract.columns):
        try:
            batch = ContractValidator(contract, "ignore", len(records)).validate(records)
            return _checked(build_scorer(bundle, batch), batch), contract
        except Exception as error:  # noqa: BLE001 - retried below without missing values
            logger.warning("model cannot score missing values (%s); nulls are refused", error)
            contract = replace(contract, columns=_required(contract))
    complete = [row for row in records if all(value is not None for value in row.values())]
    batch = ContractValidator(contract, "ignore", len(records)).validate(complete)
    return _checked(build_scorer(bundle, batch), batch), contract


def _checked(scorer: Scorer, batch) -> Scorer:
    probabilities = scorer.probabilities(batch)
    if probabilities.shape != (batch.rows,) or not (
        np.isfinite(probabilities).all()
        and (probabilities >= 0).all()
        and (probabilities <= 1).all()
    ):
        raise ValueError(f"model returned invalid probabilities (shape {probabilities.shape})")
    return scorer


def _required(contract: InputContract) -> tuple:
    return tuple(replace(spec, nullable=False) for spec in contract.columns)


def input_examples(model_uri: str) -> list[dict] | None:
    """The rows logged as the model's input example (``input_example.json``), if readable."""
    import json
    import tempfile
    from pathlib import Path

    import mlflow

    try:
        with tempfile.TemporaryDirectory() as scratch:
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=f"{model_uri.rstrip('/')}/input_example.json", dst_path=scratch
            )
            payload = json.loads(Path(local).read_text())
        return [dict(zip(payload["columns"], row, strict=True)) for row in payload["data"]]
    except Exception:  # noqa: BLE001 - optional: synthetic rows are used instead
        return None
