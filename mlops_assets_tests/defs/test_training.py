"""The training assets over small real Delta tables and a real MLflow store."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from mlops_assets.constants import (
    CHALLENGER_ALIAS,
    DATA_GROUP,
    LABEL_COLUMN,
    RESAMPLED_TRAIN_TABLE,
    SPLIT_COLUMN,
    SPLITS_TABLE,
    TRAINING_GROUP,
)
from mlops_assets.core.paths import StatePaths
from mlops_assets.core.registry import RegisteredVersion
from mlops_assets.core.tables import TableRef
from mlops_assets.core.training import TunedModel
from mlops_assets.definitions import build_definitions, embedded_resources
from mlops_assets.defs.training import TuningConfig, registered_model_version, tuned_model
from mlops_assets.resources import Lakehouse, MlflowRegistry
from mlops_assets_tests.core.training_fixtures import bank_frame, split_three


def fake_upstream(
    parts: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame], upstream_metadata: dict[str, object]
) -> list:
    """Stand-ins for the data group's ``training_splits`` and ``resampled_train``."""
    train, valid, test = parts

    @dg.asset(name="training_splits", group_name=DATA_GROUP)
    def splits(lakehouse: Lakehouse) -> dg.Output[TableRef]:
        labelled = [
            part.assign(**{SPLIT_COLUMN: name})
            for name, part in (("train", train), ("valid", valid), ("test", test))
        ]
        ref = lakehouse.tables().write(SPLITS_TABLE, pd.concat(labelled), mode="overwrite")
        metadata = {"delta_version": ref.version, "source_table": "transactions"}
        metadata.update(source_uri="/lake/transactions", source_version=7)
        return dg.Output(ref, metadata=metadata)

    @dg.asset(name="resampled_train", group_name=DATA_GROUP)
    def resampled(lakehouse: Lakehouse, training_splits: TableRef) -> dg.Output[TableRef]:
        ref = lakehouse.tables().write(RESAMPLED_TRAIN_TABLE, train, mode="overwrite")
        return dg.Output(ref, metadata={"delta_version": ref.version, **upstream_metadata})

    return [splits, resampled]


def resources(state: StatePaths) -> dict:
    return {
        "lakehouse": Lakehouse(root=str(state.lakehouse)),
        "mlflow": MlflowRegistry(
            tracking_uri=state.mlflow_tracking_uri,
            artifact_root=str(state.mlflow_artifact_root),
            model_name="fraud_detector",
        ),
    }


def materialize(
    assets: list,
    state: StatePaths,
    config: TuningConfig,
    instance: dg.DagsterInstance | None = None,
):
    return dg.materialize(
        assets,
        resources=resources(state),
        run_config=dg.RunConfig({"tuned_model": config}),
        instance=instance or dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def test_asset_keys_groups_and_kinds_are_pinned(state: StatePaths) -> None:
    defs = build_definitions(embedded_resources(str(state.root)))
    graph = defs.resolve_asset_graph()
    for key in ("tuned_model", "registered_model_version"):
        node = graph.get(dg.AssetKey(key))
        assert node.group_name == TRAINING_GROUP
        assert node.description and "\n" not in node.description.strip()
        assert node.kinds
    assert graph.get(dg.AssetKey("tuned_model")).parent_keys == {
        dg.AssetKey("training_splits"),
        dg.AssetKey("resampled_train"),
    }
    assert graph.get(dg.AssetKey("registered_model_version")).parent_keys == {
        dg.AssetKey("tuned_model")
    }


def test_tune_and_register_with_lineage_metrics_and_alias(
    state: StatePaths, shared_data: Path
) -> None:
    parts = split_three(bank_frame(shared_data, 1500))
    upstream = fake_upstream(parts, {"resampling_method": "none"})
    instance = dg.DagsterInstance.ephemeral()
    result = materialize(
        [*upstream, tuned_model, registered_model_version],
        state,
        TuningConfig(max_evals=2, exclude_columns=["duration", "Time"]),
        instance,
    )
    assert result.success

    tuned: TunedModel = result.output_for_node("tuned_model")
    registered: RegisteredVersion = result.output_for_node("registered_model_version")
    assert tuned.trials_ok == 2 and 0 < tuned.threshold < 1
    assert registered.name == "fraud_detector" and registered.run_id == tuned.run_id

    # Lineage: Delta tables and versions, resampling, Dagster run and asset, code.
    lineage = tuned.lineage
    assert lineage.transactions_uri == "/lake/transactions" and lineage.transactions_version == 7
    assert lineage.splits_uri.endswith(SPLITS_TABLE) and lineage.splits_version == 0
    assert lineage.train_uri.endswith(RESAMPLED_TRAIN_TABLE)
    assert lineage.resampling_method == "none"
    assert lineage.dagster_run_id == result.run_id and lineage.asset_key == "tuned_model"
    assert len(lineage.git_commit) >= 40 and lineage.package_version == "0.1.0"

    client = MlflowRegistry(tracking_uri=state.mlflow_tracking_uri).target().client()
    version = client.get_model_version("fraud_detector", registered.version)
    assert version.tags["lineage.dagster_run_id"] == result.run_id
    assert version.tags["lineage.transactions_version"] == "7"
    alias = client.get_model_version_by_alias("fraud_detector", CHALLENGER_ALIAS)
    assert str(alias.version) == registered.version
    parent = client.get_run(tuned.run_id)
    assert parent.data.tags["lineage.asset_key"] == "tuned_model"

    # The materialization shows metrics, plots and the run link.
    metadata = result.asset_materializations_for_node("tuned_model")[0].metadata
    assert metadata["mlflow_run"].value.endswith(f"/runs/{tuned.run_id}")
    assert metadata["plots"].value.count("data:image/png;base64,") == 3
    assert "| kappa |" in metadata["metrics"].value
    assert metadata["test_kappa"].value == pytest.approx(tuned.metrics["test_kappa"])
    assert metadata["trials_ok"].value == 2
    registered_metadata = result.asset_materializations_for_node("registered_model_version")[0]
    assert registered_metadata.metadata["version"].value == registered.version
    assert registered_metadata.metadata["alias"].value == CHALLENGER_ALIAS

    # Each trial is logged to the Dagster run log as it finishes.
    messages = [
        entry.user_message
        for entry in instance.all_logs(result.run_id)
        if entry.user_message.startswith("trial ")
    ]
    assert [message.split(" kappa=")[0] for message in messages] == ["trial 1/2", "trial 2/2"]
    assert all(" best=" in message for message in messages)


def test_resampling_falls_back_to_config_when_upstream_does_not_say(
    state: StatePaths, shared_data: Path
) -> None:
    upstream = fake_upstream(split_three(bank_frame(shared_data, 900)), {})
    result = materialize(
        [*upstream, tuned_model],
        state,
        TuningConfig(max_evals=1, resampling_method="smote", exclude_columns=["duration"]),
    )
    assert result.success
    assert result.output_for_node("tuned_model").lineage.resampling_method == "smote"


def test_valid_split_without_positives_fails_the_asset_naming_it(
    state: StatePaths, shared_data: Path
) -> None:
    train, valid, test = split_three(bank_frame(shared_data, 900))
    upstream = fake_upstream((train, valid.assign(**{LABEL_COLUMN: 0}), test), {})
    result = materialize([*upstream, tuned_model], state, TuningConfig(max_evals=1))
    assert not result.success
    failure = next(event for event in result.all_events if event.is_step_failure)
    assert "split 'valid' has no positives" in str(failure.step_failure_data.error)


def test_budget_of_zero_fails_the_asset(state: StatePaths, shared_data: Path) -> None:
    upstream = fake_upstream(split_three(bank_frame(shared_data, 900)), {})
    result = materialize([*upstream, tuned_model], state, TuningConfig(max_evals=0))
    assert not result.success
    failure = next(event for event in result.all_events if event.is_step_failure)
    assert "max_evals must be at least 1, got 0" in str(failure.step_failure_data.error)


@pytest.mark.spark
@pytest.mark.slow
def test_spark_engine_runs_the_search_with_spark_trials(
    spark, state: StatePaths, shared_data: Path
) -> None:
    upstream = fake_upstream(split_three(bank_frame(shared_data, 900)), {})
    spark_resources = resources(state)
    spark_resources["lakehouse"] = Lakehouse(
        root=str(state.lakehouse), engine="spark", spark_master=spark.sparkContext.master
    )
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        [*upstream, tuned_model],
        resources=spark_resources,
        run_config=dg.RunConfig(
            {"tuned_model": TuningConfig(max_evals=2, parallelism=2, exclude_columns=["duration"])}
        ),
        instance=instance,
    )
    assert result.success
    tuned: TunedModel = result.output_for_node("tuned_model")
    assert tuned.trials_ok == 2
    client = MlflowRegistry(tracking_uri=state.mlflow_tracking_uri).target().client()
    children = client.search_runs(
        [tuned.experiment_id], f"tags.mlflow.parentRunId = '{tuned.run_id}'"
    )
    assert len(children) == 2 and {run.info.status for run in children} == {"FINISHED"}
    logs = [entry.user_message for entry in instance.all_logs(result.run_id)]
    assert sum(message.startswith("trial ") for message in logs) == 2


def test_on_the_real_data_assets_lineage_comes_from_their_metadata(state: StatePaths) -> None:
    from mlops_assets.defs import ingestion
    from mlops_assets.resources import DataSource

    data_assets = dg.load_assets_from_modules([ingestion])
    data_resources = {
        **resources(state),
        "data_source": DataSource(
            kind="synthetic", synthetic_rows=4000, synthetic_positive_rate=0.03
        ),
    }
    result = dg.materialize(
        [*data_assets, tuned_model, registered_model_version],
        resources=data_resources,
        run_config=dg.RunConfig({"tuned_model": TuningConfig(max_evals=2)}),
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert result.success
    lineage = result.output_for_node("tuned_model").lineage
    transactions: TableRef = result.output_for_node("transactions")
    splits: TableRef = result.output_for_node("training_splits")
    assert (lineage.transactions_uri, lineage.transactions_version) == (
        transactions.uri,
        transactions.version,
    )
    assert (lineage.splits_uri, lineage.splits_version) == (splits.uri, splits.version)
    assert lineage.resampling_method == "adasyn"  # the data layer's default, from its metadata
    registered: RegisteredVersion = result.output_for_node("registered_model_version")
    assert registered.tags["lineage.resampling_method"] == "adasyn"
