"""Facts about the machine and the software a benchmark run measured: CPU, memory, versions."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

from mlops_assets.core.lineage import git_commit
from mlops_assets.core.paths import PROJECT_ROOT

PACKAGES = (
    "dagster",
    "mlflow",
    "deltalake",
    "delta-spark",
    "pyspark",
    "xgboost",
    "hyperopt",
    "scikit-learn",
    "imbalanced-learn",
    "evidently",
    "pandas",
    "pyarrow",
    "fastapi",
    "uvicorn",
)


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (or the platform's processor string)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def memory_gib() -> float | None:
    """Total memory in GiB from /proc/meminfo, or None where it cannot be read."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return None


def os_name() -> str:
    """The distribution's pretty name (/etc/os-release), else the platform string."""
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return platform.platform()


def versions() -> dict[str, str]:
    """Installed versions of the packages the figures depend on (``absent`` if missing)."""
    found = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "absent"
    return found


def uncommitted() -> list[str]:
    """Tracked files that differ from the commit (what the run measured beyond it)."""
    try:
        lines = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        return []
    return [line[3:] for line in lines if line.strip()]


def describe() -> dict[str, object]:
    """Everything above, plus cores, load average, kernel and Python, as one JSON-able dict."""
    memory = memory_gib()
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": None if memory is None else round(memory, 1),
        "os": os_name(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "git_commit": git_commit(),
        "uncommitted_files": uncommitted(),
        "versions": versions(),
    }
