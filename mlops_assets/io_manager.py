"""How asset values travel between steps: one file per (asset, run), never shared by two runs.

Dagster's default ``FilesystemIOManager`` keeps one file per asset key. Two runs of the same
assets at once then overwrite each other's values between the step that produces a value and
the step that reads it: two concurrent training runs both decided on the second run's
registered version (one champion decision went missing), and a run could read another run's
split versions. This manager writes ``<storage>/asset_values/<asset key>/<run id>.pickle``:

* a step reads the value its own run produced (for a re-execution, the run that produced it);
* an upstream asset that this run does not materialize is read from that asset's latest
  materialization, as the instance records it (the same meaning as Dagster's default);
* values stored by the previous layout (``<storage>/<asset key>``) are still read.

The values are the small frozen dataclasses the assets return (table references, registered
versions, decisions), pickled like the default manager does; request data never goes
through here. Files are written to a temporary name and renamed, so a reader never sees a
half-written value. ``<storage>`` is the instance's storage folder (``DAGSTER_HOME/storage``)
unless ``base_dir`` is set: on Kubernetes point it at a volume every run pod mounts.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field

VALUES_FOLDER = "asset_values"
# the run id Dagster gives the output context of an upstream asset outside this run's plan
# (``dagster._core.execution.context.output.RUN_ID_PLACEHOLDER``, private, hence copied)
_NO_RUN = "__EPHEMERAL_RUN_ID"


class RunScopedIOManager(dg.ConfigurableIOManager):
    """Pickles each asset value to a file of its own run; reads the producing run's file."""

    base_dir: str | None = Field(
        default=None,
        description="Folder of the values; default: the instance's storage folder.",
    )

    def _storage(self, instance: Callable[[], dg.DagsterInstance]) -> Path:
        return Path(self.base_dir) if self.base_dir else Path(instance().storage_directory())

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        """Store ``obj`` as this run's value of the output's asset."""
        path = self._value_path(self._storage(lambda: context.step_context.instance), context, None)
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as file:
            pickle.dump(obj, file, protocol=pickle.HIGHEST_PROTOCOL)
            temporary = Path(file.name)
        os.replace(temporary, path)
        context.add_output_metadata({"value_path": str(path)})

    def load_input(self, context: dg.InputContext) -> Any:
        """Read the upstream value of this run, or of the upstream asset's latest run."""
        storage = self._storage(lambda: context.instance)
        upstream = context.upstream_output
        run_id = _producing_run(upstream)
        if run_id is None and context.has_asset_key:
            event = context.instance.get_latest_materialization_event(context.asset_key)
            if event is None:
                raise dg.DagsterInvariantViolationError(
                    f"asset {context.asset_key.to_user_string()!r} has no materialization to "
                    "read: materialize it first (or together with this asset)"
                )
            run_id = event.run_id
        path = self._value_path(storage, upstream, run_id)
        legacy = storage.joinpath(*context.asset_key.path) if context.has_asset_key else None
        if not path.exists() and legacy is not None and legacy.is_file():
            path = legacy
        if not path.exists():
            raise FileNotFoundError(
                f"no stored value at {path} for input {context.name!r} (run {run_id}): "
                "re-materialize the upstream asset"
            )
        with path.open("rb") as file:
            return pickle.load(file)

    def _value_path(self, storage: Path, context: Any, run_id: str | None) -> Path:
        """``<storage>/asset_values/<asset key parts>/<run id>.pickle``."""
        if not context.has_asset_key:  # an op output: its identifier holds the run id
            return storage.joinpath(VALUES_FOLDER, "ops", *context.get_identifier(), "value.pickle")
        return storage.joinpath(
            VALUES_FOLDER, *context.asset_key.path, f"{run_id or context.run_id}.pickle"
        )


def _producing_run(upstream: dg.OutputContext | None) -> str | None:
    """The run that produced ``upstream`` in this run's plan, or None when outside the plan."""
    if upstream is None:
        return None
    try:
        run_id = upstream.run_id
    except dg.DagsterInvariantViolationError:  # built without a run id
        return None
    return None if run_id == _NO_RUN else run_id
