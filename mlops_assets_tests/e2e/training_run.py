"""A real training run of the ``tuned_model`` asset on tiny synthetic splits, for fault tests.

Run as a child process (``python -m mlops_assets_tests.e2e.training_run FOLDER MAX_EVALS``)
so that a test can SIGKILL it mid-search; :func:`materialize_training` is also called in the
test process for the re-run. Delta tables, the MLflow store and the Dagster instance all live
under ``FOLDER``, so the killed run and the re-run share them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import dagster as dg
import pandas as pd

from mlops_assets.constants import (
    DATA_GROUP,
    LABEL_COLUMN,
    RESAMPLED_TRAIN_TABLE,
    SPLIT_COLUMN,
    SPLITS_TABLE,
)
from mlops_assets.core import synthetic
from mlops_assets.core.tables import TableRef
from mlops_assets.defs.training import TuningConfig, tuned_model
from mlops_assets.resources import Lakehouse, MlflowRegistry

EXPERIMENT = "fault-tests"


def tracking_uri(folder: Path) -> str:
    """The SQLite MLflow store of ``folder``."""
    return f"sqlite:///{folder / 'mlflow.db'}"


def _frame() -> pd.DataFrame:
    frame = synthetic.generate(2000, seed=3, positive_rate=0.05)
    frame[LABEL_COLUMN] = frame.pop(synthetic.TARGET_COLUMN).astype("int64")
    index = pd.Series(range(len(frame)))
    frame[SPLIT_COLUMN] = index.mod(5).map({0: "valid", 1: "test"}).fillna("train").to_numpy()
    return frame


@dg.asset(name="training_splits", group_name=DATA_GROUP)
def _splits(lakehouse: Lakehouse) -> dg.Output[TableRef]:
    ref = lakehouse.tables().write(SPLITS_TABLE, _frame(), mode="overwrite")
    return dg.Output(ref, metadata={"delta_version": ref.version})


@dg.asset(name="resampled_train", group_name=DATA_GROUP)
def _resampled(lakehouse: Lakehouse, training_splits: TableRef) -> dg.Output[TableRef]:
    frame = _frame()
    train = frame[frame[SPLIT_COLUMN] == "train"].drop(columns=[SPLIT_COLUMN])
    ref = lakehouse.tables().write(RESAMPLED_TRAIN_TABLE, train, mode="overwrite")
    return dg.Output(ref, metadata={"delta_version": ref.version, "resampling_method": "none"})


def materialize_training(folder: Path, max_evals: int) -> dg.ExecuteInProcessResult:
    """Materialize splits, train and ``tuned_model`` under ``folder`` (one fit thread)."""
    (folder / "dagster").mkdir(parents=True, exist_ok=True)
    instance = dg.DagsterInstance.local_temp(tempdir=str(folder / "dagster"))
    config = TuningConfig(max_evals=max_evals, nthread=1, exclude_columns=["Time"])
    return dg.materialize(
        [_splits, _resampled, tuned_model],
        resources={
            "lakehouse": Lakehouse(root=str(folder / "lake")),
            "mlflow": MlflowRegistry(
                tracking_uri=tracking_uri(folder),
                artifact_root=str(folder / "artifacts"),
                experiment_name=EXPERIMENT,
            ),
        },
        run_config=dg.RunConfig({"tuned_model": config}),
        instance=instance,
        raise_on_error=False,
    )


if __name__ == "__main__":
    result = materialize_training(Path(sys.argv[1]), int(sys.argv[2]))
    raise SystemExit(0 if result.success else 1)
