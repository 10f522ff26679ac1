"""Concurrent Delta writers in separate processes: every commit lands, once, with its version."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pandas as pd

WRITERS, COMMITS, ROWS = 3, 4, 5


def _append(root: str, writer: int, barrier, results) -> None:
    from mlops_assets.core.tables import DeltaRsEngine

    engine = DeltaRsEngine(root=root)
    barrier.wait()  # all writers start together, on a table that does not exist yet
    for commit in range(COMMITS):
        ids = [f"w{writer}-c{commit}-r{row}" for row in range(ROWS)]
        ref = engine.write("events", pd.DataFrame({"id": ids, "writer": writer}), "append")
        results.put((writer, commit, ref.version))


def test_concurrent_appends_from_processes_all_land_with_their_own_versions(
    tmp_path: Path,
) -> None:
    from deltalake import DeltaTable

    context = multiprocessing.get_context("spawn")  # delta-rs' runtime does not survive fork
    barrier, results = context.Barrier(WRITERS), context.Queue()
    root = str(tmp_path / "lake")
    processes = [
        context.Process(target=_append, args=(root, writer, barrier, results))
        for writer in range(WRITERS)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(120)
    assert [process.exitcode for process in processes] == [0] * WRITERS
    reported = [results.get(timeout=5) for _ in range(WRITERS * COMMITS)]

    table = DeltaTable(str(tmp_path / "lake" / "events"))
    versions = sorted(version for _, _, version in reported)
    history = sorted(int(entry["version"]) for entry in table.history())
    retries = sum(int(entry["operationMetrics"].get("num_retries", 0)) for entry in table.history())
    ids = table.to_pandas()["id"]
    print(
        f"\nconcurrent appends: {WRITERS} processes x {COMMITS} commits -> versions {versions}, "
        f"{len(ids)} rows, {retries} commit retries"
    )
    assert versions == history == list(range(WRITERS * COMMITS))  # each write got its own
    assert ids.is_unique and len(ids) == WRITERS * COMMITS * ROWS
    for writer, commit, version in reported:  # the reported version holds that writer's rows
        rows = DeltaTable(str(tmp_path / "lake" / "events"), version=version).to_pandas()
        assert f"w{writer}-c{commit}-r0" in set(rows["id"])
        if version > 0:
            before = DeltaTable(str(tmp_path / "lake" / "events"), version=version - 1)
            assert f"w{writer}-c{commit}-r0" not in set(before.to_pandas()["id"])
