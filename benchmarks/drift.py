"""Drift check on the real credit-card data: this system's check vs Evidently on the full reference.

Reference: the full training split (60 % of the rows, stratified); current: 50,000 later rows
with a synthetic shift on two features. Each variant runs in a fresh child process so its
peak RSS is its own. Prints seconds, peak memory and whether the drifted-column verdicts agree.

    .venv/bin/python benchmarks/drift.py [--data ../shared/data/creditcard.csv.gz]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import time
from pathlib import Path

import pandas as pd
from sklearn.model_selection import train_test_split

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "creditcard.csv.gz"
EXCLUDED = ("Time", "Class")


def load(path: Path) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    frame = pd.read_csv(path)
    columns = [c for c in frame.columns if c not in EXCLUDED]
    train, rest = train_test_split(frame, train_size=0.6, stratify=frame["Class"], random_state=0)
    current = rest.sample(n=min(50_000, len(rest)), random_state=1)[columns].copy()
    current["V3"] += 1.0
    current["Amount"] *= 1.8
    return train[columns], current, columns


def _child(kind: str, path: str, queue: mp.Queue) -> None:
    reference, current, columns = load(Path(path))
    started = time.perf_counter()
    if kind == "mlops_assets":
        from mlops_assets.core.drift import detect_drift

        result = detect_drift(reference, current, columns, reference_cap=50_000)
        drifted = set(result.drifted_columns)
        extra = f"domain AUC {result.domain.roc_auc:.3f}, top {result.domain.top_features[:2]}"
    else:
        from mlops_assets.core.drift import evidently_column_drift

        drifted = {c.column for c in evidently_column_drift(reference, current) if c.drifted}
        extra = "Evidently DataDriftPreset, full reference, no domain classifier"
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put((kind, seconds, peak_mb, sorted(drifted), extra))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()
    context = mp.get_context("spawn")
    rows = []
    for kind in ("mlops_assets", "evidently_full"):
        queue = context.Queue()
        process = context.Process(target=_child, args=(kind, str(args.data), queue))
        process.start()
        rows.append(queue.get())
        process.join()
    print(f"{'variant':<16} {'seconds':>8} {'peak RSS MB':>12}  drifted columns")
    for kind, seconds, peak, drifted, extra in rows:
        print(f"{kind:<16} {seconds:8.2f} {peak:12.0f}  {drifted}  ({extra})")
    ours, naive = rows
    print(f"time ratio (ours / Evidently full reference): {ours[1] / naive[1]:.2f}")
    print(f"same drifted-column verdicts: {ours[3] == naive[3]}")
    print(
        f"targets: <= 10 s: {ours[1] <= 10}; <= 1024 MB peak RSS (whole process): {ours[2] <= 1024}"
    )


if __name__ == "__main__":
    main()
