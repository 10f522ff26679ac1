"""The ``promotions`` and ``deployments`` Delta tables: append-only audit history.

``promotions`` holds one row per decision (``promote`` / ``keep``) and per rollback of the
``champion`` alias; its idempotency key is (model name, challenger version, champion
version): a pair that already has a ``promote`` or ``keep`` row is never decided again.
``deployments`` holds one row per attempt to make a version live on the serving endpoint.
Rows are built from frozen records with a fixed column order and types, so every append
has the same schema on either Delta engine.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from typing import Literal

import pandas as pd

from mlops_assets.constants import DEPLOYMENTS_TABLE, PROMOTIONS_TABLE
from mlops_assets.core.tables import DeltaEngine, TableNotFoundError

PromotionAction = Literal["promote", "keep", "rollback"]
DeploymentStatus = Literal["deployed", "pending", "rolled_back", "failed"]
DECIDING_ACTIONS = ("promote", "keep")

_INTEGER_COLUMNS = {
    "challenger_version",
    "champion_version",
    "bootstrap_resamples",
    "bootstrap_rows",
    "version",
    "previous_version",
    "serving_version",
    "smoke_rows",
    "smoke_compared",
    "smoke_label_mismatches",
}
_FLOAT_COLUMNS = {
    "kappa_delta_mean",
    "kappa_delta_ci_low",
    "kappa_delta_ci_high",
    "f1_delta_mean",
    "f1_delta_ci_low",
    "f1_delta_ci_high",
    "prob_kappa_improves",
    "smoke_max_abs_diff",
    "seconds",
}


def utc_now() -> datetime:
    """The current time in UTC (microsecond precision, as Delta stores it)."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class PromotionRecord:
    """One row of ``promotions``.

    Attributes:
        decided_at: When the decision (or rollback) happened, UTC.
        model_name: Registered model name.
        challenger_version: The version considered for ``champion`` (for a rollback: the
            version restored).
        champion_version: The champion at the time (None: there was none; for a rollback:
            the version rolled back from).
        action: ``promote`` (aliases moved), ``keep`` (nothing moved) or ``rollback``.
        decision: Whether ``challenger_version`` became champion.
        reason: One sentence a person can act on.
        challenger_metrics: JSON of the challenger's metrics on the compared test rows.
        champion_metrics: JSON of the champion's metrics on the same rows (``{}`` if none).
        guardrails: JSON list of guardrail outcomes (name, passed, detail).
        alias_moves: JSON list of the alias moves applied.
        bootstrap_resamples: Resamples of the paired bootstrap (None: no bootstrap).
        bootstrap_rows: Test rows compared.
        kappa_delta_mean: Mean challenger-minus-champion kappa.
        kappa_delta_ci_low: Lower end of its 95 % interval.
        kappa_delta_ci_high: Upper end of its 95 % interval.
        f1_delta_mean: Mean challenger-minus-champion F1.
        f1_delta_ci_low: Lower end of its 95 % interval.
        f1_delta_ci_high: Upper end of its 95 % interval.
        prob_kappa_improves: Share of resamples where the challenger's kappa is higher.
        splits_table: The test rows' table, ``name@vN``.
        dagster_run_id: The Dagster run that decided.
    """

    decided_at: datetime
    model_name: str
    challenger_version: int
    champion_version: int | None
    action: PromotionAction
    decision: bool
    reason: str
    challenger_metrics: str = "{}"
    champion_metrics: str = "{}"
    guardrails: str = "[]"
    alias_moves: str = "[]"
    bootstrap_resamples: int | None = None
    bootstrap_rows: int | None = None
    kappa_delta_mean: float | None = None
    kappa_delta_ci_low: float | None = None
    kappa_delta_ci_high: float | None = None
    f1_delta_mean: float | None = None
    f1_delta_ci_low: float | None = None
    f1_delta_ci_high: float | None = None
    prob_kappa_improves: float | None = None
    splits_table: str = ""
    dagster_run_id: str = ""


@dataclass(frozen=True)
class DeploymentRecord:
    """One row of ``deployments``.

    Attributes:
        attempted_at: When the attempt started, UTC.
        model_name: Registered model name.
        trigger: ``deploy`` (the deployment asset) or ``rollback`` (rollback job / CLI).
        version: The version this attempt tried to make live.
        previous_version: The version serving before the attempt (None: none or no server).
        serving_version: The version verified serving afterwards (None: unknown, no server).
        status: ``deployed``, ``pending`` (no server), ``rolled_back`` (the endpoint serves
            an earlier version again, verified) or ``failed``.
        reason: What happened, in one sentence.
        server_url: The endpoint addressed.
        smoke_rows: Rows sent in the smoke test (None: no smoke test ran).
        smoke_compared: Rows compared with the offline predictions.
        smoke_max_abs_diff: Largest probability difference server vs offline.
        smoke_label_mismatches: Rows whose labels differ (away from the threshold).
        seconds: Wall-clock duration of the attempt.
        dagster_run_id: The Dagster run of the attempt.
    """

    attempted_at: datetime
    model_name: str
    trigger: Literal["deploy", "rollback"]
    version: int
    previous_version: int | None
    serving_version: int | None
    status: DeploymentStatus
    reason: str
    server_url: str = ""
    smoke_rows: int | None = None
    smoke_compared: int | None = None
    smoke_max_abs_diff: float | None = None
    smoke_label_mismatches: int | None = None
    seconds: float | None = None
    dagster_run_id: str = ""


def records_frame(records: list[PromotionRecord] | list[DeploymentRecord]) -> pd.DataFrame:
    """Rows with fixed dtypes: nullable ``Int64``/``Float64``, UTC microsecond timestamps."""
    if not records:
        raise ValueError("records_frame needs at least one record")
    columns = [spec.name for spec in fields(type(records[0]))]
    frame = pd.DataFrame([asdict(record) for record in records], columns=columns)
    for column in frame.columns:
        if column in _INTEGER_COLUMNS:
            frame[column] = frame[column].astype("Int64")
        elif column in _FLOAT_COLUMNS:
            frame[column] = frame[column].astype("Float64")
        elif column in ("decided_at", "attempted_at"):
            frame[column] = pd.to_datetime(frame[column], utc=True).astype("datetime64[us, UTC]")
        elif column == "decision":
            frame[column] = frame[column].astype(bool)
        else:
            frame[column] = frame[column].astype(str)
    return frame


def append_records(
    engine: DeltaEngine, records: list[PromotionRecord] | list[DeploymentRecord]
) -> int:
    """Append records to their table (``promotions`` or ``deployments``); return its version."""
    table = PROMOTIONS_TABLE if isinstance(records[0], PromotionRecord) else DEPLOYMENTS_TABLE
    return engine.write(table, records_frame(records), mode="append").version


def read_history(engine: DeltaEngine, table: str) -> pd.DataFrame:
    """The whole history table, oldest first (an empty frame when it does not exist yet).

    Integer columns come back as nullable ``Int64`` (a missing version is ``<NA>``).
    """
    try:
        frame = engine.read(table)
    except TableNotFoundError:
        return pd.DataFrame()
    for column in _INTEGER_COLUMNS & set(frame.columns):
        frame[column] = frame[column].astype("Int64")
    order = "decided_at" if "decided_at" in frame.columns else "attempted_at"
    return frame.sort_values(order, kind="stable").reset_index(drop=True)


def _version(value: object) -> int | None:
    return None if value is None or pd.isna(value) else int(value)


def record_from_row(row: pd.Series) -> PromotionRecord:
    """Rebuild a :class:`PromotionRecord` from a ``promotions`` row."""
    values = {}
    for spec in fields(PromotionRecord):
        value = row.get(spec.name)
        if spec.name in _INTEGER_COLUMNS:
            value = _version(value)
        elif spec.name in _FLOAT_COLUMNS:
            value = None if value is None or pd.isna(value) else float(value)
        elif spec.name == "decided_at":
            value = pd.Timestamp(value).to_pydatetime()
        elif spec.name == "decision":
            value = bool(value)
        else:
            value = "" if value is None else str(value)
        values[spec.name] = value
    return PromotionRecord(**values)


def earlier_decision(
    promotions: pd.DataFrame, model_name: str, challenger: int, champion: int | None
) -> PromotionRecord | None:
    """The first ``promote``/``keep`` row for (model, challenger, champion), if any.

    Args:
        promotions: The ``promotions`` table (see :func:`read_history`).
        model_name: Registered model name.
        challenger: Challenger version.
        champion: Champion version at decision time (None: no champion).
    """
    if promotions.empty:
        return None
    champions = promotions["champion_version"]
    same_champion = champions.isna() if champion is None else champions == champion
    mask = (
        (promotions["model_name"] == model_name)
        & (promotions["challenger_version"] == challenger)
        & same_champion.fillna(False).astype(bool)
        & promotions["action"].isin(DECIDING_ACTIONS)
    )
    matches = promotions[mask]
    return None if matches.empty else record_from_row(matches.iloc[0])


def replaced_by(promotions: pd.DataFrame, model_name: str, version: int) -> int | None:
    """The champion that ``version`` replaced when it was last promoted (None: none/unknown)."""
    if promotions.empty:
        return None
    mask = (
        (promotions["model_name"] == model_name)
        & (promotions["challenger_version"] == version)
        & (promotions["action"] == "promote")
    )
    matches = promotions[mask]
    return None if matches.empty else _version(matches.iloc[-1]["champion_version"])


def last_serving(deployments: pd.DataFrame, model_name: str) -> int | None:
    """The version the latest verified deployment or rollback left serving (None: none)."""
    if deployments.empty:
        return None
    mask = (
        (deployments["model_name"] == model_name)
        & deployments["status"].isin(("deployed", "rolled_back"))
        & deployments["serving_version"].notna()
    )
    matches = deployments[mask]
    return None if matches.empty else _version(matches.iloc[-1]["serving_version"])


def metrics_json(metrics: dict[str, float]) -> str:
    """Serialise metrics (floats rounded to 6 significant digits) for a history row."""
    return json.dumps({key: float(f"{value:.6g}") for key, value in metrics.items()})
