"""Smoke test of a deployed version: server answers on sample rows vs offline predictions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
import numpy as np
import pandas as pd

from mlops_assets.core.model_bundle import ModelBundle

#: Errors meaning "nothing answers at that address" (as opposed to a server answering badly).
UNREACHABLE = (ConnectionError, httpx.ConnectError, httpx.ConnectTimeout)


class Predictor(Protocol):
    """The scoring part of the serving endpoint."""

    def predict(self, rows: list[dict[str, Any]]) -> list[Any]:
        """Score rows; each prediction has ``label``, ``probability`` and ``model_version``."""
        ...


@dataclass(frozen=True)
class SmokeCase:
    """Sample rows and what the version predicts for them offline.

    Attributes:
        version: The version the expectations belong to.
        rows: JSON-ready rows with exactly the contract's columns.
        probabilities: Offline positive-class probabilities.
        labels: Offline 0/1 labels.
        threshold: The version's decision threshold.
    """

    version: int
    rows: list[dict[str, Any]]
    probabilities: np.ndarray = field(repr=False)
    labels: np.ndarray = field(repr=False)
    threshold: float


def json_rows(bundle: ModelBundle, features: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows with the contract's columns as plain Python values (None for missing)."""
    missing = [name for name in bundle.contract.names if name not in features.columns]
    if missing:
        raise ValueError(f"smoke rows lack contract column(s) {missing}")
    rows = []
    for record in features[bundle.contract.names].to_dict("records"):
        row = {}
        for spec in bundle.contract.columns:
            value = record[spec.name]
            if value is None or (isinstance(value, float) and np.isnan(value)):
                row[spec.name] = None
            elif spec.kind == "integer":
                row[spec.name] = int(value)
            elif spec.kind == "number":
                row[spec.name] = float(value)
            elif spec.kind == "boolean":
                row[spec.name] = bool(value)
            else:
                row[spec.name] = str(value)
        rows.append(row)
    return rows


def smoke_case(
    version: int, bundle: ModelBundle, features: pd.DataFrame, labels: np.ndarray, rows: int
) -> SmokeCase:
    """Pick up to ``rows`` sample rows (half positives when there are) and predict them offline.

    Args:
        version: The version ``bundle`` was loaded from.
        bundle: The version's bundle, loaded offline from the registry.
        features: Candidate rows (raw features).
        labels: Their true 0/1 labels, used only to include positive rows.
        rows: How many rows to send.
    """
    truth = np.asarray(labels)
    positives = np.flatnonzero(truth == 1)[: rows // 2]
    negatives = np.flatnonzero(truth != 1)[: rows - len(positives)]
    sample = features.iloc[np.sort(np.concatenate([positives, negatives]))]
    probabilities = bundle.predict_proba(sample)
    return SmokeCase(
        version,
        json_rows(bundle, sample),
        probabilities,
        bundle.labels(probabilities),
        float(bundle.threshold),
    )


@dataclass(frozen=True)
class SmokeResult:
    """Server answers compared with offline predictions.

    Attributes:
        passed: Whether every compared row matched.
        rows: Rows sent.
        compared: Rows answered by the expected version and compared.
        max_abs_diff: Largest probability difference (None: nothing compared).
        label_mismatches: Rows whose labels differ (rows within tolerance of the threshold
            are not counted: their label may legitimately flip).
        detail: One sentence.
    """

    passed: bool
    rows: int
    compared: int
    max_abs_diff: float | None
    label_mismatches: int
    detail: str


def run_smoke(client: Predictor, case: SmokeCase, tolerance: float, attempts: int) -> SmokeResult:
    """Send the sample rows and compare the answers of ``case.version`` with the offline ones.

    A request answered by another version (a canary) is sent again, up to ``attempts`` times.

    Raises:
        ConnectionError, httpx.ConnectError: When the server stopped answering.
    """
    sent = len(case.rows)
    others: set[int] = set()
    for _ in range(attempts):
        try:
            predictions = client.predict(case.rows)
        except UNREACHABLE:
            raise
        except Exception as error:  # noqa: BLE001 - a refused request is a failed smoke test
            detail = f"the server refused the smoke rows: {type(error).__name__}: {error}"
            return SmokeResult(False, sent, 0, None, 0, detail)
        if len(predictions) != sent:
            detail = f"sent {sent} rows, the server answered {len(predictions)}"
            return SmokeResult(False, sent, 0, None, 0, detail)
        versions = {int(p.model_version) for p in predictions}
        if versions == {case.version}:
            break
        others |= versions - {case.version}
    else:
        detail = (
            f"every smoke request was answered by version(s) {sorted(others)}, "
            f"not {case.version} ({attempts} tries)"
        )
        return SmokeResult(False, sent, 0, None, 0, detail)
    served = np.array([float(p.probability) for p in predictions])
    labels = np.array([int(p.label) for p in predictions])
    diff = float(np.max(np.abs(served - case.probabilities))) if sent else 0.0
    clear = np.abs(case.probabilities - case.threshold) > tolerance
    mismatches = int(((labels != case.labels) & clear).sum())
    passed = diff <= tolerance and mismatches == 0
    detail = (
        f"{sent} rows: max |p_server - p_offline| = {diff:.2e} "
        f"(tolerance {tolerance:.0e}), {mismatches} label mismatch(es)"
    )
    return SmokeResult(passed, sent, sent, diff, mismatches, detail)
