"""Online performance: kappa, F1 and PR AUC of served predictions that received labels.

The window is every served row of the monitored version that has a feedback label (the
newest ``window_rows`` of them when set): it starts when the version starts serving, so a
new champion is judged only on its own answers. The drop is the champion's test metric
minus the online one (positive: worse in production).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mlops_assets.constants import FEEDBACK_TABLE, INFERENCE_LOG_TABLE
from mlops_assets.core.feedback import TRUE_LABEL, join_feedback
from mlops_assets.core.monitoring import MonitoringError
from mlops_assets.core.tables import DeltaEngine


@dataclass(frozen=True)
class OnlinePerformance:
    """Metrics of the served predictions that received labels, against the test metrics.

    Attributes:
        enough_data: False when there are too few labeled rows (or positives) for a verdict.
        reason: One-line verdict, or why there is none.
        rows: Labeled rows evaluated.
        positives: Rows with true label 1.
        online: ``kappa``, ``f1``, ``pr_auc`` of the served predictions (empty without data).
        baseline: The same metrics of the champion on its test split.
        primary_metric: The metric whose drop is :attr:`drop`.
    """

    enough_data: bool
    reason: str
    rows: int
    positives: int
    online: Mapping[str, float]
    baseline: Mapping[str, float]
    primary_metric: str = "kappa"

    @property
    def drops(self) -> dict[str, float]:
        """Baseline minus online per metric (positive: worse in production)."""
        return {
            name: self.baseline[name] - value
            for name, value in self.online.items()
            if name in self.baseline and not math.isnan(value)
        }

    @property
    def drop(self) -> float:
        """Drop of the primary metric (0 without a verdict)."""
        return self.drops.get(self.primary_metric, 0.0) if self.enough_data else 0.0


PERFORMANCE_METRICS = ("kappa", "f1", "pr_auc")


def performance_table(result: OnlinePerformance) -> str:
    """Markdown table: each metric online, on test, and the drop."""
    nan = float("nan")
    lines = ["| metric | online | test | drop |", "|---|---|---|---|"]
    lines += [
        f"| {name} | {value:.4f} | {result.baseline.get(name, nan):.4f} | "
        f"{result.drops.get(name, nan):+.4f} |"
        for name, value in result.online.items()
    ]
    return "\n".join(lines)


def online_performance(
    labeled: pd.DataFrame,
    baseline: Mapping[str, float],
    min_rows: int = 200,
    min_positives: int = 1,
    primary_metric: str = "kappa",
) -> OnlinePerformance:
    """Kappa, F1 and PR AUC of served predictions (``label``, ``probability``) vs ``true_label``.

    Args:
        labeled: Joined rows from :func:`join_feedback`.
        baseline: The champion's test metrics by name (``kappa``, ``f1``, ``pr_auc``).
        min_rows: Fewest labeled rows for a verdict.
        min_positives: Fewest rows with true label 1 (PR AUC needs positives).
        primary_metric: The metric whose drop the checks and sensors use.

    Returns:
        The comparison; ``enough_data`` False below the minimums.
    """
    from sklearn.metrics import average_precision_score, cohen_kappa_score, f1_score

    if primary_metric not in PERFORMANCE_METRICS:
        raise MonitoringError(
            f"primary metric {primary_metric!r} is not one of {PERFORMANCE_METRICS}"
        )
    rows = len(labeled)
    positives = int(labeled[TRUE_LABEL].sum()) if rows else 0
    negatives = rows - positives
    if rows < min_rows or positives < min_positives or negatives < 1:
        reason = (
            f"not enough labeled rows: {rows} rows ({positives} positive), need at least "
            f"{min_rows} rows, {min_positives} positive and 1 negative"
        )
        return OnlinePerformance(False, reason, rows, positives, {}, baseline, primary_metric)
    truth = labeled[TRUE_LABEL].to_numpy(dtype=np.int64)
    predicted = labeled["label"].to_numpy(dtype=np.int64)
    online = {
        "kappa": float(cohen_kappa_score(truth, predicted)),
        "f1": float(f1_score(truth, predicted, zero_division=0)),
        "pr_auc": float(average_precision_score(truth, labeled["probability"].to_numpy())),
    }
    reason = f"{primary_metric} {online[primary_metric]:.3f} online on {rows} labeled rows"
    if primary_metric in baseline:
        drop = baseline[primary_metric] - online[primary_metric]
        reason += f" vs {baseline[primary_metric]:.3f} on test (drop {drop:+.3f})"
    return OnlinePerformance(True, reason, rows, positives, online, baseline, primary_metric)


def champion_labeled_rows(
    engine: DeltaEngine,
    model_name: str,
    version: int,
    window_rows: int = 0,
    log_table: str = INFERENCE_LOG_TABLE,
    feedback_table: str = FEEDBACK_TABLE,
) -> tuple[pd.DataFrame, int, int]:
    """Labeled rows served by one model version, the newest ``window_rows`` (0: all).

    Returns:
        ``(joined rows, inference_log version, feedback version)``; versions -1 when absent.
    """
    log_version = engine.latest_version(log_table)
    feedback_version = engine.latest_version(feedback_table)
    if log_version is None or feedback_version is None:
        return pd.DataFrame(), -1 if log_version is None else log_version, -1
    log = engine.read(log_table, log_version)
    served = log[(log["model_name"] == model_name) & (log["model_version"] == int(version))]
    joined = join_feedback(served, engine.read(feedback_table, feedback_version))
    if window_rows > 0 and len(joined) > window_rows:
        joined = joined.sort_values("timestamp", kind="stable").tail(window_rows)
    return joined.reset_index(drop=True), log_version, feedback_version


@dataclass(frozen=True)
class PerformanceReport:
    """Online performance of one model version and the table versions it read.

    Attributes:
        model_name: Registered model name.
        model_version: The version whose served predictions were scored.
        performance: The metrics and their drop against the test metrics.
        inference_log_version: Version of ``inference_log`` read (-1: absent).
        feedback_version: Version of ``feedback`` read (-1: absent).
        window_rows: Newest labeled rows kept (0: all).
    """

    model_name: str
    model_version: int
    performance: OnlinePerformance
    inference_log_version: int
    feedback_version: int
    window_rows: int


def measure_performance(
    engine: DeltaEngine,
    model_name: str,
    model_version: int,
    baseline: Mapping[str, float],
    min_rows: int = 200,
    min_positives: int = 1,
    primary_metric: str = "kappa",
    window_rows: int = 0,
) -> PerformanceReport:
    """Score the labeled predictions served by ``model_version`` against its test metrics.

    The window is every served row of that version with a feedback label (newest
    ``window_rows`` of them when > 0): it starts when the version starts serving, so a new
    champion is judged only on its own answers.
    """
    if window_rows < 0:
        raise MonitoringError(f"window_rows must be >= 0, got {window_rows}")
    joined, log_version, feedback_version = champion_labeled_rows(
        engine, model_name, model_version, window_rows
    )
    performance = online_performance(joined, baseline, min_rows, min_positives, primary_metric)
    return PerformanceReport(
        model_name, model_version, performance, log_version, feedback_version, window_rows
    )
