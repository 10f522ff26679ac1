"""Console scripts: ``mlops demo | dev | ...`` and ``mlops-serve``.

Every command runs against the project-local state folder (``.state`` or MLOPS_STATE_DIR):
DAGSTER_HOME is pointed there and seeded with the project's ``dagster.yaml`` on first use.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
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


@click.group()
@click.option("--state-dir", envvar="MLOPS_STATE_DIR", default=None, help="State folder.")
@click.pass_context
def main(ctx: click.Context, state_dir: str | None) -> None:
    """mlops_assets: local-first MLOps for tabular binary classification."""
    if state_dir:
        os.environ["MLOPS_STATE_DIR"] = str(Path(state_dir).resolve())
    ctx.obj = state_paths(state_dir)


@main.command()
@click.pass_obj
def demo(paths: StatePaths) -> None:
    """Run the main job end to end on the embedded default and print a summary."""
    prepare_dagster_home(paths, os.environ.get("MLOPS_PROFILE"))
    import dagster as dg

    from mlops_assets.definitions import defs
    from mlops_assets.defs.jobs import MAIN_JOB_NAME

    started = time.perf_counter()
    with dg.DagsterInstance.get() as instance:
        result = defs.get_job_def(MAIN_JOB_NAME).execute_in_process(
            instance=instance, raise_on_error=False
        )
    seconds = time.perf_counter() - started
    click.echo(f"\nmain_job {'succeeded' if result.success else 'FAILED'} in {seconds:.1f} s")
    for event in result.get_asset_materialization_events():
        materialization = event.materialization
        facts = ", ".join(
            f"{key}={value.value}"
            for key, value in materialization.metadata.items()
            if isinstance(value.value, int | float | str) and len(str(value.value)) < 60
        )
        click.echo(f"  {materialization.asset_key.to_user_string():<28} {facts}")
    sys.exit(0 if result.success else 1)


@main.command()
@click.option("--port", default=3000, show_default=True)
@click.pass_obj
def dev(paths: StatePaths, port: int) -> None:
    """Start ``dagster dev`` (UI + daemon) on the project-local instance."""
    prepare_dagster_home(paths, os.environ.get("MLOPS_PROFILE"))
    command = [sys.executable, "-m", "dagster", "dev", "-w", "workspace.yaml", "-p", str(port)]
    raise SystemExit(subprocess.call(command, cwd=PROJECT_ROOT))


def serve_main() -> None:
    """Entry point of ``mlops-serve`` (the same as ``mlops serve``)."""
    main(["serve", *sys.argv[1:]])
