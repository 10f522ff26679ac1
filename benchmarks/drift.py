"""Drift check on the real credit-card data: this system's check vs Evidently on the full reference.

Reference: the full training split (60 % of the rows, stratified); current: 50,000 later rows
with a synthetic shift on two features. Each variant runs in a fresh child process so its
peak RSS is its own. Prints seconds, peak memory and whether the drifted-column verdicts agree.

Variants: ``mlops_assets`` (the core check on in-memory frames), ``drift_report`` (what the
asset does, MLflow logging aside: read the champion's ``training_splits`` version from Delta,
read the 50,000 new ``inference_log`` rows since the previous report's version, check, save
the HTML report) and ``evidently_full`` (Evidently's ``DataDriftPreset`` on the full
reference, the naive way; the preset runs every column's test three times, once per column
metric and twice more for its drifted-columns summary, where the core check runs one
``ValueDrift`` per column on a sampled reference).

In the suite (``suite``): every variant runs ``reps`` times, each in a fresh process (no
warm-up: a warm process would share its peak memory); targets on the core check and the
asset path: <= 10 s and <= 1 GB peak RSS (whole process, the CSV read included) at 1x, and
the time ratio to Evidently's preset. Smoke mode runs the variants once, in-process.

Other files: ``--target`` names the label; features are every column but it and ``Time``,
and the shift goes to ``V3``/``Amount`` or else to the first two numeric features.

    .venv/bin/python -m benchmarks.drift [--data ../shared/data/creditcard.csv.gz]
        [--target Class]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import statistics
import time
from pathlib import Path

import pandas as pd
from sklearn.model_selection import train_test_split

from benchmarks.harness import DEFAULT_DATA, Figure, Settings, Stats, ratio, timing

NAME = "drift"
EXCLUDED = ("Time",)


def load(path: Path, target: str = "Class") -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    frame = pd.read_csv(path)
    if target not in frame.columns:
        raise ValueError(f"{path}: target column {target!r} not found in {list(frame.columns)}")
    columns = [c for c in frame.columns if c not in (*EXCLUDED, target)]
    train, rest = train_test_split(frame, train_size=0.6, stratify=frame[target], random_state=0)
    current = rest.sample(n=min(50_000, len(rest)), random_state=1)[columns].copy()
    if {"V3", "Amount"} <= set(columns):
        current["V3"] += 1.0
        current["Amount"] *= 1.8
    else:
        numeric = [c for c in columns if pd.api.types.is_numeric_dtype(current[c])][:2]
        for column in numeric:
            current[column] = current[column] + current[column].std()
    return train[columns], current, columns


def _child(kind: str, path: str, queue: mp.Queue, target: str = "Class") -> None:
    queue.put(measure(kind, Path(path), target))


def measure(kind: str, path: Path, target: str = "Class") -> tuple:
    """One variant on freshly loaded data: (kind, seconds, CPU s, peak MB, drifted, extra)."""
    reference, current, columns = load(path, target)
    started, cpu_started = time.perf_counter(), time.process_time()
    if kind == "drift_report":
        drifted, extra, seconds, cpu = _drift_report(reference, current, columns)
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return (kind, seconds, cpu, peak_mb, sorted(drifted), extra)
    if kind == "mlops_assets":
        from mlops_assets.core.drift import detect_drift

        result = detect_drift(reference, current, columns, reference_cap=50_000)
        drifted = set(result.drifted_columns)
        extra = f"domain AUC {result.domain.roc_auc:.3f}, top {result.domain.top_features[:2]}"
    else:
        drifted = _preset_drifted(reference, current)
        extra = "Evidently DataDriftPreset, full reference, no domain classifier"
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return (kind, seconds, cpu, peak_mb, sorted(drifted), extra)


def _preset_drifted(reference: pd.DataFrame, current: pd.DataFrame) -> set[str]:
    """The naive way: Evidently's DataDriftPreset on the full reference."""
    from evidently import Report
    from evidently.presets import DataDriftPreset

    from mlops_assets.core.drift import P_VALUE_MARKER

    snapshot = Report([DataDriftPreset()]).run(current_data=current, reference_data=reference)
    drifted = set()
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if not config.get("type", "").endswith("ValueDrift"):
            continue
        score, threshold = float(metric["value"]), float(config["threshold"])
        p_value = P_VALUE_MARKER in str(config["method"])
        if (score < threshold) if p_value else (score >= threshold):
            drifted.add(config["column"])
    return drifted


def _drift_report(
    reference: pd.DataFrame, current: pd.DataFrame, columns: list[str]
) -> tuple[set[str], str, float, float]:
    """Write the Delta tables the asset reads (untimed), then time the asset's core call."""
    import tempfile

    from mlops_assets.core.drift_report import DriftSettings, build_drift_report
    from mlops_assets.core.monitored_model import MonitoredModel
    from mlops_assets.core.tables import DeltaRsEngine

    with tempfile.TemporaryDirectory() as folder:
        engine = DeltaRsEngine(folder)
        splits = pd.concat(
            [reference.assign(split="train"), current.head(1000).assign(split="test")]
        )
        ref = engine.write("training_splits", splits.assign(label=0), mode="overwrite")
        engine.write("inference_log", current.head(1000))  # the previous report's window
        engine.write("inference_log", current)  # 50,000 rows since then
        model = MonitoredModel(
            "fraud_detector", 1, "champion", tuple(columns), ref.uri, ref.version
        )
        started, cpu_started = time.perf_counter(), time.process_time()
        report = build_drift_report(
            engine, model, DriftSettings(), after_version=0, html_path=Path(folder) / "r.html"
        )
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        result = report.result
        extra = (
            f"{result.current_rows:,} window rows, domain AUC {result.domain.roc_auc:.3f}, "
            f"HTML {Path(report.html_path).stat().st_size / 1e6:.1f} MB"
        )
        return set(result.drifted_columns), extra, seconds, cpu


VARIANTS = ("mlops_assets", "drift_report", "evidently_full")


def in_child(kind: str, path: Path, target: str) -> tuple:
    """:func:`measure` in a fresh spawned process, so its peak RSS is its own."""
    context = mp.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_child, args=(kind, str(path), queue, target))
    process.start()
    row = queue.get()
    process.join()
    return row


def suite(settings: Settings) -> list[Figure]:
    """Core check and asset path vs Evidently's preset: seconds, peak RSS, time ratios."""
    rows: dict[str, list[tuple]] = {kind: [] for kind in VARIANTS}
    if settings.smoke:  # in-process: import once up front, not inside the first variant
        import evidently.presets  # noqa: F401

        import mlops_assets.core.drift_report  # noqa: F401
    for _ in range(settings.timed_reps):
        for kind in VARIANTS:  # interleaved, so load swings hit every variant alike
            run = measure if settings.smoke else in_child
            rows[kind].append(run(kind, settings.data, settings.target))
    where = "in-process (smoke)" if settings.smoke else "fresh process per run"
    cold = "imports done before" if settings.smoke else "cold process: Evidently import included"
    figures = []
    for kind, label in (("mlops_assets", "core check"), ("drift_report", "drift_report path")):
        seconds = Stats(tuple(row[1] for row in rows[kind]))
        peak = max(row[3] for row in rows[kind])
        last = rows[kind][-1]
        same = last[4] == rows["evidently_full"][-1][4]
        figures += [
            timing(NAME, f"{label} seconds", seconds, target=10.0, note=f"{last[5]}; {cold}"),
            Figure(
                NAME,
                f"{label} peak RSS",
                peak,
                "MiB",
                target="<= 1024 MiB",
                met=peak <= 1024,
                note=f"whole process, CSV read included; {where}",
            ),
            ratio(
                NAME,
                f"{label} / Evidently time",
                seconds.median,
                statistics.median(row[1] for row in rows["evidently_full"]),
                note=f"same drifted columns as Evidently: {same} ({last[4]})",
            ),
        ]
    evidently = rows["evidently_full"]
    figures += [
        timing(
            NAME,
            "Evidently full reference seconds",
            Stats(tuple(row[1] for row in evidently)),
            note=evidently[-1][5],
        ),
        Figure(NAME, "Evidently peak RSS", max(row[3] for row in evidently), "MiB", note=where),
    ]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--target", default="Class")
    args = parser.parse_args()
    rows = [in_child(kind, args.data, args.target) for kind in VARIANTS]
    print(f"{'variant':<16} {'seconds':>8} {'CPU s':>7} {'peak RSS MB':>12}  drifted columns")
    for kind, seconds, cpu, peak, drifted, extra in rows:
        print(f"{kind:<16} {seconds:8.2f} {cpu:7.2f} {peak:12.0f}  {drifted}  ({extra})")
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end")
    ours, asset, naive = rows
    for name, row in (("core check", ours), ("drift_report path", asset)):
        print(
            f"{name}: time ratio vs Evidently full reference {row[1] / naive[1]:.2f} (CPU "
            f"{row[2] / naive[2]:.2f}); same drifted-column verdicts: {row[4] == naive[4]}; "
            f"targets <= 10 s: {row[1] <= 10}, <= 1024 MB peak RSS (whole process): "
            f"{row[3] <= 1024}"
        )


if __name__ == "__main__":
    main()
