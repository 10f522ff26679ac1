"""Fault: a corrupted or truncated source file reaches ingestion.

A good CSV.gz is ingested first (``raw_transactions`` and ``transactions`` at version 0) and
a registered version is the ``champion``. Then the file is replaced by a broken one and the
whole training chain, up to ``champion_model``, is materialized: ingestion must fail with an
error naming the file and the problem, nothing downstream runs, both tables stay at version 0
with their rows, and the champion alias and the registry are untouched.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import dagster as dg
import numpy as np
import pytest
from deltalake import DeltaTable

from mlops_assets.constants import RAW_TRANSACTIONS_TABLE, TRANSACTIONS_TABLE
from mlops_assets.core import synthetic
from mlops_assets.defs.deployment import champion_model
from mlops_assets.defs.ingestion import (
    raw_transactions,
    resampled_train,
    training_splits,
    transactions,
)
from mlops_assets.defs.training import registered_model_version, tuned_model
from mlops_assets.resources import DataSource, Lakehouse, MlflowRegistry
from mlops_assets_tests.core.promotion_fixtures import registry_uri
from mlops_assets_tests.serving.registry import TestRegistry, xgb_bundle

pytestmark = pytest.mark.e2e
MODEL = "ingest_fault_model"
CHAIN = [
    raw_transactions,
    transactions,
    training_splits,
    resampled_train,
    tuned_model,
    registered_model_version,
    champion_model,
]


def good_csv() -> bytes:
    return synthetic.generate(2000, seed=5, positive_rate=0.05).to_csv(index=False).encode()


def corrupt(kind: str, csv: bytes) -> tuple[str, bytes, str]:
    """File name, bytes and the problem the error must name, for each kind of damage."""
    packed = gzip.compress(csv)
    if kind == "truncated_gzip":
        return "source.csv.gz", packed[: len(packed) // 2], "truncated or corrupt compressed file"
    if kind == "corrupt_gzip_stream":  # valid header, damaged deflate data
        damaged = bytearray(packed)
        damaged[len(damaged) // 2 : len(damaged) // 2 + 64] = b"\xff" * 64
        return "source.csv.gz", bytes(damaged), "truncated or corrupt compressed file"
    if kind == "garbage_bytes":
        noise = np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes()
        return "source.csv.gz", noise, "truncated or corrupt compressed file"
    if kind == "garbage_csv":
        noise = np.random.default_rng(1).integers(0, 256, 50_000, dtype=np.uint8).tobytes()
        return "source.csv", noise, "malformed CSV"
    if kind == "csv_cut_mid_row":
        return "source.csv", csv[: len(csv) // 2 - 7], "truncated or malformed CSV"
    raise ValueError(kind)


@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> tuple[TestRegistry, int]:
    """One registry for the module (a SQLite store costs seconds) with a champion."""
    registry = TestRegistry.create(tmp_path_factory.mktemp("mlflow"), model_name=MODEL)
    with registry_uri(registry.tracking_uri):
        champion = registry.register(xgb_bundle(seed=0, trees=3))
    registry.set_alias("champion", champion)
    return registry, champion


@pytest.fixture()
def world(registry, tmp_path):
    registry, champion = registry
    resources = {
        "lakehouse": Lakehouse(root=str(tmp_path / "lake")),
        "mlflow": MlflowRegistry(tracking_uri=registry.tracking_uri, model_name=MODEL),
    }
    return registry, champion, resources, tmp_path


def run(assets, resources: dict, path: Path):
    source = DataSource(kind="file", path=str(path))
    return dg.materialize(
        assets,
        resources={**resources, "data_source": source},
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def table_state(lake: Path, name: str) -> tuple[int, int]:
    table = DeltaTable(str(lake / name))
    return table.version(), len(table.to_pandas())


@pytest.mark.parametrize(
    "kind",
    ["truncated_gzip", "corrupt_gzip_stream", "garbage_bytes", "garbage_csv", "csv_cut_mid_row"],
)
def test_broken_source_file_fails_ingestion_and_leaves_tables_and_champion(world, kind) -> None:
    registry, champion, resources, folder = world
    good = folder / "good.csv.gz"
    good.write_bytes(gzip.compress(good_csv()))
    first = run([raw_transactions, transactions], resources, good)
    assert first.success
    lake = folder / "lake"
    before = {
        name: table_state(lake, name) for name in (RAW_TRANSACTIONS_TABLE, TRANSACTIONS_TABLE)
    }
    assert before[RAW_TRANSACTIONS_TABLE] == (0, 2000)

    name, data, problem = corrupt(kind, good_csv())
    broken = folder / name
    broken.write_bytes(data)
    result = run(CHAIN, resources, broken)

    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert failure.step_key == "raw_transactions"
    message = str(failure.event_specific_data.error)
    [line] = [text for text in message.splitlines() if "SourceError" in text][:1]
    print(f"injected: {kind} ({len(data)} bytes at {broken}); error: {line[:220]}")
    assert f"file {broken}" in message and problem in message
    executed = {e.step_key for e in result.all_events if e.event_type_value == "STEP_START"}
    assert executed == {"raw_transactions"}
    after = {name: table_state(lake, name) for name in before}
    assert after == before
    client = registry.client()
    assert int(client.get_model_version_by_alias(MODEL, "champion").version) == champion
    assert len(client.search_model_versions(f"name = '{MODEL}'")) == 1
    print(f"checked: tables unchanged {after}, champion still v{champion}, 1 registered version")


def test_corrupt_gzip_crc_is_caught(tmp_path) -> None:
    """A gzip whose data is intact but whose CRC trailer is wrong is not silently accepted."""
    packed = bytearray(gzip.compress(good_csv()))
    packed[-8:-4] = (zlib.crc32(b"other") & 0xFFFFFFFF).to_bytes(4, "little")
    path = tmp_path / "crc.csv.gz"
    path.write_bytes(bytes(packed))
    result = run([raw_transactions], {"lakehouse": Lakehouse(root=str(tmp_path))}, path)
    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert f"file {path}: truncated or corrupt" in str(failure.event_specific_data.error)
    assert not (tmp_path / RAW_TRANSACTIONS_TABLE).exists()
