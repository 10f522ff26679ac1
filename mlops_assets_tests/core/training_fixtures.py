"""Small, seeded training data and helpers shared by the training tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from hyperopt import hp
from hyperopt.pyll import scope
from sklearn.model_selection import train_test_split

from mlops_assets.constants import LABEL_COLUMN
from mlops_assets.core.lineage import Lineage
from mlops_assets.core.splits import feature_columns
from mlops_assets.core.tracking import TrackingTarget
from mlops_assets.core.tuning import TrainingSplits, prepare_splits

# A small slice of the default space: trials take a fraction of a second on tiny data.
TINY_SPACE = {
    "max_depth": scope.int(hp.quniform("max_depth", 2, 4, 1)),
    "n_estimators": scope.int(hp.quniform("n_estimators", 20, 60, 10)),
    "learning_rate": hp.loguniform("learning_rate", np.log(0.05), np.log(0.3)),
}


def bank_frame(shared_data: Path, rows: int = 1500, seed: int = 0) -> pd.DataFrame:
    """A seeded sample of the bank-marketing data: numeric + categorical, with gaps added.

    ``label`` is 0/1; the leaky ``duration`` column is dropped; some ages (numeric) and
    jobs (categorical) are set missing, as None and NaN.
    """
    full = pd.read_csv(shared_data / "bank-additional-full.csv", sep=";")
    frame = full.sample(n=rows, random_state=seed).reset_index(drop=True)
    frame[LABEL_COLUMN] = (frame.pop("y") == "yes").astype("int64")
    frame = frame.drop(columns=["duration"])
    frame["age"] = frame["age"].astype("float64")
    frame.loc[frame.index % 7 == 0, "age"] = np.nan
    frame["job"] = frame["job"].astype(object)
    frame.loc[frame.index % 11 == 0, "job"] = None
    frame.loc[frame.index % 13 == 0, "job"] = np.nan
    return frame


def split_three(frame: pd.DataFrame, seed: int = 0) -> tuple[pd.DataFrame, ...]:
    """Stratified 60/20/20 train/valid/test frames."""
    train, rest = train_test_split(
        frame, test_size=0.4, stratify=frame[LABEL_COLUMN], random_state=seed
    )
    valid, test = train_test_split(
        rest, test_size=0.5, stratify=rest[LABEL_COLUMN], random_state=seed
    )
    return train, valid, test


def bank_splits(shared_data: Path, rows: int = 1500) -> TrainingSplits:
    """Validated splits of :func:`bank_frame`."""
    train, valid, test = split_three(bank_frame(shared_data, rows))
    return prepare_splits(train, valid, test, feature_columns(train))


def tracking_target(root: Path, experiment: str = "tests") -> TrackingTarget:
    """An MLflow store on SQLite under ``root``."""
    return TrackingTarget(
        tracking_uri=f"sqlite:///{root / 'mlflow.db'}",
        experiment_name=experiment,
        artifact_root=str(root / "artifacts"),
    )


def lineage(resampling: str = "none") -> Lineage:
    """A lineage with recognisable values."""
    return Lineage(
        transactions_uri="/lake/transactions",
        transactions_version=3,
        splits_uri="/lake/training_splits",
        splits_version=4,
        train_uri="/lake/resampled_train",
        train_version=5,
        resampling_method=resampling,
        dagster_run_id="run-123",
        asset_key="tuned_model",
        git_commit="abc123",
        package_version="0.1.0",
    )
