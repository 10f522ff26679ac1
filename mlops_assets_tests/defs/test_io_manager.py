"""RunScopedIOManager: runs never read each other's values; cross-run reads use the latest.

No ``from __future__ import annotations``: Dagster resolves the ``Config`` annotation at runtime.
"""

import pickle
from pathlib import Path

import dagster as dg
import pytest

from mlops_assets.io_manager import VALUES_FOLDER, RunScopedIOManager


class Value(dg.Config):
    value: str


@dg.asset
def produced(config: Value) -> str:
    return config.value


@dg.asset
def consumed(produced: str) -> str:
    return produced


def _materialize(instance, base: Path, selection, value: str | None = None):
    config = {"ops": {"produced": {"config": {"value": value}}}} if value else None
    return dg.materialize(
        selection,
        instance=instance,
        resources={"io_manager": RunScopedIOManager(base_dir=str(base))},
        run_config=config,
    )


def test_two_runs_storing_the_same_asset_each_read_their_own_value(tmp_path: Path) -> None:
    """Run 1 stores, run 2 stores, then run 1 reads: it gets its own value, not run 2's.

    That interleaving is what two concurrent runs do; Dagster's default manager (one file per
    asset key) hands run 1 the value run 2 stored last.
    """
    manager, key = RunScopedIOManager(base_dir=str(tmp_path)), dg.AssetKey("produced")
    for run_id in ("run-1", "run-2"):
        manager.handle_output(dg.build_output_context(asset_key=key, run_id=run_id), run_id)
    for run_id in ("run-1", "run-2"):
        upstream = dg.build_output_context(asset_key=key, run_id=run_id)
        context = dg.build_input_context(asset_key=key, upstream_output=upstream)
        assert manager.load_input(context) == run_id
    stored = sorted(path.name for path in (tmp_path / VALUES_FOLDER / "produced").iterdir())
    assert stored == ["run-1.pickle", "run-2.pickle"]  # no temporary file left behind


def test_an_upstream_outside_the_run_is_read_from_its_latest_materialization(
    tmp_path: Path,
) -> None:
    base, alone = tmp_path / "values", [produced.to_source_asset(), consumed]
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        both = _materialize(instance, base, [produced, consumed], "v1")
        assert both.output_for_node("consumed") == "v1"
        assert _materialize(instance, base, alone).output_for_node("consumed") == "v1"
        _materialize(instance, base, [produced], "v2")
        assert _materialize(instance, base, alone).output_for_node("consumed") == "v2"


def test_a_never_materialized_upstream_is_named(tmp_path: Path) -> None:
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        with pytest.raises(Exception, match="'produced' has no materialization"):
            _materialize(instance, tmp_path / "values", [produced.to_source_asset(), consumed])


def test_values_of_the_previous_layout_are_still_read(tmp_path: Path) -> None:
    """A state folder written by Dagster's FilesystemIOManager (``<storage>/<asset key>``)."""
    base = tmp_path / "values"
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        _materialize(instance, base, [produced], "new layout")
        (base / VALUES_FOLDER).rename(tmp_path / "moved")
        (base / "produced").write_bytes(pickle.dumps("previous layout"))
        alone = [produced.to_source_asset(), consumed]
        assert _materialize(instance, base, alone).output_for_node("consumed") == "previous layout"


@dg.op
def reported() -> str:
    return "record"


@dg.job
def report_job() -> None:
    reported()


def test_an_op_output_is_stored_under_its_run(tmp_path: Path) -> None:
    """Jobs of plain ops (the rollback job) go through the same manager."""
    manager = RunScopedIOManager(base_dir=str(tmp_path))
    result = report_job.execute_in_process(resources={"io_manager": manager})
    [stored] = (tmp_path / VALUES_FOLDER / "ops" / result.run_id).rglob("value.pickle")
    assert pickle.loads(stored.read_bytes()) == "record"
