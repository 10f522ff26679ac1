"""Jobs over the asset graph."""

from __future__ import annotations

import dagster as dg

from mlops_assets.constants import DATA_GROUP, DEPLOYMENT_GROUP, TRAINING_GROUP

MAIN_JOB_NAME = "main_job"

main_job = dg.define_asset_job(
    MAIN_JOB_NAME,
    selection=dg.AssetSelection.groups(DATA_GROUP, TRAINING_GROUP, DEPLOYMENT_GROUP),
    description="Ingest, split, resample, tune, register, promote and deploy.",
)

JOBS = [main_job]
