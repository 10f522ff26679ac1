"""The thin Dagster layer: assets, checks, jobs and sensors over ``mlops_assets.core``."""
