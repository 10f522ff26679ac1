"""Convention 1: ``mlops_assets.core`` never imports dagster."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import mlops_assets.core


def test_every_core_module_imports_with_dagster_unimportable() -> None:
    modules = [
        f"mlops_assets.core.{info.name}"
        for info in pkgutil.iter_modules(mlops_assets.core.__path__)
        if info.name != "spark_tables"  # imports pyspark, which is fine but slow
    ]
    script = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'dagster' or name.startswith('dagster_'):\n"
        "            raise ImportError('dagster is blocked in this test')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import importlib\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "import mlops_assets\n"
        "assert not any(m == 'dagster' or m.startswith('dagster.') for m in sys.modules)\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert completed.returncode == 0, completed.stderr
