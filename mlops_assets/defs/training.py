"""Training assets (group ``training``): the tuned model and its registered version."""

import base64
from typing import Literal

import dagster as dg
from pydantic import Field

from mlops_assets.constants import (
    CHALLENGER_ALIAS,
    RESAMPLED_TRAIN_TABLE,
    SPLITS_TABLE,
    TRAINING_GROUP,
)
from mlops_assets.core.evaluation import metrics_table
from mlops_assets.core.lineage import Lineage, git_commit, package_version
from mlops_assets.core.registry import RegisteredVersion, register_version, run_url
from mlops_assets.core.splits import feature_columns, split_frames
from mlops_assets.core.tables import TableRef
from mlops_assets.core.training import SearchSettings, TrainingReport, TunedModel, train_and_log
from mlops_assets.core.trials import TrialOutcome
from mlops_assets.core.tuning import prepare_splits
from mlops_assets.resources import Lakehouse, MlflowRegistry


class TuningConfig(dg.Config):
    """Budget and knobs of the hyperparameter search."""

    max_evals: int = Field(default=25, description="Trial budget of the TPE search (>= 1).")
    seed: int = Field(default=42, description="Seed of the TPE sampler and the classifier.")
    timeout_s: float | None = Field(
        default=None, description="Wall-clock limit of the search in seconds; unset: none."
    )
    patience: int = Field(
        default=0, description="Stop after this many trials without improvement; 0: never."
    )
    parallelism: int = Field(
        default=2, description="Concurrent trials with SparkTrials (Spark engine only)."
    )
    nthread: int = Field(default=2, description="Threads per model fit.")
    early_stopping_rounds: int = Field(
        default=SearchSettings.early_stopping_rounds,
        description="Stop a trial's boosting after this many rounds without a better "
        "validation score (n_estimators is then an upper bound); 0: fit every tree.",
    )
    refit_rows: Literal["train", "train+valid"] = Field(
        default=SearchSettings.refit_rows,
        description="Rows the final model is refitted on; its threshold always comes from "
        "validation scores of the train-only fit.",
    )
    exclude_columns: list[str] = Field(
        default=["Time"], description="Columns never used as features (absent ones ignored)."
    )
    resampling_method: str = Field(
        default="unknown",
        description="Used only when resampled_train's materialization does not record it; "
        "'none' also searches scale_pos_weight.",
    )


def _metadata_of(context: dg.AssetExecutionContext, table: str, ref: TableRef) -> dict:
    """Metadata of the upstream materialization that wrote ``ref`` (else the latest)."""
    records = context.instance.fetch_materializations(dg.AssetKey(table), limit=20).records
    found = [
        {key: value.value for key, value in record.asset_materialization.metadata.items()}
        for record in records
        if record.asset_materialization is not None
    ]
    matching = [meta for meta in found if meta.get("delta_version") == ref.version]
    return (matching or found or [{}])[0]


def _lineage(
    context: dg.AssetExecutionContext, config: TuningConfig, splits: TableRef, train: TableRef
) -> Lineage:
    splits_meta = _metadata_of(context, SPLITS_TABLE, splits)
    train_meta = _metadata_of(context, RESAMPLED_TRAIN_TABLE, train)
    return Lineage(
        transactions_uri=str(splits_meta.get("source_uri", "unknown")),
        transactions_version=int(splits_meta.get("source_version", -1)),
        splits_uri=splits.uri,
        splits_version=splits.version,
        train_uri=train.uri,
        train_version=train.version,
        resampling_method=str(train_meta.get("resampling_method") or config.resampling_method),
        dagster_run_id=context.run_id,
        asset_key=context.asset_key.to_user_string(),
        git_commit=git_commit(),
        package_version=package_version(),
    )


def _trial_logger(context: dg.AssetExecutionContext):
    def log(outcome: TrialOutcome, best: TrialOutcome | None, budget: int) -> None:
        best_text = f"{best.kappa:.4f}" if best else "none"
        if outcome.ok:
            context.log.info(
                f"trial {outcome.number}/{budget} kappa={outcome.kappa:.4f} best={best_text} "
                f"({outcome.metrics.get('trial_seconds', 0.0):.1f} s)"
            )
        else:
            context.log.warning(
                f"trial {outcome.number}/{budget} failed: {outcome.error} best={best_text}"
            )

    return log


def _run_over(context: dg.AssetExecutionContext):
    """Whether a Dagster run of this instance is finished (None: not in this instance)."""

    def over(run_id: str) -> bool | None:
        run = context.instance.get_run_by_id(run_id)
        return None if run is None else run.is_finished

    return over


def _report_metadata(report: TrainingReport, link: str) -> dict[str, object]:
    model = report.model
    images = "\n\n".join(
        f"**{name}**\n\n![{name}](data:image/png;base64,{base64.b64encode(png).decode()})"
        for name, png in report.images.items()
    )
    return {
        "mlflow_run": dg.MetadataValue.url(link),
        "run_id": model.run_id,
        "model_uri": model.model_uri,
        "threshold": model.threshold,
        **{key: value for key, value in model.metrics.items() if key.startswith("test_")},
        "metrics": dg.MetadataValue.md(metrics_table({"valid": report.valid, "test": report.test})),
        "plots": dg.MetadataValue.md(images),
        "best_params": dg.MetadataValue.json(model.best_params),
        "trials_ok": model.trials_ok,
        "trials_failed": model.trials_failed,
        "search_seconds": round(report.search_seconds, 2),
        "lineage": dg.MetadataValue.json(model.lineage.tags()),
        "orphans_reaped": len(report.reaped.reaped) if report.reaped else 0,
    }


@dg.asset(group_name=TRAINING_GROUP, kinds={"xgboost", "mlflow", "scikitlearn"})
def tuned_model(
    context: dg.AssetExecutionContext,
    config: TuningConfig,
    lakehouse: Lakehouse,
    mlflow: MlflowRegistry,
    training_splits: TableRef,
    resampled_train: TableRef,
) -> dg.Output[TunedModel]:
    """Hyperopt-tuned pipeline (kappa on valid), logged on an MLflow parent run, tested once."""
    tables = lakehouse.tables()
    splits = split_frames(tables.read(training_splits.name, training_splits.version))
    train = tables.read(resampled_train.name, resampled_train.version)
    columns = feature_columns(splits.train, config.exclude_columns)
    data = prepare_splits(train, splits.valid, splits.test, columns)
    settings = SearchSettings(
        max_evals=config.max_evals,
        seed=config.seed,
        timeout_s=config.timeout_s,
        patience=config.patience,
        parallelism=config.parallelism,
        nthread=config.nthread,
        early_stopping_rounds=config.early_stopping_rounds,
        refit_rows=config.refit_rows,
    )
    report = train_and_log(
        mlflow.target(),
        data,
        _lineage(context, config, training_splits, resampled_train),
        settings,
        on_trial=_trial_logger(context),
        spark_session=getattr(tables, "spark", None),  # set by the Spark engine only
        is_run_over=_run_over(context),
    )
    if report.reaped and report.reaped.reaped:
        context.log.warning(f"orphaned MLflow runs of dead owners: {report.reaped.describe()}")
    link = run_url(mlflow.target(), report.model.experiment_id, report.model.run_id, mlflow.ui_url)
    return dg.Output(report.model, metadata=_report_metadata(report, link))


@dg.asset(group_name=TRAINING_GROUP, kinds={"mlflow"})
def registered_model_version(
    mlflow: MlflowRegistry, tuned_model: TunedModel
) -> dg.Output[RegisteredVersion]:
    """The tuned model as a new registry version with lineage tags and the challenger alias."""
    registered = register_version(
        mlflow.target(),
        mlflow.model_name,
        tuned_model.model_uri,
        tuned_model.run_id,
        tuned_model.lineage.tags(),
        tuned_model.metrics,
        CHALLENGER_ALIAS,
    )
    link = run_url(mlflow.target(), tuned_model.experiment_id, tuned_model.run_id, mlflow.ui_url)
    return dg.Output(
        registered,
        metadata={
            "name": registered.name,
            "version": registered.version,
            "alias": registered.alias,
            "run_id": registered.run_id,
            "model_uri": registered.model_uri,
            "mlflow_run": dg.MetadataValue.url(link),
            **{key: value for key, value in registered.metrics.items() if key.startswith("test_")},
        },
    )
