"""Serving test fixtures."""

from mlops_assets_tests.serving.fixtures import serving_registry  # noqa: F401
