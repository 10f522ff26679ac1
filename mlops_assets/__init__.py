"""mlops_assets: local-first MLOps for tabular binary classification.

Importing this package must not import dagster: the pure logic in ``core`` is usable alone.
"""

__version__ = "0.1.0"
