"""How a promotion decision reads in the UI: a markdown summary and a bootstrap histogram.

The histogram is drawn with matplotlib's object API on the Agg canvas (no pyplot global
state, safe off the main thread) and embedded in markdown as a base64 PNG.
"""

from __future__ import annotations

import base64
import io
import json

import numpy as np

from mlops_assets.core.champion import ChampionOutcome
from mlops_assets.core.guardrails import PromotionPolicy
from mlops_assets.core.promotion import BootstrapSummary

SHOWN_METRICS = ("kappa", "f1", "pr_auc", "roc_auc", "precision", "recall", "threshold")


def bootstrap_histogram_png(summary: BootstrapSummary, min_prob: float) -> bytes:
    """Histogram of the resampled kappa differences (challenger minus champion).

    Args:
        summary: The paired bootstrap.
        min_prob: The required probability of improvement, shown in the title.

    Returns:
        PNG bytes.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5.0, 3.4))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    deltas = np.asarray(summary.kappa_deltas)
    spread = float(deltas.max() - deltas.min())
    axes.hist(deltas, bins=40 if spread > 0 else 1, color="tab:blue", alpha=0.8)
    axes.axvline(0.0, color="black", linewidth=1.0)
    for bound in summary.kappa_delta_ci:
        axes.axvline(bound, color="tab:red", linestyle="--", linewidth=0.9)
    axes.set_title(
        f"kappa delta, {summary.resamples} resamples: "
        f"P(>0)={summary.prob_kappa_improves:.3f} (need {min_prob:.2f})",
        fontsize=9,
    )
    axes.set_xlabel("challenger kappa - champion kappa (95 % interval dashed)")
    axes.set_ylabel("resamples")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return buffer.getvalue()


def png_markdown(png: bytes, title: str) -> str:
    """Embed PNG bytes as a markdown image."""
    return f"![{title}](data:image/png;base64,{base64.b64encode(png).decode()})"


def _cell(metrics: dict[str, float], name: str) -> str:
    value = metrics.get(name)
    return "-" if value is None else f"{value:.4f}"


def decision_markdown(outcome: ChampionOutcome, policy: PromotionPolicy) -> str:
    """The decision, the metrics side by side, the guardrails, the bootstrap and alias moves."""
    record = outcome.record
    if outcome.decision is None:
        lines = [f"**Already decided** for challenger v{outcome.challenger_version}."]
        lines.append(f"\n{outcome.reason}")
        return "\n".join(lines)
    verdict = "PROMOTED" if outcome.decision.promote else "KEPT champion"
    champion = f"v{outcome.champion_before}" if outcome.champion_before is not None else "none"
    lines = [
        f"**{verdict}**: challenger v{outcome.challenger_version} vs champion {champion}",
        "",
        f"Reason: {outcome.reason}",
        "",
        f"| metric ({record.splits_table if record else 'test rows'}) | challenger | champion |",
        "| --- | ---: | ---: |",
    ]
    for name in SHOWN_METRICS:
        lines.append(
            f"| {name} | {_cell(outcome.challenger_metrics, name)} "
            f"| {_cell(outcome.champion_metrics, name)} |"
        )
    lines += ["", "| guardrail | passed | detail |", "| --- | --- | --- |"]
    for result in outcome.decision.guardrails:
        passed = "yes" if result.passed else "**no**"
        lines.append(f"| {result.name} | {passed} | {result.detail} |")
    boot = outcome.bootstrap
    if boot is not None:
        lines += [
            "",
            f"Paired bootstrap ({boot.resamples} resamples of {boot.rows} rows, seed {boot.seed}):",
            f"kappa delta {boot.kappa_delta_mean:+.4f} "
            f"[{boot.kappa_delta_ci[0]:+.4f}, {boot.kappa_delta_ci[1]:+.4f}], "
            f"P(kappa improves) {boot.prob_kappa_improves:.3f} "
            f"(need >= {policy.min_prob_kappa_improves:.2f}); "
            f"F1 delta {boot.f1_delta_mean:+.4f} "
            f"[{boot.f1_delta_ci[0]:+.4f}, {boot.f1_delta_ci[1]:+.4f}] "
            f"(tolerance {policy.f1_tolerance:.4f})",
        ]
    if outcome.moves:
        lines += ["", "Alias moves: " + ", ".join(move.describe() for move in outcome.moves)]
    return "\n".join(lines)


def guardrails_json(outcome: ChampionOutcome) -> list[dict]:
    """Guardrail outcomes of this run, or of the earlier decision when already decided."""
    if outcome.decision is not None:
        return [result.__dict__ for result in outcome.decision.guardrails]
    return json.loads(outcome.record.guardrails) if outcome.record is not None else []
