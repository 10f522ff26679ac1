"""Does a champion meet its own training rows in a later test split? Old split vs row-hash split.

The table first holds the earliest ``--first-share`` of the rows (by ``Time``); a champion is
trained on its train+valid rows. Then the table grows to every row and is split again, the
way ``training_splits`` runs after labeled feedback arrives. For each split method this prints
the share of the grown table's test rows that the champion trained on, and the champion's
test PR AUC and kappa (threshold 0.5) on the whole test split and on its unseen rows only.
A gap between the two is the bias ``champion_model`` would have seen.

  order-based  the split before 06404e9: rows in content-hash order, then a seeded stratified
               draw over the whole table (every row's split redrawn when the table grows)
  row-hash     :func:`mlops_assets.core.splits.assign_splits` (a row keeps its split)

Usage:
  .venv/bin/python -m benchmarks.split_stability [--csv PATH] [--first-share 0.95]
      [--seed 42] [--trees 1000] [--rows N]
"""

from __future__ import annotations

import argparse
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, cohen_kappa_score
from sklearn.model_selection import train_test_split

from benchmarks.data import silver_from_csv
from benchmarks.tuning import DEFAULT_CSV
from mlops_assets.core.model import build_pipeline, positive_probability, xgboost_classifier
from mlops_assets.core.splits import SplitFractions, assign_splits, canonical_order

warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
EXCLUDED = ("label", "split", "Time")


def order_based_split(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    """The split before 06404e9 (60/20/20), kept here as the baseline."""
    frame = canonical_order(frame)
    rest, test = train_test_split(
        frame.index, test_size=0.2, stratify=frame["label"], random_state=seed
    )
    train, valid = train_test_split(
        rest, test_size=0.25, stratify=frame.loc[rest, "label"], random_state=seed
    )
    split = pd.Series("train", index=frame.index, dtype=object)
    split[valid], split[test] = "valid", "test"
    return frame.assign(split=split)


def _row_keys(frame: pd.DataFrame, columns: list[str]) -> pd.Series:
    return pd.util.hash_pandas_object(frame[columns], index=False)


def measure(silver: pd.DataFrame, method: str, first_share: float, seed: int, trees: int) -> dict:
    """Train the champion on the first table, split the grown one; return the figures."""
    split = {
        "order-based": lambda rows: order_based_split(rows, seed),
        "row-hash": lambda rows: assign_splits(rows, SplitFractions(), seed),
    }[method]
    first = silver[silver["Time"] <= silver["Time"].quantile(first_share)]
    seen = split(first).query("split != 'test'")
    features = [str(name) for name in silver.columns if name not in EXCLUDED]
    params = {"n_estimators": trees, "learning_rate": 0.03, "max_depth": 6, "seed": 0}
    champion = build_pipeline(seen[features], xgboost_classifier(params))
    champion.fit(seen[features], seen["label"].to_numpy())
    test = split(silver).query("split == 'test'")
    was_seen = _row_keys(test, [*features, "Time"]).isin(set(_row_keys(seen, [*features, "Time"])))
    labels = test["label"].to_numpy()
    scores = positive_probability(champion, test[features])
    unseen = ~was_seen.to_numpy()

    def figures(mask: np.ndarray) -> tuple[float, float]:
        return (
            average_precision_score(labels[mask], scores[mask]),
            cohen_kappa_score(labels[mask], scores[mask] >= 0.5),
        )

    return {
        "seen_share": float(was_seen.mean()),
        "seen_positives": int(labels[~unseen].sum()),
        "positives": int(labels.sum()),
        "all": figures(np.ones(len(labels), dtype=bool)),
        "unseen": figures(unseen),
    }


def main(argv: Sequence[str] | None = None) -> None:
    """Measure both split methods and print one line each."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--csv", default=str(DEFAULT_CSV))
    parser.add_argument("--first-share", type=float, default=0.95)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--trees", type=int, default=1000)
    parser.add_argument("--rows", type=int, default=None, help="first N rows only (quick runs)")
    args = parser.parse_args(argv)
    silver = silver_from_csv(args.csv, rows=args.rows)
    print(
        f"{len(silver):,} rows; the champion trains on the first {args.first_share:.0%} "
        f"(by Time), then the table grows to all rows and is split again (seed {args.seed})"
    )
    for method in ("order-based", "row-hash"):
        row = measure(silver, method, args.first_share, args.seed, args.trees)
        (ap, kappa), (ap_unseen, kappa_unseen) = row["all"], row["unseen"]
        print(
            f"{method:>11}: {row['seen_share']:6.1%} of the test rows "
            f"({row['seen_positives']} of {row['positives']} positives) were champion training "
            f"rows; champion test PR AUC {ap:.3f} kappa {kappa:.3f}, on its unseen rows only "
            f"{ap_unseen:.3f} / {kappa_unseen:.3f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
