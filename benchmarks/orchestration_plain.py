"""The main job's work as a plain script: the same ``core`` calls, in the assets' order.

No Dagster: no run storage, no event log, no IO manager, no metadata. Each step mirrors one
asset body in ``mlops_assets/defs`` with the defaults of its ``Config`` class, so the
orchestration benchmark compares like with like.

    .venv/bin/python -m benchmarks.orchestration_plain STATE_DIR --data PATH [--max-evals 3]
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from mlops_assets.constants import (
    CHALLENGER_ALIAS,
    EXPERIMENT_NAME,
    LABELED_FEEDBACK_TABLE,
    REGISTERED_MODEL_NAME,
)
from mlops_assets.core import sources
from mlops_assets.core.champion import select_champion
from mlops_assets.core.comparison import test_rows
from mlops_assets.core.guardrails import PromotionPolicy
from mlops_assets.core.ingestion import refine_transactions, write_raw
from mlops_assets.core.lineage import Lineage, git_commit, package_version
from mlops_assets.core.paths import state_paths
from mlops_assets.core.registry import connect, register_version
from mlops_assets.core.resampling import resample_table
from mlops_assets.core.splits import SplitFractions, feature_columns, split_frames, split_table
from mlops_assets.core.tables import DeltaRsEngine
from mlops_assets.core.tracking import TrackingTarget
from mlops_assets.core.training import SearchSettings, train_and_log
from mlops_assets.core.tuning import prepare_splits
from mlops_assets.core.validation import CheckThresholds, check_transactions

BLOCKING_CHECKS = ("columns_and_types", "two_classes", "min_positives", "null_rates")


@dataclass(frozen=True)
class PlainRun:
    """What the plain pipeline produced.

    Attributes:
        registered_version: The challenger's registry version.
        champion_version: The champion afterwards (None: none).
        trials: Trials run.
        rows: Rows of ``transactions``.
    """

    registered_version: str
    champion_version: int | None
    trials: int
    rows: int


def plain_pipeline(
    state_dir: str | Path, data: str | Path, target: str, positive: str, max_evals: int
) -> PlainRun:
    """Run the main job's work (deployment aside) with core functions only.

    Args:
        state_dir: Fresh state folder (Delta lake and MLflow store go under it).
        data: Labelled CSV (gzip allowed) or Parquet file.
        target: Label column.
        positive: Positive label of ``target``.
        max_evals: Tuning budget (trials); seed 42 as the asset's default.

    Returns:
        The registered and champion versions.

    Raises:
        RuntimeError: A blocking check on ``transactions`` failed (the job would stop there).
    """
    paths = state_paths(state_dir).ensure()
    engine = DeltaRsEngine(root=str(paths.lakehouse))
    tracking = TrackingTarget(
        tracking_uri=paths.mlflow_tracking_uri,
        experiment_name=EXPERIMENT_NAME,
        artifact_root=str(paths.mlflow_artifact_root),
    )
    source = sources.FileSource(str(data), sources.TargetSpec(target, positive))
    # raw_transactions
    raw = write_raw(engine, sources.load_source(source))
    # transactions (+ its checks)
    silver = refine_transactions(
        engine,
        raw.ref,
        target=sources.expected_target(source),
        column_types=sources.expected_types(source),
        dedup="drop_exact",
        origin=sources.describe(source),
        feedback_table=LABELED_FEEDBACK_TABLE,
    )
    thresholds = CheckThresholds(30, 0.5, 0.5)
    outcomes = check_transactions(engine, silver.ref, sources.expected_types(source), thresholds)
    failed = [o.name for o in outcomes if o.name in BLOCKING_CHECKS and not o.passed]
    if failed:
        raise RuntimeError(f"{silver.ref.describe()}: blocking check(s) {failed} failed")
    # training_splits
    splits = split_table(engine, silver.ref, SplitFractions(0.6, 0.2, 0.2), 42)
    # resampled_train
    written = resample_table(engine, splits.ref, "adasyn", 42, 0.1)
    # tuned_model
    parts = split_frames(engine.read(splits.ref.name, splits.ref.version))
    train = engine.read(written.ref.name, written.ref.version)
    columns = feature_columns(parts.train, ["Time"])
    data_splits = prepare_splits(train, parts.valid, parts.test, columns)
    lineage = Lineage(
        transactions_uri=silver.ref.uri,
        transactions_version=silver.ref.version,
        splits_uri=splits.ref.uri,
        splits_version=splits.ref.version,
        train_uri=written.ref.uri,
        train_version=written.ref.version,
        resampling_method=written.result.method,
        dagster_run_id="plain-script",
        asset_key="tuned_model",
        git_commit=git_commit(),
        package_version=package_version(),
    )
    settings = SearchSettings(max_evals=max_evals, seed=42, parallelism=2, nthread=2)
    report = train_and_log(tracking, data_splits, lineage, settings)
    # registered_model_version
    model = report.model
    registered = register_version(
        tracking,
        REGISTERED_MODEL_NAME,
        model.model_uri,
        model.run_id,
        model.lineage.tags(),
        model.metrics,
        CHALLENGER_ALIAS,
    )
    # champion_model
    connect(tracking)
    table = engine.read(splits.ref.name, splits.ref.version)
    outcome = select_champion(
        tracking.client(),
        engine,
        registered.name,
        int(registered.version),
        test_rows(table, splits.ref.describe()),
        PromotionPolicy(),
        1000,
        0,
        "plain-script",
    )
    return PlainRun(registered.version, outcome.champion_after, len(report.outcomes), silver.rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("state", type=Path, help="fresh state folder")
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--target", default="Class")
    parser.add_argument("--positive", default="1")
    parser.add_argument("--max-evals", type=int, default=3)
    args = parser.parse_args()
    if not args.data.is_file():
        parser.error(f"--data {args.data}: no such file")
    if args.max_evals < 1:
        parser.error(f"--max-evals must be >= 1, got {args.max_evals}")
    plain_pipeline(args.state, args.data, args.target, args.positive, args.max_evals)


if __name__ == "__main__":
    main()
