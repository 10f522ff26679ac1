"""Tuning in the suite: seconds per trial, ``hist`` vs ``exact``, SparkTrials vs sequential.

``benchmarks/tuning.py`` (the detailed script: per-trial lines, where the time goes, test
quality) stays the tool for a close look; this module measures what issue 8 compares, on
the same data layer steps (silver typing, stratified 60/20/20 split with seed 42, ADASYN at
ratio 0.1 on train only, every column but ``Time`` as a feature):

  * ``hist`` vs ``exact``: the trial function of the search (``fit_and_score``: fit on
    train, score valid, pick the kappa threshold) on the same ``k`` parameter sets drawn
    from the search space with a fixed seed, once per tree method; seconds per trial and
    their ratio. No hyperopt in between, so both methods fit exactly the same candidates.
  * 100 trials in <= 15 min: the asset's whole search (``train_and_log``: TPE, one MLflow
    child run per trial, refit, test evaluation, model logging) with ``n`` trials, through
    ``benchmarks/tuning.py``'s ``tuning_figures``; the search seconds per trial times 100,
    labelled "projected from n trials". ``--full`` runs 100 trials for real instead.
  * SparkTrials on ``local[2]`` (2 trials at once, 1 thread each) vs sequential Trials
    (2 threads per fit): the same ``n``-trial search, seconds per trial and their ratio
    (the Spark session start is reported apart). Skipped in smoke mode.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
from hyperopt.pyll import stochastic

from benchmarks.data import features, splits
from benchmarks.harness import Figure, Settings, Stats, ratio, skipped, timing
from benchmarks.tuning import tuning_figures
from mlops_assets.core.lineage import Lineage, git_commit, package_version
from mlops_assets.core.model import xgboost_classifier
from mlops_assets.core.resampling import resample
from mlops_assets.core.tracking import TrackingTarget
from mlops_assets.core.training import SearchSettings, train_and_log
from mlops_assets.core.tuning import fit_and_score, prepare_splits, xgboost_space

NAME = "tuning"
TARGET_MINUTES = 15.0


def exact_classifier(params: dict[str, Any]) -> Any:
    """The default XGBoost classifier with the ``exact`` tree method instead of ``hist``."""
    return xgboost_classifier(params).set_params(tree_method="exact")


def candidates(count: int, seed: int = 0) -> list[dict[str, Any]]:
    """``count`` parameter sets drawn from the search space (ADASYN: no scale_pos_weight)."""
    rng = np.random.default_rng(seed)
    return [stochastic.sample(xgboost_space("adasyn"), rng=rng) for _ in range(count)]


def per_trial(factory, params: list[dict[str, Any]], data) -> Stats:
    """Seconds of the search's trial function for each parameter set."""
    seconds = []
    for candidate in params:
        started = time.perf_counter()
        result = fit_and_score(
            factory, candidate, {"seed": 42, "nthread": 2}, data.train, data.valid
        )
        if result["status"] != "ok":
            raise RuntimeError(f"trial with {candidate} failed: {result.get('error')}")
        seconds.append(time.perf_counter() - started)
    return Stats(tuple(seconds))


def search(data, folder: Path, name: str, budget: int, nthread: int, spark=None) -> float:
    """The asset's whole search; returns its search seconds per trial."""
    tracking = TrackingTarget(
        tracking_uri=f"sqlite:///{folder / 'mlflow.db'}",
        experiment_name=f"tuning_suite_{name}",
        artifact_root=str(folder / "artifacts"),
    )
    lineage = Lineage(
        transactions_uri="benchmark",
        transactions_version=-1,
        splits_uri="in-memory split seed 42",
        splits_version=-1,
        train_uri="in-memory",
        train_version=-1,
        resampling_method="adasyn",
        dagster_run_id="benchmark",
        asset_key="benchmarks/tuning_suite.py",
        git_commit=git_commit(),
        package_version=package_version(),
    )
    settings = SearchSettings(max_evals=budget, seed=42, nthread=nthread, parallelism=2)
    report = train_and_log(tracking, data, lineage, settings, spark_session=spark)
    return report.search_seconds / len(report.outcomes)


def suite(settings: Settings) -> list[Figure]:
    """hist/exact ratio, the 100-trial figure, SparkTrials/sequential ratio."""
    split = splits(settings)
    columns = features(split.train)
    resampled = resample(split.train, "adasyn", 42, 0.1)
    data = prepare_splits(resampled.frame, split.valid, split.test, columns)
    rows = f"{len(resampled.frame):,} train rows (ADASYN 0.1), {len(split.valid):,} valid"
    k, n = (1, 2) if settings.smoke else (2, 6)  # exact costs ~16x hist on the full data
    n = 100 if settings.full and not settings.smoke else n
    params = candidates(k)
    hist = per_trial(xgboost_classifier, params, data)
    exact = per_trial(exact_classifier, params, data)
    same = f"median of the same {k} candidates (space, seed 0; spread across them); {rows}"
    figures = [
        timing(NAME, "hist s/trial (fit+score)", hist, note=same),
        timing(NAME, "exact s/trial (fit+score)", exact, note=same),
        ratio(NAME, "exact / hist s/trial", exact.median, hist.median, note="medians"),
    ]
    folder = settings.workdir
    if "Time" not in split.train.columns or settings.target != "Class":
        raise ValueError(
            f"{settings.data}: the search part runs benchmarks/tuning.py, which needs the "
            "credit-card schema (label Class, column Time)"
        )
    found = tuning_figures(max_evals=n, csv=settings.data, keep=folder / "search", verbose=False)
    row = found["splits"][42]
    sequential = row["seconds_per_trial"]
    minutes = 100 * sequential / 60
    how = "measured 100 trials" if n == 100 else f"projected from {n} trials"
    what = "benchmarks/tuning.py tuning_figures: the asset's search, defaults"
    figures += [
        Figure(NAME, "sequential search s/trial", sequential, "s", note=f"{n} trials; {what}"),
        Figure(
            NAME,
            "100 trials",
            minutes,
            "min",
            target=f"<= {TARGET_MINUTES:g} min",
            met=minutes <= TARGET_MINUTES,
            note=f"{how} (TPE + MLflow child runs, hist, 2 threads), wall-clock time",
        ),
        Figure(
            NAME,
            "100 trials on free cores (estimate)",
            row["idle_projected_100_trials_min"],
            "min",
            note="from the fits' CPU seconds / 2 threads: a lower bound, not a measurement",
        ),
        Figure(NAME, "search test PR AUC", row["test_pr_auc"], "", note=f"best of {n} trials"),
        Figure(NAME, "search test kappa", row["test_kappa"], "", note=f"best of {n} trials"),
    ]
    if settings.smoke:
        figures.append(skipped(NAME, "SparkTrials / sequential s/trial", "skipped in smoke mode"))
        return figures
    from mlops_assets.core.spark import spark_session

    started = time.perf_counter()
    spark = spark_session(master="local[2]")
    session = time.perf_counter() - started
    try:
        on_spark = search(data, folder, "spark", n, nthread=1, spark=spark)
    finally:
        spark.stop()
    figures += [
        Figure(NAME, "SparkTrials search s/trial", on_spark, "s", note="local[2], 2 at once"),
        ratio(
            NAME,
            "SparkTrials / sequential s/trial",
            on_spark,
            sequential,
            note=f"{n} trials each; Spark session start {session:.1f} s not included",
        ),
    ]
    return figures
