"""Deployment assets (group ``deployment``): the champion decision and the live endpoint.

``champion_model`` compares the challenger with the champion and moves the aliases;
``model_deployment`` makes the champion live on the serving endpoint (rolling back on a
failed smoke test); ``rollback_job`` moves ``champion`` back to ``previous_champion`` and
deploys it. All three append to the ``promotions`` / ``deployments`` Delta tables.
"""

import dagster as dg
from pydantic import Field

from mlops_assets.constants import DEPLOYMENT_GROUP
from mlops_assets.core.aliases import AliasError
from mlops_assets.core.champion import ChampionOutcome, select_champion
from mlops_assets.core.comparison import test_rows
from mlops_assets.core.deployment import DeploySettings
from mlops_assets.core.guardrails import PromotionPolicy
from mlops_assets.core.history import DeploymentRecord
from mlops_assets.core.promotion_report import (
    bootstrap_histogram_png,
    decision_markdown,
    guardrails_json,
    png_markdown,
)
from mlops_assets.core.registry import RegisteredVersion, connect
from mlops_assets.core.rollout import Release, Rollout, deploy_champion, rollback_champion
from mlops_assets.core.tables import TableRef
from mlops_assets.resources import Lakehouse, MlflowRegistry, ServingEndpoint

ROLLBACK_JOB_NAME = "rollback_job"


class PromotionConfig(dg.Config):
    """Statistics and guardrails of the champion/challenger decision."""

    resamples: int = Field(default=1000, description="Paired bootstrap resamples (>= 1).")
    seed: int = Field(default=0, description="Seed of the bootstrap resampling.")
    min_prob_kappa_improves: float = Field(
        default=0.9, description="Required bootstrap probability that kappa improves."
    )
    f1_tolerance: float = Field(
        default=0.01, description="How much lower the challenger's mean F1 may be."
    )
    min_kappa: float = Field(default=0.5, description="Guardrail: minimum test kappa.")
    min_pr_auc: float = Field(default=0.5, description="Guardrail: minimum test PR AUC.")
    max_latency_ms_per_row: float = Field(
        default=20.0, description="Guardrail: median single-row prediction latency budget (ms)."
    )
    allow_contract_change: bool = Field(
        default=False, description="Accept a challenger whose serving input contract differs."
    )

    def policy(self) -> PromotionPolicy:
        """The core policy of this configuration."""
        return PromotionPolicy(
            min_prob_kappa_improves=self.min_prob_kappa_improves,
            f1_tolerance=self.f1_tolerance,
            min_kappa=self.min_kappa,
            min_pr_auc=self.min_pr_auc,
            max_latency_ms_per_row=self.max_latency_ms_per_row,
            allow_contract_change=self.allow_contract_change,
        )


class DeploymentConfig(dg.Config):
    """Bounds of a deployment: waits and the smoke test."""

    wait_timeout_s: float = Field(
        default=60.0, description="Longest wait for the server to report the version (s)."
    )
    poll_interval_s: float = Field(default=0.5, description="Seconds between /model polls.")
    smoke_rows: int = Field(default=20, description="Test rows scored in the smoke test.")
    tolerance: float = Field(
        default=1e-6, description="Largest accepted probability difference server vs offline."
    )
    smoke_attempts: int = Field(
        default=5, description="Smoke requests tried while a canary version answers."
    )

    def settings(self) -> DeploySettings:
        """The core settings of this configuration."""
        return DeploySettings(
            self.wait_timeout_s,
            self.poll_interval_s,
            self.smoke_rows,
            self.tolerance,
            self.smoke_attempts,
        )


def _champion_metadata(outcome: ChampionOutcome, policy: PromotionPolicy) -> dict:
    decision = "already decided" if outcome.already_decided else "keep"
    if outcome.decision is not None and outcome.decision.promote:
        decision = "promote"
    metadata = {
        "decision": decision,
        "reason": outcome.reason,
        "challenger_version": outcome.challenger_version,
        "champion_before": outcome.champion_before if outcome.champion_before else "none",
        "champion_version": outcome.champion_after if outcome.champion_after else "none",
        "alias_moves": [move.describe() for move in outcome.moves],
        "guardrails": dg.MetadataValue.json(guardrails_json(outcome)),
        "summary": dg.MetadataValue.md(decision_markdown(outcome, policy)),
    }
    boot = outcome.bootstrap
    if boot is not None:
        png = bootstrap_histogram_png(boot, policy.min_prob_kappa_improves)
        metadata["bootstrap_histogram"] = dg.MetadataValue.md(png_markdown(png, "kappa delta"))
        metadata["prob_kappa_improves"] = boot.prob_kappa_improves
        metadata["kappa_delta_mean"] = boot.kappa_delta_mean
        metadata["f1_delta_mean"] = boot.f1_delta_mean
    if outcome.seen_rows is not None:
        metadata["champion_training_rows"] = outcome.seen_rows.detail
        metadata["champion_training_rows_dropped"] = outcome.seen_rows.dropped
    return metadata


@dg.asset(group_name=DEPLOYMENT_GROUP, kinds={"mlflow", "delta"})
def champion_model(
    context: dg.AssetExecutionContext,
    config: PromotionConfig,
    lakehouse: Lakehouse,
    mlflow: MlflowRegistry,
    registered_model_version: RegisteredVersion,
    training_splits: TableRef,
) -> dg.Output[ChampionOutcome]:
    """The champion after a paired bootstrap vs the challenger, guardrails and alias moves."""
    connect(mlflow.target())
    tables = lakehouse.tables()
    splits = tables.read(training_splits.name, training_splits.version)
    outcome = select_champion(
        mlflow.target().client(),
        tables,
        registered_model_version.name,
        int(registered_model_version.version),
        test_rows(splits, training_splits.describe()),
        config.policy(),
        config.resamples,
        config.seed,
        context.run_id,
        splits_name=training_splits.name,
    )
    if outcome.seen_rows is not None:
        context.log.info(outcome.seen_rows.detail)
    return dg.Output(outcome, metadata=_champion_metadata(outcome, config.policy()))


def _rollout_metadata(rollout: Rollout) -> dict:
    record, smoke = rollout.record, rollout.outcome.smoke
    metadata = {
        "status": record.status,
        "reason": record.reason,
        "version": record.version,
        "previous_version": record.previous_version or "none",
        "serving_version": record.serving_version or "none",
        "server_url": dg.MetadataValue.url(record.server_url),
        "seconds": record.seconds,
        "alias_moves": [move.describe() for move in rollout.moves],
    }
    if smoke is not None:
        metadata["smoke_test"] = smoke.detail
        metadata["smoke_passed"] = smoke.passed
    return metadata


def _release(context, config: DeploymentConfig, lakehouse, mlflow, serving, name: str) -> Release:
    connect(mlflow.target())
    return Release(
        mlflow.target().client(),
        lakehouse.tables(),
        name,
        serving.url,
        config.settings(),
        context.run_id,
    )


@dg.asset(group_name=DEPLOYMENT_GROUP, kinds={"mlflow", "delta", "fastapi"})
def model_deployment(
    context: dg.AssetExecutionContext,
    config: DeploymentConfig,
    lakehouse: Lakehouse,
    mlflow: MlflowRegistry,
    serving: ServingEndpoint,
    champion_model: ChampionOutcome,
    training_splits: TableRef,
) -> dg.Output[DeploymentRecord | None]:
    """The champion live on the serving endpoint: reload, smoke test, rollback on failure."""
    release = _release(context, config, lakehouse, mlflow, serving, champion_model.model_name)
    splits = release.engine.read(training_splits.name, training_splits.version)
    rollout = deploy_champion(release, serving, test_rows(splits, training_splits.describe()))
    if rollout is None:
        reason = f"no version of {champion_model.model_name!r} is champion: nothing to deploy"
        return dg.Output(None, metadata={"status": "skipped", "reason": reason})
    metadata = _rollout_metadata(rollout)
    if rollout.status in ("rolled_back", "failed"):
        raise dg.Failure(description=rollout.record.reason, metadata=metadata)
    return dg.Output(rollout.record, metadata=metadata)


@dg.op(description="Move champion back to previous_champion, deploy it, record both tables.")
def champion_rollback(
    context: dg.OpExecutionContext,
    config: DeploymentConfig,
    lakehouse: Lakehouse,
    mlflow: MlflowRegistry,
    serving: ServingEndpoint,
) -> dg.Output[DeploymentRecord]:
    """Roll the champion back and report the deployment row."""
    release = _release(context, config, lakehouse, mlflow, serving, mlflow.model_name)
    try:
        rollout = rollback_champion(release, serving)
    except AliasError as error:
        raise dg.Failure(description=str(error)) from error
    metadata = _rollout_metadata(rollout)
    context.log_event(dg.AssetObservation(asset_key="model_deployment", metadata=metadata))
    if rollout.status == "failed":
        raise dg.Failure(description=rollout.record.reason, metadata=metadata)
    return dg.Output(rollout.record, metadata=metadata)


@dg.job(name=ROLLBACK_JOB_NAME, description="Roll the champion back to previous_champion.")
def rollback_job() -> None:
    """Move ``champion`` back to ``previous_champion`` and deploy it."""
    champion_rollback()


JOBS = [rollback_job]
