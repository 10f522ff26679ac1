"""mlops_assets: local-first MLOps for tabular binary classification.

Importing this package loads no orchestration code: the pure logic in ``core`` is usable
alone (a test in ``mlops_assets_tests/core`` checks it).
"""

import os

__version__ = "0.1.0"

# OpenMP threads spin while they wait by default: on a busy machine (CI, a shared laptop) a
# two-thread XGBoost fit of a small table then runs 10-20x slower than one thread. Passive
# waiting removes that cliff and costs nothing measurable when idle. The OpenMP runtime reads
# this once, when it loads (scikit-learn and XGBoost share one libgomp), so it is set here,
# before any ``core`` module imports them; an explicit setting in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
