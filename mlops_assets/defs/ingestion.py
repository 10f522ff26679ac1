"""Data assets (group ``data``): raw and silver Delta tables, splits, resampled train."""

from typing import Literal

import dagster as dg
from pydantic import Field

from mlops_assets.constants import DATA_GROUP, LABELED_FEEDBACK_TABLE
from mlops_assets.core import sources
from mlops_assets.core.ingestion import refine_transactions, write_raw
from mlops_assets.core.resampling import resample_table
from mlops_assets.core.splits import SplitFractions, split_table
from mlops_assets.core.tables import TableRef
from mlops_assets.core.validation import CheckThresholds, check_transactions
from mlops_assets.resources import DataSource, Lakehouse


class TransactionsConfig(dg.Config):
    """How raw rows become the silver table."""

    dedup: Literal["drop_exact", "keep"] = Field(
        default="drop_exact",
        description="drop_exact drops rows identical in every column; keep keeps them all.",
    )
    include_feedback: bool = Field(
        default=True,
        description="Append the latest labeled_feedback rows (production rows with true labels).",
    )


class TransactionChecksConfig(dg.Config):
    """Thresholds of the checks on ``transactions``."""

    min_positives: int = Field(default=30, description="Fewest positive rows accepted.")
    max_null_rate: float = Field(default=0.5, description="Highest null share in any column.")
    max_row_count_change: float = Field(
        default=0.5, description="Highest relative row-count change vs the previous version."
    )


class SplitsConfig(dg.Config):
    """Shares and seed of the split (a seeded hash of each row's features picks its split)."""

    train_fraction: float = Field(default=0.6, description="Share of rows for training.")
    valid_fraction: float = Field(default=0.2, description="Share of rows for validation.")
    test_fraction: float = Field(default=0.2, description="Share of rows for the final test.")
    seed: int = Field(default=42, description="Random seed of the split.")


class ResamplingConfig(dg.Config):
    """How the training split is over-sampled."""

    method: Literal["adasyn", "smote", "none"] = Field(
        default="adasyn",
        description="adasyn, smote or none; with categorical columns SMOTENC is used instead.",
    )
    sampling_ratio: float = Field(
        default=0.1, description="Positive-to-negative ratio after resampling (1.0: balanced)."
    )
    seed: int = Field(default=42, description="Random seed of the sampler.")


def _table_metadata(ref: TableRef) -> dict[str, object]:
    return {"delta_version": ref.version, "table_uri": dg.MetadataValue.path(ref.uri)}


@dg.asset(group_name=DATA_GROUP, kinds={"deltalake", "pandas"})
def raw_transactions(
    context: dg.AssetExecutionContext, lakehouse: Lakehouse, data_source: DataSource
) -> dg.Output[TableRef]:
    """The source's rows as they are (bronze Delta table), written as a new version."""
    loaded = sources.load_source(data_source.source())
    if loaded.fallback_reason:
        context.log.warning(f"{loaded.fallback_reason}; used the synthetic source instead")
    raw = write_raw(lakehouse.tables(), loaded)
    context.log.info(f"wrote {raw.ref.describe()} from {loaded.description}")
    return dg.Output(
        raw.ref,
        metadata={
            **_table_metadata(raw.ref),
            "source": loaded.description,
            "source_kind": loaded.kind,
            "fallback_reason": loaded.fallback_reason or "",
            "dagster/row_count": raw.rows,
            "columns": len(raw.columns),
            "column_names": dg.MetadataValue.json(list(raw.columns)),
            "load_seconds": loaded.seconds,
        },
    )


@dg.asset(
    group_name=DATA_GROUP,
    kinds={"deltalake", "pandas"},
    # Not an input: on a fresh state there is no labeled_feedback table, and main_job does
    # not materialize it; the latest version is read if it exists and recorded.
    deps=[LABELED_FEEDBACK_TABLE],
)
def transactions(
    context: dg.AssetExecutionContext,
    config: TransactionsConfig,
    lakehouse: Lakehouse,
    data_source: DataSource,
    raw_transactions: TableRef,
) -> dg.Output[TableRef]:
    """Raw rows plus labeled production feedback, typed and deduplicated, 0/1 ``label``."""
    source = data_source.source()
    silver = refine_transactions(
        lakehouse.tables(),
        raw_transactions,
        target=sources.expected_target(source),
        column_types=sources.expected_types(source),
        dedup=config.dedup,
        origin=sources.describe(source),
        feedback_table=LABELED_FEEDBACK_TABLE if config.include_feedback else None,
    )
    context.log.info(
        f"wrote {silver.ref.describe()} with {silver.feedback_rows} feedback rows; "
        f"dropped {silver.duplicates_dropped} rows"
    )
    return dg.Output(
        silver.ref,
        metadata={
            **_table_metadata(silver.ref),
            "dagster/row_count": silver.rows,
            "positive_rate": silver.positive_rate,
            "class_balance": dg.MetadataValue.json({"0": silver.negatives, "1": silver.positives}),
            "source": raw_transactions.describe(),
            "source_uri": raw_transactions.uri,
            "source_version": raw_transactions.version,
            "dedup_policy": silver.dedup,
            "feedback_rows": silver.feedback_rows,
            "feedback_version": silver.feedback_ref.version if silver.feedback_ref else -1,
            "feedback_missing_columns": dg.MetadataValue.json(
                list(silver.feedback_missing_columns)
            ),
            "duplicates_dropped": silver.duplicates_dropped,
            "renamed_columns": dg.MetadataValue.json(dict(silver.renamed)),
            "dagster/column_schema": dg.TableSchema(
                columns=[dg.TableColumn(name, kind) for name, kind in silver.schema.items()]
            ),
        },
    )


TRANSACTIONS_KEY = transactions.key
BLOCKING_CHECKS = ("columns_and_types", "two_classes", "min_positives", "null_rates")
WARNING_CHECKS = ("row_count_change",)


def _feedback_lacking(context: dg.AssetCheckExecutionContext, ref: TableRef) -> dict[str, int]:
    """Columns the appended feedback rows of ``ref`` lack (null by construction), with count."""
    event = context.instance.get_latest_materialization_event(TRANSACTIONS_KEY)
    found = event.asset_materialization if event else None
    meta = {key: value.value for key, value in found.metadata.items()} if found else {}
    if meta.get("delta_version") != ref.version:
        return {}
    return {
        name: int(meta.get("feedback_rows", 0)) for name in meta.get("feedback_missing_columns", [])
    }


@dg.multi_asset_check(
    specs=[
        dg.AssetCheckSpec(name, asset=transactions, blocking=name in BLOCKING_CHECKS)
        for name in (*BLOCKING_CHECKS, *WARNING_CHECKS)
    ],
)
def transactions_checks(
    context: dg.AssetCheckExecutionContext,
    config: TransactionChecksConfig,
    lakehouse: Lakehouse,
    data_source: DataSource,
    transactions: TableRef,
):
    """Columns and types, two classes, minimum positives, null rates, row-count change."""
    thresholds = CheckThresholds(
        config.min_positives, config.max_null_rate, config.max_row_count_change
    )
    expected = sources.expected_types(data_source.source())
    lacking = _feedback_lacking(context, transactions)
    tables = lakehouse.tables()
    for outcome in check_transactions(tables, transactions, expected, thresholds, lacking):
        yield dg.AssetCheckResult(
            asset_key=TRANSACTIONS_KEY,
            check_name=outcome.name,
            passed=outcome.passed,
            severity=dg.AssetCheckSeverity.WARN
            if outcome.name in WARNING_CHECKS
            else dg.AssetCheckSeverity.ERROR,
            description=outcome.description,
            metadata={
                "checked_version": transactions.version,
                "details": dg.MetadataValue.json(dict(outcome.metadata)),
            },
        )


@dg.asset(group_name=DATA_GROUP, kinds={"deltalake", "scikitlearn"})
def training_splits(
    config: SplitsConfig, lakehouse: Lakehouse, transactions: TableRef
) -> dg.Output[TableRef]:
    """Train/valid/test rows (row-stable: a row keeps its split), pinned to ``transactions``."""
    fractions = SplitFractions(config.train_fraction, config.valid_fraction, config.test_fraction)
    result = split_table(lakehouse.tables(), transactions, fractions, config.seed)
    return dg.Output(
        result.ref,
        metadata={
            **_table_metadata(result.ref),
            "source_table": transactions.name,
            "source_uri": transactions.uri,
            "source_version": transactions.version,
            "dagster/row_count": result.rows,
            **{f"{name}_rows": size for name, size in result.sizes.items()},
            **{f"{name}_positive_rate": rate for name, rate in result.positive_rates.items()},
            "seed": config.seed,
        },
    )


@dg.asset(group_name=DATA_GROUP, kinds={"deltalake", "pandas"})
def resampled_train(
    context: dg.AssetExecutionContext,
    config: ResamplingConfig,
    lakehouse: Lakehouse,
    training_splits: TableRef,
) -> dg.Output[TableRef]:
    """The training split over-sampled (ADASYN/SMOTE/SMOTENC/none); valid and test untouched."""
    written = resample_table(
        lakehouse.tables(), training_splits, config.method, config.seed, config.sampling_ratio
    )
    result = written.result
    if result.note:
        context.log.info(result.note)
    return dg.Output(
        written.ref,
        metadata={
            **_table_metadata(written.ref),
            "resampling_method": result.method,
            "resampling_requested": result.requested,
            "resampling_note": result.note,
            "sampling_ratio": config.sampling_ratio,
            "rows_before": result.rows_before,
            "rows_after": result.rows_after,
            "positives_before": result.positives_before,
            "positives_after": result.positives_after,
            "positive_rate_after": result.positives_after / result.rows_after,
            "class_balance": dg.MetadataValue.json(
                {"0": result.rows_after - result.positives_after, "1": result.positives_after}
            ),
            "seconds": result.seconds,
            "source_table": training_splits.name,
            "source_version": training_splits.version,
            "dagster/row_count": result.rows_after,
        },
    )
