"""Monitoring assets over real Delta tables and a real MLflow registry with a champion."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score

from mlops_assets.constants import (
    CHAMPION_ALIAS,
    DATA_GROUP,
    DEPLOYMENT_GROUP,
    FEEDBACK_TABLE,
    INFERENCE_LOG_TABLE,
    LABELED_FEEDBACK_TABLE,
    MONITORING_GROUP,
    SPLITS_TABLE,
    TRAINING_GROUP,
)
from mlops_assets.core import synthetic
from mlops_assets.core.drift_report import DriftReport
from mlops_assets.core.paths import StatePaths
from mlops_assets.core.tables import DeltaRsEngine
from mlops_assets.definitions import build_definitions, embedded_resources
from mlops_assets.defs import monitoring
from mlops_assets.defs.ingestion import raw_transactions, transactions
from mlops_assets.defs.monitoring import (
    DriftReportConfig,
    ModelPerformanceConfig,
    drift_report,
    drift_report_checks,
    labeled_feedback,
    model_performance,
    performance_drop,
)
from mlops_assets.resources import DataSource, Lakehouse, MlflowRegistry
from mlops_assets_tests.core.monitoring_fixtures import feedback_rows, served_rows, splits_rows
from mlops_assets_tests.core.promotion_fixtures import registry_uri
from mlops_assets_tests.serving.registry import TestRegistry, feature_frame, xgb_bundle

TEST_KAPPA = 0.9


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> tuple[TestRegistry, int]:
    """One real registered xgboost version (features V1, V2, V3, Amount, count)."""
    registry = TestRegistry.create(tmp_path_factory.mktemp("monitoring-registry"))
    with registry_uri(registry.tracking_uri):  # not one an earlier test left process-wide
        return registry, registry.register(xgb_bundle(seed=0))


def crown(registry: TestRegistry, version: int, engine: DeltaRsEngine) -> None:
    """Write the champion's training splits and point its lineage and alias at them."""
    ref = engine.write(SPLITS_TABLE, splits_rows(1500, seed=0), mode="overwrite")
    client = registry.client()
    tags = {
        "lineage.splits_uri": ref.uri,
        "lineage.splits_version": str(ref.version),
        "metric.test_kappa": str(TEST_KAPPA),
        "metric.test_f1": "0.92",
        "metric.test_pr_auc": "0.95",
    }
    for key, value in tags.items():
        client.set_model_version_tag(registry.model_name, str(version), key, value)
    registry.set_alias(CHAMPION_ALIAS, version)


def resources(state: StatePaths, registry: TestRegistry, tmp_path: Path) -> dict:
    return {
        "lakehouse": Lakehouse(root=str(state.lakehouse)),
        "mlflow": MlflowRegistry(
            tracking_uri=registry.tracking_uri,
            artifact_root=str(tmp_path / "artifacts"),
            experiment_name=f"monitoring-{tmp_path.name}",
        ),
    }


def run_drift(instance, state, registry, tmp_path, **config) -> dg.ExecuteInProcessResult:
    settings = {"min_rows": 300, "report_dir": str(tmp_path / "reports"), **config}
    result = dg.materialize(
        [drift_report, drift_report_checks],
        resources=resources(state, registry, tmp_path),
        run_config=dg.RunConfig({"drift_report": DriftReportConfig(**settings)}),
        instance=instance,
    )
    assert result.success
    return result


def metadata_of(result: dg.ExecuteInProcessResult, key: str) -> dict:
    event = result.asset_materializations_for_node(key)[-1]
    return {name: value.value for name, value in event.metadata.items()}


def checks_of(result: dg.ExecuteInProcessResult) -> dict[str, tuple[bool, str | None]]:
    return {
        e.check_name: (e.passed, e.severity.value if not e.passed else None)
        for e in result.get_asset_check_evaluations()
    }


def shifted(rows: int, seed: int, column: str, by: float) -> pd.DataFrame:
    features, _ = feature_frame(rows, seed)
    features[column] = features[column] + by * features[column].std()
    return features


def test_keys_groups_kinds_checks_and_jobs_are_pinned(state: StatePaths) -> None:
    assets = dg.load_assets_from_modules([monitoring])
    keys = {key.to_user_string() for a in assets for key in a.keys}
    assert keys == {"drift_report", "model_performance", "labeled_feedback"}
    for asset in assets:
        spec = next(iter(asset.specs))
        assert spec.group_name == MONITORING_GROUP and spec.kinds
        assert spec.description and "\n" not in spec.description.strip()
    checks = dg.load_asset_checks_from_modules([monitoring])
    found = {(k.asset_key.to_user_string(), k.name) for c in checks for k in c.check_keys}
    assert found == {
        ("drift_report", "drift_share"),
        ("drift_report", "domain_classifier_auc"),
        ("model_performance", "performance_drop"),
    }
    assert not any(spec.blocking for c in checks for spec in c.check_specs)

    defs = build_definitions(embedded_resources(str(state.root)))
    graph = defs.resolve_asset_graph()
    monitor = defs.resolve_job_def("monitoring_job").asset_layer.selected_asset_keys
    assert {k.to_user_string() for k in monitor} == {"drift_report", "model_performance"}
    retrain = defs.resolve_job_def("retraining_job").asset_layer.selected_asset_keys
    groups = (DATA_GROUP, TRAINING_GROUP, DEPLOYMENT_GROUP)
    loop = {k for k in graph.get_all_asset_keys() if graph.get(k).group_name in groups}
    assert retrain == (loop - {dg.AssetKey("raw_transactions")}) | {labeled_feedback.key}
    assert dg.AssetKey("labeled_feedback") in graph.get(dg.AssetKey("transactions")).parent_keys


def test_drift_report_without_and_with_drift(
    state: StatePaths, registry: tuple[TestRegistry, int], tmp_path: Path
) -> None:
    reg, version = registry
    engine = DeltaRsEngine(str(state.lakehouse))
    crown(reg, version, engine)
    instance = dg.DagsterInstance.ephemeral()
    first = engine.write(INFERENCE_LOG_TABLE, served_rows(feature_frame(600, 11)[0], "calm"))

    calm = run_drift(instance, state, reg, tmp_path)
    meta = metadata_of(calm, "drift_report")
    assert meta["enough_data"] and meta["drifted_columns"] == [] and meta["drift_share"] == 0.0
    assert (meta["inference_log_from_version"], meta["inference_log_version"]) == (-1, 0)
    assert meta["champion_version"] == version and meta["reference_version"] == 0
    assert meta["reference_rows"] == 900 and meta["current_rows"] == 600
    assert meta["domain_auc"] < 0.7
    assert "| V2 | K-S p_value |" in meta["columns"]
    assert Path(meta["html_report"]).is_file()
    assert checks_of(calm) == {"drift_share": (True, None), "domain_classifier_auc": (True, None)}
    report: DriftReport = calm.output_for_node("drift_report")
    run = reg.client().get_run(report.mlflow_run_id)
    assert run.data.tags["model_version"] == str(version)
    assert run.data.tags["inference_log_version"] == "0"
    assert run.data.metrics["drift_share"] == 0.0 and "domain_auc" in run.data.metrics
    artifacts = {a.path for a in reg.client().list_artifacts(run.info.run_id, "drift")}
    assert artifacts == {"drift/columns.md", f"drift/{Path(meta['html_report']).name}"}

    # New traffic with V2 shifted by two standard deviations: only the new rows are compared.
    engine.write(INFERENCE_LOG_TABLE, served_rows(shifted(600, 12, "V2", 2.0), "shifted"))
    drifted = run_drift(instance, state, reg, tmp_path)
    meta = metadata_of(drifted, "drift_report")
    assert (meta["inference_log_from_version"], meta["inference_log_version"]) == (0, 1)
    assert meta["current_rows"] == 600 and meta["drifted_columns"] == ["V2"]
    assert meta["drift_share"] == pytest.approx(0.2)
    assert meta["domain_auc"] > 0.9
    assert next(iter(meta["domain_top_features"])) == "V2"
    assert "| V2 | K-S p_value |" in meta["columns"]
    assert checks_of(drifted) == {
        "drift_share": (True, None),
        "domain_classifier_auc": (False, "ERROR"),
    }
    assert first.version == 0


def test_not_enough_data_keeps_the_rows_for_the_next_report(
    state: StatePaths, registry: tuple[TestRegistry, int], tmp_path: Path
) -> None:
    reg, version = registry
    engine = DeltaRsEngine(str(state.lakehouse))
    crown(reg, version, engine)
    instance = dg.DagsterInstance.ephemeral()
    no_log = metadata_of(run_drift(instance, state, reg, tmp_path), "drift_report")
    assert not no_log["enough_data"] and no_log["inference_log_version"] == -1
    engine.write(INFERENCE_LOG_TABLE, served_rows(shifted(200, 3, "V1", 3.0), "a"))
    few = run_drift(instance, state, reg, tmp_path)
    meta = metadata_of(few, "drift_report")
    assert not meta["enough_data"] and meta["current_rows"] == 200
    assert "not enough data: 200 current rows, need at least 300" in meta["reason"]
    assert "html_report" not in meta and "mlflow_run" not in meta
    assert all(passed for passed, _ in checks_of(few).values())
    engine.write(INFERENCE_LOG_TABLE, served_rows(shifted(200, 4, "V1", 3.0), "b"))
    enough = metadata_of(run_drift(instance, state, reg, tmp_path), "drift_report")
    assert enough["enough_data"] and enough["current_rows"] == 400  # both batches
    assert enough["inference_log_from_version"] == -1 and "V1" in enough["drifted_columns"]


def test_drift_report_without_champion_names_the_problem(state: StatePaths, tmp_path: Path) -> None:
    empty = TestRegistry.create(tmp_path / "empty-registry")
    result = dg.materialize(
        [drift_report],
        resources=resources(state, empty, tmp_path),
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    assert not result.success
    failure = result.get_step_failure_events()[0].event_specific_data.error.cause.message
    assert "has no 'champion' alias" in failure and "nothing to monitor" in failure


def test_model_performance_with_feedback(
    state: StatePaths, registry: tuple[TestRegistry, int], tmp_path: Path
) -> None:
    reg, version = registry
    engine = DeltaRsEngine(str(state.lakehouse))
    crown(reg, version, engine)
    features, labels = feature_frame(400, seed=21)
    rng = np.random.default_rng(0)
    noisy = np.where(rng.random(400) < 0.15, 1 - labels, labels)  # 15 % wrong answers
    served = served_rows(features, "p", version=version, probabilities=noisy * 0.8 + 0.1)
    engine.write(INFERENCE_LOG_TABLE, served)
    engine.write(FEEDBACK_TABLE, feedback_rows(list(served["request_id"][:300]), labels[:300]))
    result = dg.materialize(
        [model_performance, performance_drop],
        resources=resources(state, reg, tmp_path),
        run_config=dg.RunConfig(
            {"model_performance": ModelPerformanceConfig(min_labeled_rows=100)}
        ),
        instance=dg.DagsterInstance.ephemeral(),
    )
    meta = metadata_of(result, "model_performance")
    kappa = cohen_kappa_score(labels[:300], (noisy[:300] * 0.8 + 0.1 >= 0.5).astype(int))
    assert meta["enough_data"] and meta["labeled_rows"] == 300
    assert meta["online_kappa"] == pytest.approx(kappa) and meta["test_kappa"] == TEST_KAPPA
    assert meta["performance_drop"] == pytest.approx(TEST_KAPPA - kappa)
    assert "| kappa |" in meta["metrics"]
    assert TEST_KAPPA - kappa > 0.25  # 15 % wrong answers: well below the test kappa
    assert checks_of(result) == {"performance_drop": (False, "ERROR")}

    too_few = dg.materialize(
        [model_performance, performance_drop],
        resources=resources(state, reg, tmp_path),
        run_config=dg.RunConfig(
            {"model_performance": ModelPerformanceConfig(min_labeled_rows=500)}
        ),
        instance=dg.DagsterInstance.ephemeral(),
    )
    meta = metadata_of(too_few, "model_performance")
    assert not meta["enough_data"] and meta["performance_drop"] == 0.0
    assert meta["reason"].startswith("not enough labeled rows: 300 rows")
    assert checks_of(too_few) == {"performance_drop": (True, None)}


def test_labeled_feedback_flows_into_transactions(state: StatePaths) -> None:
    engine = DeltaRsEngine(str(state.lakehouse))
    source = DataSource(
        kind="synthetic", synthetic_rows=3000, synthetic_seed=1, synthetic_positive_rate=0.03
    )
    setup = {"lakehouse": Lakehouse(root=str(state.lakehouse)), "data_source": source}
    instance = dg.DagsterInstance.ephemeral()
    fresh = dg.materialize([raw_transactions, transactions], resources=setup, instance=instance)
    assert metadata_of(fresh, "transactions")["feedback_rows"] == 0
    raw_rows = metadata_of(fresh, "transactions")["dagster/row_count"]

    production = synthetic.generate(200, seed=77, positive_rate=0.05)
    features = production.drop(columns=["Time", "Class"])  # what the model (and server) take
    served = served_rows(features, "prod")
    engine.write(INFERENCE_LOG_TABLE, served)
    labeled_ids = list(served["request_id"][:120])
    engine.write(FEEDBACK_TABLE, feedback_rows(labeled_ids, production["Class"][:120]))
    result = dg.materialize(
        [raw_transactions, labeled_feedback, transactions],
        resources=setup,
        instance=instance,
        selection=[labeled_feedback, transactions],  # the retraining path: no re-ingest
    )
    feedback_meta = metadata_of(result, "labeled_feedback")
    assert feedback_meta["appended_rows"] == 120 and feedback_meta["dagster/row_count"] == 120
    meta = metadata_of(result, "transactions")
    assert meta["feedback_rows"] == 120 and meta["feedback_version"] == 0
    assert meta["feedback_missing_columns"] == ["Time"]
    assert meta["dagster/row_count"] == raw_rows + 120
    silver = engine.read("transactions", meta["delta_version"])
    assert silver["Time"].isna().sum() == 120 and silver["label"].dtype == "int64"
    assert engine.read(LABELED_FEEDBACK_TABLE)["label"].sum() == production["Class"][:120].sum()
