"""The child side of the scaling benchmark: generate rows, run every stage, report each one.

:func:`run_size` starts one ``spawn`` child per (engine, size); the child puts one record per
stage (seconds, peak RSS of its process tree, a note) on a queue as soon as the stage ends,
so a child killed at 16x (out of memory) still leaves the stages it finished.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.memory import PeakRss, descendants

NOISE_SHARE = 0.01  # noise std as a share of each numeric column's std
FIT_PARAMS = {"n_estimators": 100, "max_depth": 5, "learning_rate": 0.1, "seed": 0, "nthread": 2}
EXCLUDED_FEATURES = ("Time",)
CHILD_TIMEOUT_S = 3600.0


def noisy_rows(
    frame: pd.DataFrame, rows: int, target: str, seed: int, noise_share: float = NOISE_SHARE
) -> pd.DataFrame:
    """Draw ``rows`` rows of ``frame`` with replacement and add Gaussian noise per column.

    Args:
        frame: Real rows (features and ``target``).
        rows: Rows to draw.
        target: Label column, copied unchanged.
        seed: Random seed (the same seed gives the same rows).
        noise_share: Noise standard deviation as a share of each numeric column's std;
            integer columns are rounded back to integers, other columns are copied.

    Returns:
        The new rows, fresh index, same columns and dtypes.

    Raises:
        ValueError: ``rows`` below 1, an empty ``frame`` or a missing ``target``.
    """
    if rows < 1 or frame.empty:
        raise ValueError(f"noisy_rows: need rows >= 1 and a non-empty frame, got rows={rows}")
    if target not in frame.columns:
        raise ValueError(f"noisy_rows: target column {target!r} not in {list(frame.columns)}")
    rng = np.random.default_rng(seed)
    picked = frame.iloc[rng.integers(0, len(frame), size=rows)].reset_index(drop=True)
    for name in picked.columns:
        column = picked[name]
        numeric = pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)
        if name == target or not numeric:
            continue
        scale = float(frame[name].std(skipna=True) or 0.0) * noise_share
        noisy = column.to_numpy(dtype="float64") + rng.normal(0.0, scale, rows)
        if pd.api.types.is_integer_dtype(column) and not column.isna().any():
            picked[name] = np.rint(noisy).astype(column.dtype)
        else:
            picked[name] = noisy
    return picked


def _stat_cpu_s(path: str) -> float:
    try:
        with open(path) as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def work_cpu_s(sampler_tid: int | None) -> float:
    """CPU seconds of this process tree less the memory sampler thread's (its cost is per
    second of wall time, not per unit of work)."""
    sampler = _stat_cpu_s(f"/proc/self/task/{sampler_tid}/stat") if sampler_tid else 0.0
    return tree_cpu_s() - sampler


def tree_cpu_s() -> float:
    """CPU seconds (user + system) used so far by this process and its live descendants."""
    pid = os.getpid()
    return sum(_stat_cpu_s(f"/proc/{member}/stat") for member in (pid, *descendants(pid)))


def _engine(name: str, root: Path, ivy_dir: str) -> Any:
    from mlops_assets.core.tables import DeltaRsEngine

    if name == "delta-rs":
        return DeltaRsEngine(root=str(root))
    from mlops_assets.core.spark import spark_session
    from mlops_assets.core.spark_tables import SparkDeltaEngine

    return SparkDeltaEngine(root=str(root), spark=spark_session(ivy_dir=ivy_dir))


def _child(job: dict[str, Any], out: Any) -> None:
    """Run every stage of one (engine, size) and put one record per stage on ``out``."""
    monitor = PeakRss()
    sampler = getattr(getattr(monitor, "_thread", None), "native_id", None)

    def stage(name: str, function, note=lambda result: "") -> Any:
        monitor.reset()
        start_rss = monitor.peak
        cpu_started, started = work_cpu_s(sampler), time.perf_counter()
        result = function()
        seconds = time.perf_counter() - started
        record = {"stage": name, "seconds": seconds, "cpu_s": work_cpu_s(sampler) - cpu_started}
        record["peak_mib"] = monitor.peak
        out.put({**record, "start_mib": start_rss, "note": note(result)})
        return result

    try:
        _stages(job, stage)
        out.put({"done": True})
    except BaseException as error:  # reported to the parent, which writes it into a figure
        out.put({"error": f"{type(error).__name__}: {error}", "trace": traceback.format_exc()})
    finally:
        monitor.stop()


def _stages(job: dict[str, Any], stage) -> None:
    """The stages of one size; ``held`` keeps frames so each is dropped once it is used up."""
    from mlops_assets.core.contract import contract_from_frame
    from mlops_assets.core.drift import detect_drift
    from mlops_assets.core.ingestion import refine_transactions, write_raw
    from mlops_assets.core.model import build_pipeline, xgboost_classifier
    from mlops_assets.core.model_bundle import ModelBundle
    from mlops_assets.core.resampling import resample, resample_table
    from mlops_assets.core.sources import LoadedSource, TargetSpec
    from mlops_assets.core.splits import SplitFractions, feature_columns, split_frames, split_table

    target = TargetSpec(job["target"], job["positive"])
    held: dict[str, Any] = {"base": pd.read_parquet(job["base"])}
    rows = len(held["base"]) * job["factor"]
    frame = stage("generate", lambda: noisy_rows(held.pop("base"), rows, job["target"], seed=7))
    engine = stage("engine_start", lambda: _engine(job["engine"], job["root"], job["ivy"]))
    held["loaded"] = LoadedSource(frame, "file", f"noisy x{job['factor']}", target)
    del frame
    raw = stage("raw_write", lambda: write_raw(engine, held.pop("loaded")))
    silver = stage(
        "silver",
        lambda: refine_transactions(engine, raw.ref, target, {}, origin="scaling"),
        lambda r: f"{r.duplicates_dropped} duplicates dropped",
    )
    splits = stage("splits", lambda: split_table(engine, silver.ref, SplitFractions(), seed=42))
    if job["engine"] != "delta-rs":
        return
    resampled = stage(
        "resample",
        lambda: resample_table(engine, splits.ref, "adasyn", seed=42).result,
        lambda r: (
            f"{r.method}: {r.rows_before:,} -> {r.rows_after:,} rows "
            f"({r.positives_before:,} positives in){'; ' + r.note if r.note else ''}"
        ),
    )
    held["train"] = resampled.frame
    del resampled
    table = stage("read_splits", lambda: engine.read(splits.ref.name, splits.ref.version))
    held["parts"] = split_frames(table)
    columns = feature_columns(table, EXCLUDED_FEATURES)
    stage(  # the alternative whose neighbour search stays among the positives
        "resample_smote",
        lambda: resample(held["parts"].train, "smote", seed=42),
        lambda r: (
            f"{r.rows_before:,} -> {r.rows_after:,} rows (in memory, not written)"
            f"{'; ' + r.note if r.note else ''}"
        ),
    )

    def fit() -> Any:
        train = held.pop("train")
        pipeline = build_pipeline(train[columns], xgboost_classifier(FIT_PARAMS))
        return pipeline.fit(train[columns], train["label"].to_numpy())

    pipeline = stage("fit", fit, lambda _: f"{FIT_PARAMS['n_estimators']} trees, fixed params")
    stage(
        "drift",
        lambda: detect_drift(held["parts"].train, held["parts"].test, columns, seed=0),
        lambda r: f"reference {r.reference_rows:,} (capped) vs current {r.current_rows:,} rows",
    )
    bundle = ModelBundle(pipeline, 0.5, contract_from_frame(held.pop("parts").valid[columns]))
    stage("score", lambda: bundle.predict(table), lambda r: f"{len(r):,} rows scored")


def run_size(job: dict[str, Any], timeout_s: float = CHILD_TIMEOUT_S) -> tuple[list[dict], str]:
    """Run one (engine, size) in a fresh ``spawn`` child.

    Returns:
        The stage records received (possibly partial) and an error text ("" when it ended
        normally): the child's exception, its exit code (-9: killed, e.g. out of memory) or
        a timeout.
    """
    context = mp.get_context("spawn")
    out = context.Queue()
    child = context.Process(target=_child, args=(job, out), daemon=True)
    child.start()
    records: list[dict] = []
    error, deadline = "", time.monotonic() + timeout_s
    while True:
        try:
            message = out.get(timeout=1.0)
        except queue.Empty:
            if not child.is_alive():
                error = f"child ended with exit code {child.exitcode} (-9: killed, e.g. OOM)"
                break
            if time.monotonic() > deadline:
                child.kill()
                error = f"timed out after {timeout_s:.0f} s"
                break
            continue
        if message.get("done"):
            break
        if "error" in message:
            error = message["error"]
            break
        records.append(message)
        print(
            f"[scaling] {job['engine']} {job['factor']}x {message['stage']}: "
            f"{message['seconds']:.2f} s ({message['cpu_s']:.2f} s CPU), "
            f"peak {message['peak_mib']:.0f} MiB {message['note']}",
            file=sys.stderr,
            flush=True,
        )
    child.join(timeout=30)
    if child.is_alive():
        child.kill()
        child.join()
    return records, error
