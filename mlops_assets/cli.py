"""Console scripts: ``mlops demo | dev | ...`` and ``mlops-serve``.

Every command runs against the project-local state folder (``.state`` or MLOPS_STATE_DIR):
DAGSTER_HOME is pointed there and seeded with the project's ``dagster.yaml`` on first use.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import click

from mlops_assets.core.paths import PROJECT_ROOT, StatePaths, state_paths


def prepare_dagster_home(paths: StatePaths, profile: str | None = None) -> Path:
    """Point DAGSTER_HOME at the state folder and seed its ``dagster.yaml``.

    Args:
        paths: The state folder.
        profile: ``production`` copies ``deploy/production/dagster.yaml``; else the embedded one.

    Returns:
        The Dagster home folder.
    """
    home = paths.ensure().dagster_home
    source = (
        PROJECT_ROOT / "deploy" / "production" / "dagster.yaml"
        if profile == "production"
        else PROJECT_ROOT / "dagster.yaml"
    )
    shutil.copyfile(source, home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def _quiet_libraries() -> None:
    """Hide library notices (beta APIs, schema hints) that would bury the progress lines."""
    warnings.filterwarnings("ignore", module=r"(dagster|mlflow)(\.|$)")


@click.group()
@click.option("--state-dir", envvar="MLOPS_STATE_DIR", default=None, help="State folder.")
@click.pass_context
def main(ctx: click.Context, state_dir: str | None) -> None:
    """mlops_assets: local-first MLOps for tabular binary classification."""
    if state_dir:
        os.environ["MLOPS_STATE_DIR"] = str(Path(state_dir).resolve())
    ctx.obj = state_paths(state_dir)


@main.command()
@click.option(
    "--source", type=click.Choice(["auto", "synthetic"]), default="auto", show_default=True
)
@click.option("--rows", type=int, default=20_000, show_default=True, help="Synthetic rows.")
@click.option("--positive-rate", type=float, default=0.01, show_default=True)
@click.option("--max-evals", type=int, default=4, show_default=True, help="First model's budget.")
@click.option("--retrain-max-evals", type=int, default=4, show_default=True)
@click.option("--normal-rows", type=int, default=3000, show_default=True)
@click.option("--drifted-rows", type=int, default=4000, show_default=True)
@click.option("--rate", type=float, default=1000.0, show_default=True, help="Rows per second.")
@click.option("--drift-shift", default="V3=2.0,V14=-1.5", show_default=True)
@click.option("--fraud-pattern-change", type=float, default=1.0, show_default=True)
@click.option("--drift-positive-rate", type=float, default=0.05, show_default=True)
@click.option("--feedback-delay", type=float, default=1.0, show_default=True, help="Seconds.")
@click.option("--timeout", type=float, default=600.0, show_default=True, help="Retraining wait.")
@click.option("--summary-json", type=click.Path(dir_okay=False), default=None)
@click.pass_obj
def demo(paths: StatePaths, **options) -> None:
    """Run the whole loop: serve, train, traffic, drift, sensor-launched retraining, redeploy."""
    prepare_dagster_home(paths, os.environ.get("MLOPS_PROFILE"))
    from mlops_assets.core.traffic_drift import parse_assignments
    from mlops_assets.loop import LoopSettings, run_loop

    _quiet_libraries()

    try:
        settings = LoopSettings(
            source=options["source"],
            rows=options["rows"],
            positive_rate=options["positive_rate"],
            max_evals=options["max_evals"],
            retrain_max_evals=options["retrain_max_evals"],
            normal_rows=options["normal_rows"],
            drifted_rows=options["drifted_rows"],
            rate=options["rate"],
            drift_shift=parse_assignments(options["drift_shift"], "--drift-shift"),
            fraud_pattern_change=options["fraud_pattern_change"],
            drift_positive_rate=options["drift_positive_rate"],
            feedback_delay_s=options["feedback_delay"],
            retrain_timeout_s=options["timeout"],
        )
    except ValueError as error:
        raise click.UsageError(str(error)) from error
    summary = run_loop(paths, settings, lambda line: click.echo(line, err=True))
    click.echo("")
    for line in summary.lines():
        click.echo(line)
    if options["summary_json"]:
        Path(options["summary_json"]).write_text(summary.to_json())
    sys.exit(0 if summary.completed else 1)


@main.command()
@click.option("--port", default=3000, show_default=True)
@click.pass_obj
def dev(paths: StatePaths, port: int) -> None:
    """Start ``dagster dev`` (UI + daemon) on the project-local instance."""
    prepare_dagster_home(paths, os.environ.get("MLOPS_PROFILE"))
    command = [sys.executable, "-m", "dagster", "dev", "-w", "workspace.yaml", "-p", str(port)]
    raise SystemExit(subprocess.call(command, cwd=PROJECT_ROOT))


@main.command()
@click.option("--host", envvar="MLOPS_SERVE_HOST", default="127.0.0.1", show_default=True)
@click.option("--port", envvar="MLOPS_SERVE_PORT", default=8080, show_default=True, type=int)
@click.option("--model-name", envvar="MLOPS_MODEL_NAME", default=None, help="Registered model.")
@click.option("--alias", envvar="MLOPS_MODEL_ALIAS", default="champion", show_default=True)
@click.option("--canary-alias", envvar="MLOPS_CANARY_ALIAS", default=None)
@click.option("--canary-fraction", envvar="MLOPS_CANARY_FRACTION", default=0.0, type=float)
@click.option("--delta-root", envvar="MLOPS_LAKEHOUSE_ROOT", default=None, help="Lakehouse root.")
@click.option("--tracking-uri", envvar="MLFLOW_TRACKING_URI", default=None)
@click.option("--registry-uri", envvar="MLFLOW_REGISTRY_URI", default=None)
@click.option(
    "--admin-token",
    envvar="MLOPS_ADMIN_TOKEN",
    default=None,
    help="Bearer token for /admin (prefer the env var; admin is off when unset).",
)
@click.option("--poll-interval", envvar="MLOPS_SERVE_POLL_INTERVAL", default=10.0, type=float)
@click.option("--max-rows", envvar="MLOPS_SERVE_MAX_ROWS", default=1000, type=int)
@click.option("--max-body-bytes", envvar="MLOPS_SERVE_MAX_BODY_BYTES", default=1 << 20, type=int)
@click.option(
    "--unexpected-columns",
    envvar="MLOPS_SERVE_UNEXPECTED_COLUMNS",
    type=click.Choice(["reject", "ignore"]),
    default="reject",
    show_default=True,
)
@click.option("--wal-dir", envvar="MLOPS_SERVE_WAL_DIR", default=None, help="Write-ahead log.")
@click.option("--log/--no-log", "log_enabled", envvar="MLOPS_SERVE_LOG", default=True)
@click.option("--log-flush-interval", envvar="MLOPS_SERVE_LOG_FLUSH_INTERVAL", default=1.0)
@click.option("--log-batch-records", envvar="MLOPS_SERVE_LOG_BATCH_RECORDS", default=5000)
@click.option("--log-max-backlog-bytes", envvar="MLOPS_SERVE_LOG_MAX_BACKLOG", default=64 << 20)
@click.option("--wal-segment-bytes", envvar="MLOPS_SERVE_WAL_SEGMENT_BYTES", default=8 << 20)
@click.option("--drain-timeout", envvar="MLOPS_SERVE_DRAIN_TIMEOUT", default=60.0, type=float)
@click.option("--log-level", envvar="MLOPS_SERVE_LOG_LEVEL", default="info")
@click.pass_obj
def serve(paths: StatePaths, **options) -> None:
    """Serve the registered model's champion over HTTP (see README, "Serving")."""
    from mlops_assets.constants import REGISTERED_MODEL_NAME
    from mlops_assets.serving.server import run
    from mlops_assets.serving.settings import ServeSettings

    paths.ensure()
    try:
        settings = ServeSettings(
            host=options["host"],
            port=options["port"],
            model_name=options["model_name"] or REGISTERED_MODEL_NAME,
            alias=options["alias"],
            canary_alias=options["canary_alias"] or None,
            canary_fraction=options["canary_fraction"],
            delta_root=options["delta_root"] or str(paths.lakehouse),
            tracking_uri=options["tracking_uri"] or paths.mlflow_tracking_uri,
            registry_uri=options["registry_uri"] or None,
            admin_token=options["admin_token"] or None,
            poll_interval_s=options["poll_interval"],
            max_rows=options["max_rows"],
            max_body_bytes=options["max_body_bytes"],
            unexpected_columns=options["unexpected_columns"],
            wal_dir=options["wal_dir"] or str(paths.serving / "wal"),
            log_enabled=options["log_enabled"],
            log_flush_interval_s=options["log_flush_interval"],
            log_batch_records=options["log_batch_records"],
            log_max_backlog_bytes=options["log_max_backlog_bytes"],
            wal_segment_bytes=options["wal_segment_bytes"],
            drain_timeout_s=options["drain_timeout"],
        )
    except ValueError as error:
        raise click.UsageError(str(error)) from error
    run(settings, log_level=options["log_level"])


@main.command()
@click.option(
    "--url", envvar="MLOPS_SERVING_URL", default="http://127.0.0.1:8080", show_default=True
)
@click.option("--rows", type=int, default=None, help="Rows to send [default: 2000, or the tail].")
@click.option("--duration", type=float, default=None, help="Stop after this many seconds.")
@click.option("--rate", type=float, default=200.0, show_default=True, help="Rows per second.")
@click.option("--batch-rows", type=int, default=20, show_default=True, help="Rows per request.")
@click.option("--concurrency", type=int, default=4, show_default=True)
@click.option(
    "--source",
    type=click.Choice(["configured", "synthetic", "file"]),
    default="configured",
    show_default=True,
    help="configured: the data assets' DataSource (its hold-out tail, or fresh synthetic rows).",
)
@click.option("--path", default=None, help="file: CSV/Parquet whose tail is replayed.")
@click.option("--target-column", default="Class", show_default=True)
@click.option("--positive-label", default="1", show_default=True)
@click.option("--delimiter", default=",", show_default=True)
@click.option("--holdout-fraction", type=float, default=0.2, show_default=True)
@click.option("--order-column", default="Time", show_default=True)
@click.option("--seed", type=int, default=None, help="Traffic seed [default: training seed+1000].")
@click.option("--positive-rate", type=float, default=None, help="synthetic: fraud share.")
@click.option("--drift-shift", default="", help="COLUMN=STD,... e.g. V3=2.0,V14=-1.5")
@click.option("--drift-scale", default="", help="COLUMN=FACTOR,... spread multipliers.")
@click.option("--fraud-pattern-change", type=float, default=0.0, help="0..1")
@click.option("--drift-positive-rate", type=float, default=None, help="Fraud share once drifted.")
@click.option("--drift-after", type=int, default=0, show_default=True, help="Clean rows first.")
@click.option("--feedback-share", type=float, default=1.0, show_default=True)
@click.option("--feedback-delay", type=float, default=2.0, show_default=True, help="Seconds.")
@click.option("--ready-timeout", type=float, default=60.0, show_default=True)
@click.option("--progress-interval", type=float, default=2.0, show_default=True)
@click.option("--summary-json", type=click.Path(dir_okay=False), default=None)
@click.pass_obj
def simulate(paths: StatePaths, **options) -> None:
    """Replay production traffic (rows no model trained on) against a running server."""
    from mlops_assets import simulation, traffic_setup

    _quiet_libraries()
    try:
        rows, settings = traffic_setup.plan_from_options(options)
    except ValueError as error:  # SourceError is a ValueError too
        raise click.UsageError(str(error)) from error
    click.echo(f"traffic: {rows.description}", err=True)
    show = traffic_setup.progress_printer(sys.stderr)
    try:
        summary = simulation.run_simulation(
            options["url"], rows, settings, show, options["ready_timeout"]
        )
    except simulation.SimulationError as error:
        raise click.ClickException(str(error)) from error
    if sys.stderr.isatty():
        click.echo("", err=True)  # end the refreshed progress line
    for line in summary.lines():
        click.echo(line)
    if options["summary_json"]:
        Path(options["summary_json"]).write_text(traffic_setup.summary_json(summary))
    sys.exit(0 if summary.rows_answered else 1)


@main.command()
@click.option(
    "--serving-url", envvar="MLOPS_SERVING_URL", default=None, help="Serving endpoint URL."
)
@click.option(
    "--wait-timeout", type=float, default=60.0, show_default=True, help="Seconds to wait."
)
@click.pass_obj
def rollback(paths: StatePaths, serving_url: str | None, wait_timeout: float) -> None:
    """Move champion back to previous_champion, deploy it, record both (runs rollback_job)."""
    prepare_dagster_home(paths, os.environ.get("MLOPS_PROFILE"))
    if serving_url:
        os.environ["MLOPS_SERVING_URL"] = serving_url
    import dagster as dg

    from mlops_assets.definitions import build_definitions, build_resources
    from mlops_assets.defs.deployment import ROLLBACK_JOB_NAME

    job = build_definitions(build_resources()).resolve_job_def(ROLLBACK_JOB_NAME)
    config = {"ops": {"champion_rollback": {"config": {"wait_timeout_s": wait_timeout}}}}
    with dg.DagsterInstance.get() as instance:
        result = job.execute_in_process(run_config=config, instance=instance, raise_on_error=False)
    if result.success:
        record = result.output_for_node("champion_rollback")
        click.echo(f"{record.status}: {record.reason}")
        return
    failures = [event for event in result.all_events if event.is_step_failure]
    error = failures[0].step_failure_data.error if failures else None
    message = error.message.strip() if error is not None else "rollback_job failed"
    message = message.removeprefix(f"{dg.Failure.__module__}.Failure: ")
    raise click.ClickException(f"rollback failed (run {result.run_id}): {message}")


def serve_main() -> None:
    """Entry point of ``mlops-serve`` (the same as ``mlops serve``)."""
    main(["serve", *sys.argv[1:]])
