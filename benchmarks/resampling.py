"""Resampling side by side: ADASYN vs no resampling with ``scale_pos_weight``.

Both variants fit the same pipeline (the project's preprocessor + XGBoost ``hist``) with the
same fixed hyperparameters on the same stratified train split (seed 42) and are scored on the
same test split: ADASYN over-samples the train positives to ``--ratio`` (0.1) of the
negatives with ``scale_pos_weight`` 1; the other keeps the train rows as they are and weighs
the positives by negatives / positives. Reported: resampling seconds, fit seconds, total
seconds, test PR AUC (average precision) and ROC AUC of each, the time ratio and the PR AUC
difference. Fixed parameters, not a search: the comparison isolates the resampling.

Usage:
  .venv/bin/python -m benchmarks.resampling [--data PATH] [--reps 3] [--smoke]
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass
from pathlib import Path

from sklearn.metrics import average_precision_score, roc_auc_score

from benchmarks.data import features, splits
from benchmarks.harness import DEFAULT_DATA, Figure, Settings, Stats, ratio, timing
from mlops_assets.core.model import build_pipeline, positive_probability, xgboost_classifier
from mlops_assets.core.resampling import resample

NAME = "resampling"
PARAMS = {"n_estimators": 200, "max_depth": 6, "learning_rate": 0.1, "seed": 42, "nthread": 2}
SMOKE_PARAMS = {**PARAMS, "n_estimators": 20, "max_depth": 3}


@dataclass(frozen=True)
class Variant:
    """One variant's repeated timings and test scores."""

    label: str
    resample_seconds: Stats
    fit_seconds: Stats
    total_seconds: Stats
    rows: int
    pr_auc: float
    roc_auc: float


def run_variant(train, test, columns, method: str, settings: Settings, ratio_: float) -> Variant:
    """Resample (or not) and fit, ``warmup`` + ``reps`` times; score the last fit on test."""
    params = SMOKE_PARAMS if settings.smoke else PARAMS
    resample_s, fit_s, total_s = [], [], []
    for index in range(settings.warmup_runs + settings.timed_reps):
        started = time.perf_counter()
        result = resample(train, method, seed=42, sampling_ratio=ratio_)
        resampled = time.perf_counter()
        labels = result.frame["label"].to_numpy()
        weight = 1.0 if method != "none" else (labels == 0).sum() / max(1, (labels == 1).sum())
        pipeline = build_pipeline(
            result.frame[columns], xgboost_classifier({**params, "scale_pos_weight": weight})
        )
        pipeline.fit(result.frame[columns], labels)
        finished = time.perf_counter()
        if index >= settings.warmup_runs:
            resample_s.append(resampled - started)
            fit_s.append(finished - resampled)
            total_s.append(finished - started)
    scores = positive_probability(pipeline, test[columns])
    truth = test["label"].to_numpy()
    label = f"{result.method} ratio {ratio_:g}" if method != "none" else f"none, spw {weight:.0f}"
    return Variant(
        label,
        Stats(tuple(resample_s)),
        Stats(tuple(fit_s)),
        Stats(tuple(total_s)),
        len(result.frame),
        float(average_precision_score(truth, scores)),
        float(roc_auc_score(truth, scores)),
    )


def suite(settings: Settings, sampling_ratio: float = 0.1) -> list[Figure]:
    """ADASYN vs ``scale_pos_weight``: seconds, test PR AUC and their ratio/difference."""
    split = splits(settings)
    columns = features(split.train)
    params = SMOKE_PARAMS if settings.smoke else PARAMS
    setup = (
        f"{len(split.train):,} train / {len(split.test):,} test rows; XGBoost hist "
        f"{params['n_estimators']} trees depth {params['max_depth']} lr {params['learning_rate']}"
    )
    adasyn = run_variant(split.train, split.test, columns, "adasyn", settings, sampling_ratio)
    plain = run_variant(split.train, split.test, columns, "none", settings, sampling_ratio)
    figures = []
    for key, variant in (("adasyn", adasyn), ("none+spw", plain)):
        note = f"{variant.label}; {variant.rows:,} rows fitted"
        figures += [
            timing(NAME, f"{key} resample", variant.resample_seconds, note=note),
            timing(NAME, f"{key} fit", variant.fit_seconds, note=setup),
            timing(NAME, f"{key} resample+fit", variant.total_seconds),
            Figure(NAME, f"{key} test PR AUC", variant.pr_auc, "", note="average precision"),
            Figure(NAME, f"{key} test ROC AUC", variant.roc_auc, ""),
        ]
    figures.append(
        ratio(
            NAME,
            "time adasyn / none+spw",
            adasyn.total_seconds.median,
            plain.total_seconds.median,
            note="resample+fit, medians",
        )
    )
    figures.append(
        Figure(
            NAME,
            "PR AUC adasyn - none+spw",
            adasyn.pr_auc - plain.pr_auc,
            "",
            note="positive: ADASYN scores better on test",
        )
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--target", default="Class")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--ratio", type=float, default=0.1)
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    settings = Settings(data=args.data, target=args.target, reps=args.reps, smoke=args.smoke)
    for figure in suite(settings, args.ratio):
        spread = "" if figure.spread is None else f" (spread {figure.spread:.3f})"
        print(f"{figure.name:<28} {figure.value:10.4f} {figure.unit}{spread}  {figure.note}")
    print(f"machine load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
