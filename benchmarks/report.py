"""The suite's outputs: the console table, the JSON results and the BENCHMARKS.md markdown."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.harness import Figure

COLUMNS = ("benchmark", "figure", "median", "spread", "unit", "target", "met")
NOT_RUN = "not run"


@dataclass(frozen=True)
class BenchmarkRun:
    """One suite benchmark's figures and how long it took.

    Attributes:
        name: the benchmark (``ingestion``, ``serving``...).
        seconds: wall-clock seconds of its ``suite`` call.
        figures: what it measured (a single ``failed`` figure when it raised).
        provenance: where and when it was measured (``command``, ``commit``,
            ``started_utc``, ``load_average_1m``): a report updated with ``--update`` keeps
            the other benchmarks' figures from earlier commands, each with its own.
    """

    name: str
    seconds: float
    figures: tuple[Figure, ...]
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> str:
        """``failed`` if any figure failed, ``skipped`` if all were skipped, else ``ok``."""
        statuses = {figure.status for figure in self.figures}
        if "failed" in statuses or not self.figures:
            return "failed"
        if statuses == {NOT_RUN}:
            return NOT_RUN
        return "skipped" if statuses <= {"skipped", NOT_RUN} else "ok"


def not_run(name: str, reason: str = "not run in this session") -> BenchmarkRun:
    """The placeholder of a benchmark the run did not reach (stopped, or still to come)."""
    figure = Figure(name, "not run", math.nan, "", note=reason, status=NOT_RUN)
    return BenchmarkRun(name, 0.0, (figure,))


@dataclass(frozen=True)
class SuiteReport:
    """A whole suite run: what ran, where, and how it was started."""

    command: str
    started_utc: str
    finished_utc: str
    machine: dict[str, Any]
    settings: dict[str, Any]
    runs: tuple[BenchmarkRun, ...]
    notes: tuple[str, ...] = field(default=())

    @property
    def failed(self) -> list[str]:
        """Names of the benchmarks that failed."""
        return [run.name for run in self.runs if run.status == "failed"]

    @property
    def unfinished(self) -> list[str]:
        """Names of the benchmarks not run (the run was stopped before them)."""
        return [run.name for run in self.runs if run.status == NOT_RUN]


def number(value: float | None) -> str:
    """A figure as text: thousands separators for large values, 3 significant digits else."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    if abs(value) >= 1 or value == 0:
        return f"{value:.2f}"
    return f"{value:.3g}"


def verdict(figure: Figure) -> str:
    """``met`` / ``NOT met`` for a target, the status for a skipped or failed figure."""
    if figure.status != "ok":
        return figure.status
    if figure.met is None:
        return ""
    return "met" if figure.met else "NOT met"


def _cells(figure: Figure) -> list[str]:
    return [
        figure.benchmark,
        figure.name,
        number(figure.value),
        number(figure.spread),
        figure.unit,
        figure.target or "",
        verdict(figure),
    ]


def console_table(runs: list[BenchmarkRun] | tuple[BenchmarkRun, ...]) -> str:
    """The plain-text table the entry point prints (notes of skipped/failed figures below)."""
    rows = [list(COLUMNS)] + [_cells(figure) for run in runs for figure in run.figures]
    widths = [min(48, max(len(row[i]) for row in rows)) for i in range(len(COLUMNS))]
    lines = [
        "  ".join(cell[:48].ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    for run in runs:
        for figure in run.figures:
            if figure.status != "ok":
                lines.append(f"{run.name}: {figure.name}: {figure.status}: {figure.note}")
    return "\n".join(lines)


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    if isinstance(value, Path):
        return str(value)
    return value


def write_json(report: SuiteReport, path: Path) -> None:
    """Write the whole report as strict JSON (NaN becomes null)."""
    body = {
        "command": report.command,
        "started_utc": report.started_utc,
        "finished_utc": report.finished_utc,
        "notes": list(report.notes),
        "machine": report.machine,
        "settings": report.settings,
        "benchmarks": [
            {
                "name": run.name,
                "status": run.status,
                "seconds": round(run.seconds, 2),
                "provenance": run.provenance,
                "figures": [asdict(figure) for figure in run.figures],
            }
            for run in report.runs
        ],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_json_safe(body), indent=2, allow_nan=False) + "\n")


def read_runs(path: Path) -> dict[str, BenchmarkRun]:
    """The benchmark runs of a JSON report written by :func:`write_json`, by name.

    Raises:
        ValueError: When ``path`` is missing or not such a report (the path is named).
    """
    try:
        body = json.loads(path.read_text())
        whole_run = {  # reports written before provenance was per benchmark
            "command": body["command"],
            "commit": body["machine"].get("git_commit"),
            "started_utc": body["started_utc"],
            "load_average_1m": body["machine"].get("load_average_1m"),
        }
        return {
            entry["name"]: BenchmarkRun(
                entry["name"],
                float(entry["seconds"]),
                tuple(
                    Figure(
                        **(
                            figure
                            | {"value": math.nan if figure["value"] is None else figure["value"]}
                        )
                    )
                    for figure in entry["figures"]
                ),
                dict(entry.get("provenance") or whole_run),
            )
            for entry in body["benchmarks"]
        }
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{path}: not a benchmark report to update ({error})") from error


def _provenance(run: BenchmarkRun) -> str:
    where = run.provenance
    if not where:
        return ""
    return (
        f" Measured {where.get('started_utc')} at commit `{where.get('commit')}` "
        f"(load average {where.get('load_average_1m')} at its start) by `{where.get('command')}`."
    )


def _md_row(cells: list[str]) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|").replace("\n", " ") for cell in cells) + " |"


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    return [_md_row(header), _md_row(["---"] * len(header)), *(_md_row(row) for row in rows)]


def markdown(report: SuiteReport) -> str:
    """BENCHMARKS.md: machine, versions, command, targets, then one table per benchmark."""
    machine = report.machine
    lines = [
        "# Benchmarks",
        "",
        f"Generated by `{report.command}` on {report.started_utc} (finished "
        f"{report.finished_utc}); regenerate it with the same command, do not edit by hand.",
        "",
        *[f"> {note}" for note in report.notes],
        *([""] if report.notes else []),
        "## Machine and software",
        "",
        *_md_table(
            ["fact", "value"],
            [
                ["CPU", str(machine.get("cpu"))],
                ["cores", str(machine.get("cores"))],
                ["memory", f"{machine.get('memory_gib')} GiB"],
                ["OS", str(machine.get("os"))],
                ["kernel", str(machine.get("kernel"))],
                ["Python", str(machine.get("python"))],
                ["load average (1 min) at start", str(machine.get("load_average_1m"))],
                ["git commit", f"`{machine.get('git_commit')}`"],
                [
                    "uncommitted tracked files at the start",
                    ", ".join(f"`{name}`" for name in machine.get("uncommitted_files", []))
                    or "none",
                ],
                *[[name, version] for name, version in machine.get("versions", {}).items()],
            ],
        ),
        "",
        "Settings: "
        + ", ".join(f"{key} `{value}`" for key, value in report.settings.items())
        + ".",
        "",
        "## Targets",
        "",
    ]
    targeted = [f for run in report.runs for f in run.figures if f.target or f.status == "failed"]
    lines += _md_table(
        ["benchmark", "figure", "value", "target", "verdict"],
        [
            [f.benchmark, f.name, f"{number(f.value)} {f.unit}".strip(), f.target or "", verdict(f)]
            for f in targeted
        ],
    )
    for run in report.runs:
        status = f"Status: {run.status}; {run.seconds:.1f} s.{_provenance(run)}"
        lines += ["", f"## {run.name}", "", status, ""]
        lines += _md_table(
            ["figure", "median", "spread", "unit", "target", "verdict", "note"],
            [_cells(figure)[1:] + [figure.note] for figure in run.figures],
        )
    return "\n".join(lines) + "\n"


def write_markdown(report: SuiteReport, path: Path) -> None:
    """Write :func:`markdown` to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(markdown(report))
