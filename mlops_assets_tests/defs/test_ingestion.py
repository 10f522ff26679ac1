from __future__ import annotations

import re
import socket
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from mlops_assets.constants import DATA_GROUP
from mlops_assets.core.splits import canonical_order
from mlops_assets.core.tables import DeltaRsEngine
from mlops_assets.defs import ingestion
from mlops_assets.defs.ingestion import (
    ResamplingConfig,
    SplitsConfig,
    TransactionChecksConfig,
    raw_transactions,
    resampled_train,
    training_splits,
    transactions,
    transactions_checks,
)
from mlops_assets.resources import DataSource, Lakehouse

ASSETS = [raw_transactions, transactions, transactions_checks, training_splits, resampled_train]


def _synthetic(rows: int = 3_000, seed: int = 1) -> DataSource:
    return DataSource(
        kind="synthetic", synthetic_rows=rows, synthetic_seed=seed, synthetic_positive_rate=0.03
    )


def _resources(root: Path, source: DataSource) -> dict:
    return {"lakehouse": Lakehouse(root=str(root)), "data_source": source}


def _metadata(result: dg.ExecuteInProcessResult, key: str) -> dict:
    events = result.asset_materializations_for_node(key)
    return {name: value.value for name, value in events[-1].metadata.items()}


def _checks(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    return {
        evaluation.check_name: evaluation.passed
        for evaluation in result.get_asset_check_evaluations()
    }


def test_data_asset_and_check_keys_are_pinned() -> None:
    assets = dg.load_assets_from_modules([ingestion])
    keys = {key.to_user_string() for asset in assets for key in asset.keys}
    assert keys == {"raw_transactions", "transactions", "training_splits", "resampled_train"}
    for asset in assets:
        assert set(asset.group_names_by_key.values()) == {DATA_GROUP}
        for key in asset.keys:
            assert asset.specs_by_key[key].description and asset.specs_by_key[key].kinds
    checks = dg.load_asset_checks_from_modules([ingestion])
    check_keys = {
        (key.asset_key.to_user_string(), key.name) for c in checks for key in c.check_keys
    }
    assert check_keys == {
        ("transactions", "columns_and_types"),
        ("transactions", "two_classes"),
        ("transactions", "min_positives"),
        ("transactions", "null_rates"),
        ("transactions", "row_count_change"),
    }
    blocking = {spec.name for c in checks for spec in c.check_specs if spec.blocking}
    assert blocking == {"columns_and_types", "two_classes", "min_positives", "null_rates"}


def test_materialize_the_data_assets_end_to_end(tmp_path: Path) -> None:
    result = dg.materialize(ASSETS, resources=_resources(tmp_path, _synthetic()))
    assert result.success
    assert all(_checks(result).values()) and len(_checks(result)) == 5

    raw = _metadata(result, "raw_transactions")
    assert raw["dagster/row_count"] == 3_000 and raw["columns"] == 31
    assert raw["source_kind"] == "synthetic" and raw["delta_version"] == 0

    silver = _metadata(result, "transactions")
    assert silver["delta_version"] == 0 and silver["dagster/row_count"] == 3_000
    assert 0.02 < silver["positive_rate"] < 0.04 and silver["source"] == "raw_transactions@v0"
    assert silver["dedup_policy"] == "drop_exact"

    splits = _metadata(result, "training_splits")
    assert (splits["source_table"], splits["source_version"]) == ("transactions", 0)
    assert splits["source_uri"].endswith("transactions") and splits["dagster/row_count"] == 3_000
    sizes = (splits["train_rows"], splits["valid_rows"], splits["test_rows"])
    assert sum(sizes) == 3_000 and sizes == pytest.approx((1_800, 600, 600), abs=75)
    assert all(0.01 < splits[f"{name}_positive_rate"] < 0.05 for name in ("train", "valid", "test"))

    resampled = _metadata(result, "resampled_train")
    assert resampled["resampling_method"] == "adasyn"
    assert resampled["rows_before"] == sizes[0] and resampled["rows_after"] > sizes[0]

    engine = DeltaRsEngine(str(tmp_path))
    ref = result.output_for_node("resampled_train")
    assert ref.name == "resampled_train" and ref.version == 0
    frame = engine.read(ref.name, ref.version)
    assert "split" not in frame.columns and len(frame) == resampled["rows_after"]
    assert set(engine.read("training_splits")["split"]) == {"train", "valid", "test"}


def test_configs_reach_the_core(tmp_path: Path) -> None:
    config = dg.RunConfig(
        ops={
            "training_splits": SplitsConfig(
                train_fraction=0.8, valid_fraction=0.1, test_fraction=0.1
            ),
            "resampled_train": ResamplingConfig(method="none"),
        }
    )
    result = dg.materialize(ASSETS, resources=_resources(tmp_path, _synthetic()), run_config=config)
    train_rows = _metadata(result, "training_splits")["train_rows"]
    assert train_rows == pytest.approx(2_400, abs=60)  # 80 % of 3,000 rows, up to hash noise
    resampled = _metadata(result, "resampled_train")
    assert resampled["resampling_method"] == "none" and resampled["rows_after"] == train_rows


def test_offline_openml_default_falls_back_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreachable(*args, **kwargs):
        raise OSError(101, "Network is unreachable")

    monkeypatch.setattr(socket, "create_connection", unreachable)
    source = DataSource(cache_dir=str(tmp_path / "cache"), synthetic_rows=2_000)
    result = dg.materialize(
        [raw_transactions, transactions], resources=_resources(tmp_path, source)
    )
    raw = _metadata(result, "raw_transactions")
    assert raw["source_kind"] == "synthetic"
    assert raw["source"].startswith("OpenML unreachable") and "used synthetic" in raw["source"]
    assert "Network is unreachable" in raw["fallback_reason"]


def test_blocking_check_failure_stops_downstream_assets(tmp_path: Path) -> None:
    config = dg.RunConfig(
        ops={"transactions_checks": TransactionChecksConfig(min_positives=10_000)}
    )
    result = dg.materialize(
        ASSETS,
        resources=_resources(tmp_path, _synthetic()),
        run_config=config,
        raise_on_error=False,
    )
    assert not result.success
    assert _checks(result)["min_positives"] is False
    materialized = {
        event.asset_key.to_user_string() for event in result.get_asset_materialization_events()
    }
    assert materialized == {"raw_transactions", "transactions"}
    assert DeltaRsEngine(str(tmp_path)).latest_version("training_splits") is None


def _file_source(path: Path) -> DataSource:
    return DataSource(kind="file", path=str(path), target_column="Class", positive_label="1")


@pytest.mark.parametrize(
    ("content", "failing_step", "message"),
    [
        (None, "raw_transactions", "missing.csv: does not exist"),
        ("", "raw_transactions", "bad.csv: is empty"),
        ("a,Class\n1,0\n2", "raw_transactions", "bad.csv: truncated or malformed CSV"),
        ("a,b\n1,0\n2,1\n", "raw_transactions", "bad.csv, column 'Class': target column"),
        ("a,Class\n1,0\n2,0\n", "transactions", "bad.csv\\), column 'Class': only one class"),
        ("a,Class\n" + "1,0\n" * 20 + "x,1\n", "transactions", "column 'a': 1 of 21 value"),
    ],
)
def test_bad_input_fails_naming_the_problem_and_keeps_previous_versions(
    tmp_path: Path, content: str | None, failing_step: str, message: str
) -> None:
    good = tmp_path / "good.csv"
    pd.DataFrame({"a": range(100), "Class": [0, 1] * 50}).to_csv(good, index=False)
    lake = tmp_path / "lake"
    first = dg.materialize(
        [raw_transactions, transactions], resources=_resources(lake, _file_source(good))
    )
    assert first.success
    engine = DeltaRsEngine(str(lake))
    before = {name: engine.read(name, 0) for name in ("raw_transactions", "transactions")}

    bad = tmp_path / ("missing.csv" if content is None else "bad.csv")
    if content is not None:
        bad.write_text(content)
    result = dg.materialize(
        [raw_transactions, transactions],
        resources=_resources(lake, _file_source(bad)),
        raise_on_error=False,
    )
    assert not result.success
    failed = next(event for event in result.all_events if event.is_step_failure)
    assert failed.step_key == failing_step
    error = failed.step_failure_data.error
    text = error.message + "".join(cause.message for cause in _causes(error))
    assert re.search(message, text), text
    assert engine.latest_version("transactions") == 0
    for name, frame in before.items():
        pd.testing.assert_frame_equal(engine.read(name, 0), frame)


def _causes(error):
    while error.cause is not None:
        error = error.cause
        yield error


def test_training_splits_stay_pinned_to_the_transactions_version_they_read(
    tmp_path: Path,
) -> None:
    (tmp_path / "home").mkdir()
    instance = dg.DagsterInstance.local_temp(tempdir=str(tmp_path / "home"))
    resources = _resources(tmp_path / "lake", _synthetic(rows=2_000))
    first = dg.materialize([raw_transactions, transactions], resources=resources, instance=instance)
    pinned = first.output_for_node("transactions")
    engine = DeltaRsEngine(str(tmp_path / "lake"))
    old = engine.read("transactions", pinned.version)
    # Someone writes a newer version of the silver table after `transactions` ran.
    engine.write("transactions", old.head(500), mode="overwrite")
    assert engine.latest_version("transactions") == pinned.version + 1

    result = dg.materialize(
        [raw_transactions, transactions, training_splits],
        selection=[training_splits],
        resources=resources,
        instance=instance,
    )
    splits = _metadata(result, "training_splits")
    assert splits["source_version"] == pinned.version
    assert splits["dagster/row_count"] == 2_000
    stored = engine.read("training_splits").drop(columns=["split"])
    pd.testing.assert_frame_equal(canonical_order(stored), canonical_order(old))


def test_null_rate_check_blocks_and_row_count_change_only_warns(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    path = tmp_path / "data.csv"
    frame = pd.DataFrame({"a": range(200), "b": [1.0] * 200, "Class": [0, 1] * 100})
    frame.to_csv(path, index=False)
    config = dg.RunConfig(ops={"transactions_checks": TransactionChecksConfig(min_positives=5)})
    first = dg.materialize(
        ASSETS, resources=_resources(lake, _file_source(path)), run_config=config
    )
    assert first.success and all(_checks(first).values())

    # Half the rows: the row count changes by -50 % (> 20 %), a warning that does not block.
    frame.head(100).to_csv(path, index=False)
    warn = dg.RunConfig(
        ops={
            "transactions_checks": TransactionChecksConfig(
                min_positives=5, max_row_count_change=0.2
            )
        }
    )
    second = dg.materialize(ASSETS, resources=_resources(lake, _file_source(path)), run_config=warn)
    assert second.success and _checks(second)["row_count_change"] is False
    evaluation = next(
        e for e in second.get_asset_check_evaluations() if e.check_name == "row_count_change"
    )
    assert evaluation.severity == dg.AssetCheckSeverity.WARN
    assert "200 -> 100 rows" in evaluation.description

    # A column that is 90 % missing fails the blocking null-rate check: no new splits.
    frame.assign(b=[None] * 180 + [1.0] * 20).to_csv(path, index=False)
    splits_before = DeltaRsEngine(str(lake)).latest_version("training_splits")
    third = dg.materialize(
        ASSETS,
        resources=_resources(lake, _file_source(path)),
        run_config=config,
        raise_on_error=False,
    )
    assert not third.success and _checks(third)["null_rates"] is False
    assert DeltaRsEngine(str(lake)).latest_version("training_splits") == splits_before
