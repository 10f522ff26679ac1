"""Test PR AUC / kappa of final-model variants over several split seeds (issue 3's quality).

Per split seed: the data layer's split and resampling (as ``benchmarks/tuning.py``), the TPE
search exactly as ``tuned_model`` runs it (no MLflow), then these final models, each refitted
on train+valid and thresholded (kappa-optimal) on the validation scores of its train-only fit:

  winner       the best trial by validation kappa (what ``tuned_model`` registers)
  top3, top5   the mean probability of the 3 / 5 best trials
  bag5         the winner's parameters with 5 classifier seeds, probabilities averaged
  strong       untuned: no resampling, 1,000 trees, learning rate 0.03, depth 6
  defaults     untuned: XGBoost's defaults, no resampling

It prints one line per split seed (PR AUC / kappa per variant) and the mean PR AUC per variant,
so the spread across split seeds can be compared with the differences between models.

Usage:
  .venv/bin/python -m benchmarks.final_model_variants [--split-seeds 42,0,1,2,3]
      [--max-evals 25] [--resampling adasyn] [--csv PATH] [--rows N]
"""

from __future__ import annotations

import argparse
import statistics
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.data import silver_from_csv
from benchmarks.tuning import DEFAULT_CSV, prepare
from mlops_assets.core.evaluation import evaluate
from mlops_assets.core.final_model import final_parameters, refit_final
from mlops_assets.core.model import positive_probability, xgboost_classifier
from mlops_assets.core.thresholds import best_kappa_threshold
from mlops_assets.core.trial_fit import TrialFitter, search_matrices
from mlops_assets.core.trials import TrialRecorder, make_trials
from mlops_assets.core.tuning import make_objective, run_search, xgboost_space

warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
STRONG = {
    "max_depth": 6,
    "n_estimators": 1000,
    "learning_rate": 0.03,
    "subsample": 0.8,
    "colsample_bytree": 0.7,
}
Scores = tuple[np.ndarray, np.ndarray]  # validation scores (train-only fit), test scores


def _scores(data: Any, params: dict[str, Any]) -> Scores:
    """Validation scores of the train-only fit and test scores of the train+valid refit."""
    final = refit_final(data, xgboost_classifier, params)
    return final.valid_scores, positive_probability(final.bundle.pipeline, data.test.features)


def _figure(data: Any, scores: Sequence[Scores]) -> tuple[float, float]:
    """Test PR AUC and kappa of the mean of ``scores``, thresholded on validation."""
    valid = np.mean([pair[0] for pair in scores], axis=0)
    test = np.mean([pair[1] for pair in scores], axis=0)
    threshold = best_kappa_threshold(data.valid.labels, valid).threshold
    result = evaluate(data.test.labels, test, threshold, "split 'test'")
    return result.pr_auc, result.kappa


def variant_figures(
    silver: pd.DataFrame, split_seed: int, max_evals: int, resampling: str, seed: int = 42
) -> dict[str, tuple[float, float]]:
    """Search once on ``split_seed`` and return ``{variant: (test PR AUC, test kappa)}``."""
    data, method, _ = prepare(silver, split_seed, resampling, 0.1)
    plain, _, _ = prepare(silver, split_seed, "none", 0.1)  # the untuned baselines' rows
    fixed = {"seed": seed, "nthread": 2}
    fitter = TrialFitter(search_matrices(data.train, data.valid), 50)
    objective = make_objective(xgboost_classifier, fixed, fitter)
    recorder = TrialRecorder(lambda _: None)
    outcomes = run_search(
        objective, xgboost_space(method), make_trials(), recorder, max_evals, seed
    )
    ranked = sorted((o for o in outcomes if o.ok), key=lambda o: -o.kappa)
    top: list[Scores] = [_scores(data, {**final_parameters(o), **fixed}) for o in ranked[:5]]
    winner = {**final_parameters(ranked[0]), **fixed}
    bag = top[:1] + [_scores(data, {**winner, "seed": s}) for s in range(1, 5)]
    figures = {"winner": _figure(data, top[:1]), "top3": _figure(data, top[:3])}
    figures |= {"top5": _figure(data, top[:5]), "bag5": _figure(data, bag)}
    figures["strong"] = _figure(plain, [_scores(plain, {**STRONG, **fixed})])
    figures["defaults"] = _figure(plain, [_scores(plain, dict(fixed))])
    return figures


def main(argv: Sequence[str] | None = None) -> None:
    """Run every split seed and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--split-seeds", default="42,0,1,2,3")
    parser.add_argument("--max-evals", type=int, default=25)
    parser.add_argument("--resampling", default="adasyn")
    parser.add_argument("--csv", default=str(DEFAULT_CSV))
    parser.add_argument("--rows", type=int, default=None, help="first N rows only (quick runs)")
    args = parser.parse_args(argv)
    silver = silver_from_csv(args.csv, rows=args.rows)
    table: dict[int, dict[str, tuple[float, float]]] = {}
    for split_seed in (int(s) for s in args.split_seeds.split(",")):
        table[split_seed] = variant_figures(silver, split_seed, args.max_evals, args.resampling)
        cells = "  ".join(
            f"{k} {ap:.3f}/{kappa:.3f}" for k, (ap, kappa) in table[split_seed].items()
        )
        print(f"split seed {split_seed:>3}: {cells}  (test PR AUC / kappa)", flush=True)
    names = next(iter(table.values()))
    means = {name: statistics.mean(row[name][0] for row in table.values()) for name in names}
    print("mean test PR AUC: " + "  ".join(f"{k} {v:.3f}" for k, v in means.items()))


if __name__ == "__main__":
    main()
