"""The benchmark suite in smoke mode: every registered benchmark runs and reports, so it cannot rot.

Runs ``python -m benchmarks --smoke`` as a user would, on a tiny seeded file with the
credit-card schema, writing the JSON and markdown under ``tmp_path`` (never the real
``BENCHMARKS.md``).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.suite import BENCHMARKS
from mlops_assets.core import synthetic
from mlops_assets.core.paths import PROJECT_ROOT

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def run_suite(command: list[str], timeout_s: float) -> subprocess.CompletedProcess:
    """Run the suite in its own session; on a timeout stop it and every benchmark child."""
    process = subprocess.Popen(
        command,
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        pytest.fail(f"smoke suite took over {timeout_s} s:\n{stdout[-3000:]}\n{stderr[-3000:]}")
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def synthetic_csv(folder: Path, rows: int, seed: int) -> Path:
    """Write a seeded synthetic file with the credit-card schema (5 % positives)."""
    csv = folder / "rows.csv"
    synthetic.generate(rows, seed=seed, positive_rate=0.05).to_csv(csv, index=False)
    return csv


def test_smoke_suite_runs_every_benchmark_and_writes_its_reports(tmp_path: Path) -> None:
    data = synthetic_csv(tmp_path, 3000, seed=7)
    results, markdown = tmp_path / "out" / "results.json", tmp_path / "out" / "BENCHMARKS.md"

    command = [sys.executable, "-m", "benchmarks", "--smoke", "--data", str(data)]
    command += ["--json", str(results), "--markdown", str(markdown)]
    command += ["--workdir", str(tmp_path / "work")]
    done = run_suite(command, timeout_s=540)

    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    body = json.loads(results.read_text())
    assert [run["name"] for run in body["benchmarks"]] == list(BENCHMARKS)
    for run in body["benchmarks"]:
        assert run["status"] in ("ok", "skipped"), run
        assert run["figures"], f"{run['name']} reported no figure"
        measured = [figure for figure in run["figures"] if figure["status"] == "ok"]
        for figure in measured:
            assert isinstance(figure["value"], int | float), figure
    # Everything but the closed loop (whose e2e test runs the same loop) measures something.
    skipped = {run["name"] for run in body["benchmarks"] if run["status"] == "skipped"}
    assert skipped <= {"closed_loop"}, skipped
    assert body["settings"]["smoke"] is True
    assert body["machine"]["cores"] and body["machine"]["versions"]["dagster"] != "absent"

    text = markdown.read_text()
    assert text.startswith("# Benchmarks")
    assert "## Machine and software" in text and "python -m benchmarks --smoke" in text
    for name in BENCHMARKS:
        assert f"\n## {name}\n" in text
    assert "skipped in smoke mode" in text
    assert re.search(r"benchmark\s+figure\s+median\s+spread\s+unit\s+target\s+met", done.stdout)
    # The real report is not this run's (a full run may rewrite it meanwhile: compare content).
    for real in (PROJECT_ROOT / "BENCHMARKS.md", PROJECT_ROOT / "benchmarks" / "results.json"):
        if real.exists():
            assert str(data) not in real.read_text(), f"the smoke run wrote {real}"


def test_unknown_benchmark_and_missing_data_are_named(tmp_path: Path) -> None:
    base = [sys.executable, "-m", "benchmarks", "--json", str(tmp_path / "r.json")]
    base += ["--markdown", str(tmp_path / "B.md")]
    wrong = subprocess.run(
        [*base, "--only", "ingestion,nope"], cwd=PROJECT_ROOT, capture_output=True, text=True
    )
    assert wrong.returncode == 2 and "unknown benchmark(s) ['nope']" in wrong.stderr
    missing = subprocess.run(
        [*base, "--data", str(tmp_path / "absent.csv")],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 2 and "absent.csv: no such file" in missing.stderr
    assert not (tmp_path / "r.json").exists()


def test_a_failing_benchmark_is_reported_and_the_suite_goes_on(tmp_path: Path) -> None:
    data = tmp_path / "no-time.csv"  # the serving benchmark needs the credit-card Time column
    synthetic.generate(400, seed=3, positive_rate=0.05).drop(columns=["Time"]).to_csv(
        data, index=False
    )
    results, markdown = tmp_path / "r.json", tmp_path / "B.md"
    done = run_suite(
        [sys.executable, "-m", "benchmarks", "--smoke", "--only", "serving,resampling"]
        + ["--data", str(data), "--json", str(results), "--markdown", str(markdown)],
        timeout_s=300,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "FAILED: serving" in done.stderr
    runs = {run["name"]: run for run in json.loads(results.read_text())["benchmarks"]}
    assert runs["serving"]["status"] == "failed"
    assert "needs column(s) ['Time']" in runs["serving"]["figures"][0]["note"]
    assert runs["resampling"]["status"] == "ok"
    assert "| benchmark failed | - | - |  |  | failed |" in markdown.read_text()

    # --update re-measures the named benchmarks and keeps the others, each with its provenance
    first, kept = runs["resampling"]["provenance"], runs["serving"]
    assert first["command"].startswith("python -m benchmarks --smoke") and first["commit"]
    update = [sys.executable, "-m", "benchmarks", "--smoke", "--data", str(data)]
    update += ["--json", str(results), "--markdown", str(markdown), "--update"]
    again = run_suite([*update, "--only", "resampling"], timeout_s=300)
    assert again.returncode == 1, again.stdout + again.stderr  # the kept serving still failed
    runs = {run["name"]: run for run in json.loads(results.read_text())["benchmarks"]}
    assert list(runs) == ["resampling", "serving"]  # the suite's order
    assert runs["serving"] == kept
    assert runs["resampling"]["provenance"]["command"].endswith("--only resampling")
    text = markdown.read_text()
    assert "This command re-measured resampling; serving are kept from earlier commands" in text
    assert text.count("at commit `") == 2
    no_only = subprocess.run(update, cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert no_only.returncode == 2 and "--update re-measures the --only" in no_only.stderr
    absent = [sys.executable, "-m", "benchmarks", "--data", str(data), "--only", "drift"]
    absent += ["--json", str(tmp_path / "none.json"), "--update"]
    missing = subprocess.run(absent, cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert missing.returncode == 2 and "none.json: not a benchmark report" in missing.stderr


def test_final_model_variants_prints_every_variant_per_split_seed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from benchmarks import final_model_variants

    csv = synthetic_csv(tmp_path, 4000, seed=3)
    final_model_variants.main(["--csv", str(csv), "--split-seeds", "7", "--max-evals", "2"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("split seed   7:") and lines[-1].startswith("mean test PR AUC:")
    figures = [float(value) for value in re.findall(r"[ /](-?\d\.\d{3})", lines[0])]
    assert len(figures) == 12 and all(-1.0 <= value <= 1.0 for value in figures)
    for name in ("winner", "top3", "top5", "bag5", "strong", "defaults"):
        assert f" {name} " in lines[0]


def test_split_stability_compares_both_split_methods(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from benchmarks import split_stability

    csv = synthetic_csv(tmp_path, 3000, seed=4)
    split_stability.main(["--csv", str(csv), "--trees", "20", "--first-share", "0.8"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("3,000 rows; the champion trains on the first 80%")
    order_based, row_hash = lines[1], lines[2]
    assert order_based.lstrip().startswith("order-based:") and "row-hash:" in row_hash
    assert float(re.search(r"(\d+\.\d)% of the test rows", order_based).group(1)) > 20.0
    assert " 0.0% of the test rows (0 of " in row_hash
