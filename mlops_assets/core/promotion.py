"""Champion/challenger statistics: a seeded paired bootstrap and the promotion decision.

The bootstrap resamples test rows with replacement, the same rows for both models (paired),
and recomputes Cohen's kappa and F1 of each model on every resample. Each row is reduced to
one of eight categories (true label x champion label x challenger label), so a resample is a
``bincount`` and a thousand resamples of 60,000 rows take well under a second.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

_CATEGORIES = 8


@dataclass(frozen=True)
class BootstrapSummary:
    """Paired bootstrap of challenger minus champion.

    Attributes:
        resamples: Number of bootstrap resamples.
        seed: Seed of the resampling.
        rows: Test rows compared.
        kappa_delta_mean: Mean of challenger kappa minus champion kappa.
        kappa_delta_ci: 95 % percentile interval of that difference.
        f1_delta_mean: Mean of challenger F1 minus champion F1.
        f1_delta_ci: 95 % percentile interval of that difference.
        prob_kappa_improves: Share of resamples where the challenger's kappa is higher.
        kappa_deltas: Every resample's kappa difference (for the histogram).
    """

    resamples: int
    seed: int
    rows: int
    kappa_delta_mean: float
    kappa_delta_ci: tuple[float, float]
    f1_delta_mean: float
    f1_delta_ci: tuple[float, float]
    prob_kappa_improves: float
    kappa_deltas: tuple[float, ...] = field(repr=False)


def kappa_and_f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, tn: np.ndarray):
    """Cohen's kappa and F1 from (arrays of) binary confusion counts.

    Returns:
        ``(kappa, f1)`` as float arrays; 0 where undefined (no positives predicted or true).
    """
    tp, fp, fn, tn = (np.asarray(x, dtype=np.float64) for x in (tp, fp, fn, tn))
    n = tp + fp + fn + tn
    observed = (tp + tn) / n
    expected = ((tp + fp) * (tp + fn) + (fn + tn) * (fp + tn)) / (n * n)
    with np.errstate(divide="ignore", invalid="ignore"):
        kappa = np.where(expected < 1.0, (observed - expected) / (1.0 - expected), 0.0)
        f1 = np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0)
    return kappa, f1


def _confusions(counts: np.ndarray, model_bit: int):
    """Split 8-category counts into the confusion counts of one model (bit 1 or 0)."""
    truth = np.arange(_CATEGORIES) >> 2
    predicted = (np.arange(_CATEGORIES) >> model_bit) & 1

    def total(t: int, p: int) -> np.ndarray:
        return counts[..., (truth == t) & (predicted == p)].sum(axis=-1)

    return total(1, 1), total(0, 1), total(1, 0), total(0, 0)


def paired_bootstrap(
    y_true: np.ndarray,
    champion_labels: np.ndarray,
    challenger_labels: np.ndarray,
    resamples: int = 1000,
    seed: int = 0,
) -> BootstrapSummary:
    """Bootstrap the kappa and F1 differences of two models on the same rows.

    Args:
        y_true: True 0/1 labels.
        champion_labels: The champion's 0/1 predictions on those rows.
        challenger_labels: The challenger's 0/1 predictions on those rows.
        resamples: Number of resamples (at least 1).
        seed: Seed of the resampling.

    Returns:
        The summary, with every resample's kappa difference.

    Raises:
        ValueError: When the arrays differ in length, are empty, or ``resamples < 1``.
    """
    truth, champion, challenger = (
        np.asarray(x).astype(np.int64).ravel() for x in (y_true, champion_labels, challenger_labels)
    )
    if not (len(truth) == len(champion) == len(challenger)):
        raise ValueError(
            f"paired bootstrap needs equal lengths: labels {len(truth)}, "
            f"champion {len(champion)}, challenger {len(challenger)}"
        )
    if len(truth) == 0 or resamples < 1:
        raise ValueError(f"paired bootstrap needs rows and resamples >= 1 (got {resamples})")
    category = truth * 4 + champion * 2 + challenger
    rng = np.random.default_rng(seed)
    counts = np.empty((resamples, _CATEGORIES), dtype=np.int64)
    for index in range(resamples):
        sample = category[rng.integers(0, len(category), len(category))]
        counts[index] = np.bincount(sample, minlength=_CATEGORIES)
    champion_kappa, champion_f1 = kappa_and_f1(*_confusions(counts, 1))
    challenger_kappa, challenger_f1 = kappa_and_f1(*_confusions(counts, 0))
    kappa_delta = challenger_kappa - champion_kappa
    f1_delta = challenger_f1 - champion_f1
    return BootstrapSummary(
        resamples=resamples,
        seed=seed,
        rows=len(truth),
        kappa_delta_mean=float(kappa_delta.mean()),
        kappa_delta_ci=tuple(float(x) for x in np.percentile(kappa_delta, [2.5, 97.5])),
        f1_delta_mean=float(f1_delta.mean()),
        f1_delta_ci=tuple(float(x) for x in np.percentile(f1_delta, [2.5, 97.5])),
        prob_kappa_improves=float((kappa_delta > 0).mean()),
        kappa_deltas=tuple(float(x) for x in kappa_delta),
    )
