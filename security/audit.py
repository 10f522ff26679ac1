"""Offline dependency audit: the pins of a requirements lock against an OSV advisory database.

Run from the repository root, either way::

    python security/audit.py --db <advisory database> [--requirements requirements.lock]
    python -m security.audit --db <advisory database> [--json report.json]

``--db`` is a checkout of https://github.com/pypa/advisory-database (``vulns/<name>/*.yaml``),
any folder of OSV ``.json``/``.yaml`` files, or a zip of them (OSV's ``PyPI/all.zip``).
Exit status: 0 no known vulnerability and every advisory file read, 1 at least one pin is
affected, 2 bad input or advisory files that could not be read (the audit is incomplete).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from packaging.version import InvalidVersion, Version

if __package__ in (None, ""):  # run as a script: make the `security` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from security.osv import (  # noqa: E402
    AdvisoryError,
    evaluate,
    iter_documents,
    load_advisory,
    normalize_name,
)

_PIN = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*===?\s*(?P<version>[^\s;#\\]+)"
)
_UNAUDITABLE = ("-e", "--editable", "-r", "--requirement", "-c", "--constraint")


class LockError(ValueError):
    """A requirements lock that cannot be audited; the message names the file, line and problem."""


@dataclass(frozen=True)
class Pin:
    """One ``name==version`` line of the lock."""

    name: str
    key: str
    version: str
    line: int


@dataclass(frozen=True)
class Finding:
    """One advisory that affects one pinned package."""

    package: str
    version: str
    advisory: str
    aliases: tuple[str, ...]
    fixed: tuple[str, ...]
    summary: str
    source: str
    notes: tuple[str, ...]


@dataclass(frozen=True)
class AuditReport:
    """The outcome of one audit."""

    database: str
    database_commit: str
    newest_modified: str
    advisories: int
    withdrawn: int
    pins: tuple[Pin, ...]
    with_advisories: tuple[str, ...]
    findings: tuple[Finding, ...]
    problems: tuple[str, ...]


def read_pins(path: Path) -> tuple[Pin, ...]:
    """Read the exact pins of a requirements file.

    Raises:
        LockError: a line is not an exact pin, a version is not PEP 440, or a name repeats.
    """
    if not path.is_file():
        raise LockError(f"{path}: requirements file not found")
    pins: dict[str, Pin] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-"):
            if line.split()[0].split("=")[0] in _UNAUDITABLE:
                raise LockError(f"{path}:{number}: '{line}' cannot be audited offline (pin it)")
            continue  # --index-url, --hash continuations and other options
        match = _PIN.match(line)
        if match is None:
            raise LockError(f"{path}:{number}: '{line}' is not an exact 'name==version' pin")
        name, version = match["name"], match["version"]
        try:
            Version(version)
        except InvalidVersion as exc:
            raise LockError(f"{path}:{number}: '{version}' is not a PEP 440 version") from exc
        key = normalize_name(name)
        if key in pins and pins[key].version != version:
            raise LockError(
                f"{path}:{number}: {name} pinned twice ({pins[key].version} on line "
                f"{pins[key].line}, {version} here)"
            )
        pins[key] = Pin(name, key, version, number)
    if not pins:
        raise LockError(f"{path}: no 'name==version' pins found")
    return tuple(pins.values())


def _git_commit(db: Path) -> str:
    if not db.is_dir() or not (db / ".git").exists():
        return ""
    done = subprocess.run(
        ["git", "-C", str(db), "log", "-1", "--format=%H %cI"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() if done.returncode == 0 else ""


def _first_line(text: str, width: int = 110) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= width else line[: width - 3] + "..."


def merge_duplicates(findings: list[Finding]) -> tuple[Finding, ...]:
    """Fold advisories that name each other (a PYSEC entry aliasing a GHSA one) into one finding.

    Findings are sorted by package and id; for one package, a finding whose id or aliases meet
    the ids already kept is merged into that kept finding (ids added as aliases, fixes united).
    """
    kept: list[Finding] = []
    for finding in sorted(findings, key=lambda f: (normalize_name(f.package), f.advisory)):
        names = {finding.advisory, *finding.aliases}
        for i, other in enumerate(kept):
            if other.package == finding.package and names & {other.advisory, *other.aliases}:
                aliases = sorted((names | set(other.aliases)) - {other.advisory})
                fixed = sorted(set(other.fixed) | set(finding.fixed), key=Version)
                kept[i] = replace(other, aliases=tuple(aliases), fixed=tuple(fixed))
                break
        else:
            kept.append(finding)
    return tuple(kept)


def audit(pins: tuple[Pin, ...], db: Path) -> AuditReport:
    """Check every pin against every PyPI advisory of the database."""
    by_key = {pin.key: pin for pin in pins}
    findings: list[Finding] = []
    problems: list[str] = []
    seen: set[str] = set()
    count = withdrawn = 0
    newest = ""
    for source, text in iter_documents(db):
        try:
            advisory = load_advisory(source, text)
        except AdvisoryError as exc:
            problems.append(str(exc))
            continue
        count += 1
        newest = max(newest, advisory.modified)
        if advisory.withdrawn is not None:
            withdrawn += 1
            continue
        hits: dict[str, tuple[set[str], list[str]]] = {}
        for package in advisory.affected:
            pin = by_key.get(package.name)
            if pin is None:
                continue
            seen.add(pin.key)
            verdict = evaluate(package, Version(pin.version), source)
            fixes, notes = hits.setdefault(pin.key, (set(), []))
            notes.extend(verdict.notes)
            if verdict.affected:
                fixes.update(verdict.fixed or ("none",))
        for key, (fixes, notes) in hits.items():
            if fixes:
                findings.append(
                    Finding(
                        package=by_key[key].name,
                        version=by_key[key].version,
                        advisory=advisory.id,
                        aliases=advisory.aliases,
                        fixed=tuple(sorted(fixes - {"none"}, key=Version)),
                        summary=_first_line(advisory.summary),
                        source=source,
                        notes=tuple(notes),
                    )
                )
    return AuditReport(
        database=str(db),
        database_commit=_git_commit(db),
        newest_modified=newest,
        advisories=count,
        withdrawn=withdrawn,
        pins=pins,
        with_advisories=tuple(sorted(seen)),
        findings=merge_duplicates(findings),
        problems=tuple(problems),
    )


def format_report(report: AuditReport) -> str:
    """Render the report as plain text: database, findings per package, summary."""
    lines = [
        f"Advisory database: {report.database}",
        f"  advisories read: {report.advisories} ({report.withdrawn} withdrawn, skipped)",
        f"  newest advisory 'modified': {report.newest_modified or 'unknown'}",
    ]
    if report.database_commit:
        lines.append(f"  git commit: {report.database_commit}")
    lines.append(f"Pinned packages: {len(report.pins)}")
    packages = sorted({f.package for f in report.findings}, key=normalize_name)
    for package in packages:
        found = [f for f in report.findings if f.package == package]
        lines.append(f"VULNERABLE {package}=={found[0].version}: {len(found)} advisories")
        for f in found:
            aliases = f" ({', '.join(f.aliases)})" if f.aliases else ""
            fixed = ", ".join(f.fixed) if f.fixed else "no fixed version known"
            lines.append(f"  {f.advisory}{aliases}: fixed in {fixed}")
            lines.append(f"    {f.summary}  [{f.source}]")
            lines.extend(f"    note: {note}" for note in f.notes)
    for problem in report.problems:
        lines.append(f"UNREADABLE {problem}")
    lines.append(
        f"Summary: {len(report.findings)} known vulnerabilities in {len(packages)} of "
        f"{len(report.pins)} pinned packages; {len(report.with_advisories)} pinned packages have "
        f"advisories in this database, {len(report.pins) - len(report.with_advisories)} have none; "
        f"{len(report.problems)} advisory files unreadable."
    )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, required=True, help="OSV advisory folder or zip")
    parser.add_argument("--requirements", type=Path, default=Path("requirements.lock"))
    parser.add_argument("--json", type=Path, default=None, help="also write the report here")
    args = parser.parse_args(argv)
    try:
        report = audit(read_pins(args.requirements), args.db)
    except (LockError, AdvisoryError, FileNotFoundError) as exc:
        sys.stderr.write(f"audit: {exc}\n")
        return 2
    sys.stdout.write(format_report(report))
    if args.json is not None:
        args.json.write_text(json.dumps(asdict(report), indent=2) + "\n", encoding="utf-8")
    if report.findings:
        return 1
    return 2 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
