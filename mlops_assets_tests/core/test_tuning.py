"""The search: nested MLflow runs, the logged pyfunc model, swappable classifiers, failures."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from hyperopt import hp
from mlflow.entities import ViewType
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression

from mlops_assets.core.registry import TrackingUnavailableError
from mlops_assets.core.tracking import TrackingTarget
from mlops_assets.core.training import SearchFailedError, SearchSettings, train_and_log
from mlops_assets.core.tuning import (
    SCALE_POS_WEIGHT_SPACE,
    XGBOOST_SPACE,
    TrainingSplits,
    prepare_splits,
    xgboost_space,
)
from mlops_assets_tests.core.training_fixtures import (
    TINY_SPACE,
    bank_frame,
    bank_splits,
    lineage,
    split_three,
    tracking_target,
)

CHILD_METRICS = {
    "valid_kappa",
    "valid_f1",
    "valid_roc_auc",
    "valid_pr_auc",
    "valid_precision",
    "valid_recall",
}


@pytest.fixture(scope="module")
def splits(shared_data: Path) -> TrainingSplits:
    return bank_splits(shared_data, rows=1500)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SQLite store per module (creating one costs seconds); one experiment per test."""
    return tmp_path_factory.mktemp("mlflow")


@pytest.fixture()
def target(store: Path, request: pytest.FixtureRequest) -> TrackingTarget:
    return tracking_target(store, experiment=request.node.name)


def all_runs(target: TrackingTarget) -> list:
    client = target.client()
    experiment = client.get_experiment_by_name(target.experiment_name)
    if experiment is None:
        return []
    return client.search_runs([experiment.experiment_id], run_view_type=ViewType.ALL)


def test_parent_run_with_one_child_per_trial_and_a_loadable_model(
    splits: TrainingSplits, target: TrackingTarget
) -> None:
    lines: list[str] = []

    def on_trial(outcome, best, budget) -> None:
        lines.append(f"trial {outcome.number}/{budget} kappa={outcome.kappa:.4f}")
        assert best is not None and best.kappa >= outcome.kappa

    report = train_and_log(
        target, splits, lineage(), SearchSettings(max_evals=3), space=TINY_SPACE, on_trial=on_trial
    )
    runs = all_runs(target)
    parents = [run for run in runs if "mlflow.parentRunId" not in run.data.tags]
    children = [run for run in runs if "mlflow.parentRunId" in run.data.tags]
    assert len(parents) == 1 and len(children) == 3
    parent = parents[0]
    assert parent.info.run_id == report.model.run_id and parent.info.status == "FINISHED"
    assert {child.data.tags["mlflow.parentRunId"] for child in children} == {parent.info.run_id}
    assert sorted(child.info.run_name for child in children) == [
        "trial-001",
        "trial-002",
        "trial-003",
    ]
    for child in children:
        assert child.info.status == "FINISHED"
        assert CHILD_METRICS <= set(child.data.metrics)
        assert {"max_depth", "n_estimators", "learning_rate"} <= set(child.data.params)
    assert lines == [f"trial {n}/3 kappa={o.kappa:.4f}" for n, o in enumerate(report.outcomes, 1)]

    # Lineage tags, test metrics, plots and the best parameters live on the parent.
    assert parent.data.tags["lineage.transactions_version"] == "3"
    assert parent.data.tags["lineage.dagster_run_id"] == "run-123"
    assert parent.data.tags["lineage.git_commit"] == "abc123"
    assert {"test_kappa", "test_f1", "test_roc_auc", "test_pr_auc", "test_tp"} <= set(
        parent.data.metrics
    )
    assert parent.data.metrics["test_kappa"] == pytest.approx(report.test.kappa)
    best = max(children, key=lambda child: child.data.metrics["valid_kappa"])
    assert parent.data.params["max_depth"] == best.data.params["max_depth"]
    assert report.model.metrics["valid_kappa"] == pytest.approx(best.data.metrics["valid_kappa"])
    artifacts = {item.path for item in target.client().list_artifacts(parent.info.run_id, "plots")}
    assert artifacts == {"plots/roc_curve.png", "plots/pr_curve.png", "plots/confusion_matrix.png"}

    # The logged pyfunc model scores raw rows (nulls, unseen category) with the threshold.
    model = mlflow.pyfunc.load_model(report.model.model_uri)
    raw = splits.test.features.head(5).copy()
    raw["job"] = ["astronaut", None, np.nan, "admin.", "services"]
    raw["age"] = np.nan
    prediction = model.predict(raw)
    assert list(prediction.columns) == ["label", "probability"]
    assert prediction["probability"].between(0, 1).all()
    expected = (prediction["probability"] >= report.model.threshold).astype(int)
    assert prediction["label"].tolist() == expected.tolist()
    assert model.metadata.signature is not None
    requirements = Path(mlflow.pyfunc.get_model_dependencies(report.model.model_uri)).read_text()
    assert "xgboost==" in requirements and "skops==" in requirements
    assert "pytest" not in requirements


def test_scale_pos_weight_is_searched_only_without_resampling() -> None:
    assert "scale_pos_weight" in xgboost_space("none")
    assert xgboost_space("adasyn").keys() == XGBOOST_SPACE.keys()
    assert not set(SCALE_POS_WEIGHT_SPACE) & set(XGBOOST_SPACE)


def test_any_sklearn_classifier_goes_through_the_same_training_code(
    splits: TrainingSplits, target: TrackingTarget
) -> None:
    def logistic(params):
        return LogisticRegression(C=params["C"], solver="liblinear", random_state=params["seed"])

    space = {"C": hp.loguniform("C", np.log(0.01), np.log(10.0))}
    report = train_and_log(
        target,
        splits,
        lineage(),
        SearchSettings(max_evals=2),
        factory=logistic,
        space=space,
    )
    assert set(report.model.best_params) == {"C"}
    assert report.model.trials_ok == 2 and 0.5 <= report.test.roc_auc <= 1.0


def test_every_trial_failing_fails_the_search_and_ends_the_runs(
    splits: TrainingSplits, target: TrackingTarget
) -> None:
    def broken(params):
        raise RuntimeError("no such estimator option")

    with pytest.raises(SearchFailedError, match="all 2 trials .* failed.*no such estimator"):
        train_and_log(
            target, splits, lineage(), SearchSettings(max_evals=2), broken, space=TINY_SPACE
        )
    statuses = sorted(run.info.status for run in all_runs(target))
    assert statuses == ["FAILED", "FAILED", "FAILED"]  # the parent and both children
    errors = [run.data.tags.get("error", "") for run in all_runs(target)]
    assert sum("no such estimator option" in error for error in errors) == 2


def test_budget_of_zero_is_refused_before_any_run(
    splits: TrainingSplits, target: TrackingTarget
) -> None:
    with pytest.raises(ValueError, match="max_evals must be at least 1, got 0"):
        train_and_log(target, splits, lineage(), SearchSettings(max_evals=0))
    assert all_runs(target) == []


@pytest.mark.parametrize("empty_split", ["train", "valid", "test"])
def test_a_split_without_positives_is_named(shared_data: Path, empty_split: str) -> None:
    frames = split_three(bank_frame(shared_data, 600))
    parts = dict(zip(("train", "valid", "test"), frames, strict=True))
    parts[empty_split] = parts[empty_split].assign(label=0)
    with pytest.raises(ValueError, match=f"split '{empty_split}' has no positives"):
        prepare_splits(parts["train"], parts["valid"], parts["test"], ["age", "job"])


def test_a_missing_feature_column_is_named(shared_data: Path) -> None:
    train, valid, test = split_three(bank_frame(shared_data, 600))
    with pytest.raises(ValueError, match=r"split 'test' is missing column\(s\) \['job'\]"):
        prepare_splits(train, valid, test.drop(columns=["job"]), ["age", "job"])


def test_unreachable_tracking_server_fails_fast(splits: TrainingSplits) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    target = TrackingTarget(tracking_uri=f"http://127.0.0.1:{port}", experiment_name="x")
    started = time.perf_counter()
    with pytest.raises(TrackingUnavailableError, match=f"127.0.0.1:{port} is unreachable"):
        train_and_log(target, splits, lineage(), SearchSettings(max_evals=1), space=TINY_SPACE)
    assert time.perf_counter() - started < 10


def test_unusable_sqlite_store_is_reported(splits: TrainingSplits, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    target = TrackingTarget(tracking_uri=f"sqlite:///{blocker}/m.db", experiment_name="x")
    with pytest.raises(TrackingUnavailableError, match="is unreachable"):
        train_and_log(target, splits, lineage(), SearchSettings(max_evals=1), space=TINY_SPACE)


def test_interrupted_search_leaves_no_run_running(
    splits: TrainingSplits, target: TrackingTarget
) -> None:
    def interrupt(outcome, best, budget) -> None:
        if outcome.number == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_and_log(
            target,
            splits,
            lineage(),
            SearchSettings(max_evals=5),
            space=TINY_SPACE,
            on_trial=interrupt,
        )
    runs = all_runs(target)
    assert "RUNNING" not in {run.info.status for run in runs}
    parent = next(run for run in runs if "mlflow.parentRunId" not in run.data.tags)
    assert parent.info.status == "KILLED" and len(runs) == 3
    assert mlflow.active_run() is None


def test_a_failure_while_recording_a_trial_stops_the_search_and_fails_the_run(
    splits: TrainingSplits, target: TrackingTarget
) -> None:
    def lose_the_store(outcome, best, budget) -> None:
        if outcome.number == 2:
            raise ConnectionError("tracking store went away")

    with pytest.raises(ConnectionError, match="tracking store went away"):
        train_and_log(
            target,
            splits,
            lineage(),
            SearchSettings(max_evals=6),
            space=TINY_SPACE,
            on_trial=lose_the_store,
        )
    runs = all_runs(target)
    parent = next(run for run in runs if "mlflow.parentRunId" not in run.data.tags)
    assert parent.info.status == "FAILED" and len(runs) == 3  # stopped after trial 2
    assert "RUNNING" not in {run.info.status for run in runs}


def test_patience_stops_a_search_that_stopped_improving(
    splits: TrainingSplits, target: TrackingTarget
) -> None:
    def constant(params):
        return DummyClassifier(strategy="prior")

    report = train_and_log(
        target,
        splits,
        lineage(),
        SearchSettings(max_evals=10, patience=2),
        factory=constant,
        space={"unused": hp.uniform("unused", 0, 1)},
    )
    assert len(report.outcomes) == 3  # the first is best; two more without improvement


def test_timeout_bounds_the_search(splits: TrainingSplits, target: TrackingTarget) -> None:
    def slow(params):
        time.sleep(0.4)
        return DummyClassifier(strategy="prior")

    report = train_and_log(
        target,
        splits,
        lineage(),
        SearchSettings(max_evals=50, timeout_s=1.0),
        factory=slow,
        space={"unused": hp.uniform("unused", 0, 1)},
    )
    assert 1 <= len(report.outcomes) < 10


@pytest.mark.spark
def test_spark_trials_run_the_same_search(
    spark, splits: TrainingSplits, target: TrackingTarget
) -> None:
    numbers: list[int] = []
    report = train_and_log(
        target,
        splits,
        lineage(),
        SearchSettings(max_evals=3, parallelism=2),
        space=TINY_SPACE,
        on_trial=lambda outcome, best, budget: numbers.append(outcome.number),
        spark_session=spark,
    )
    runs = all_runs(target)
    children = [run for run in runs if "mlflow.parentRunId" in run.data.tags]
    assert len(runs) == 4 and len(children) == 3
    assert {run.info.status for run in runs} == {"FINISHED"}
    assert all(CHILD_METRICS <= set(child.data.metrics) for child in children)
    assert sorted(numbers) == [1, 2, 3] and report.model.trials_ok == 3
    assert isinstance(pd.DataFrame(report.model.metrics, index=[0]), pd.DataFrame)
