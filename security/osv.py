"""OSV advisories: read them from a database and tell whether a pinned version is affected.

The format is the OSV schema (https://ossf.github.io/osv-schema/) as used by the PyPA
advisory database (``vulns/<name>/<id>.yaml``) and the OSV data dumps (one ``<id>.json`` per
advisory, e.g. ``PyPI/all.zip``). Only the ``PyPI`` ecosystem is read; ``GIT`` ranges are
ignored (they name commits, not releases). Only the standard library and ``packaging`` are
needed; YAML files additionally need PyYAML (a project dependency), JSON files do not.
"""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version

ECOSYSTEM = "PyPI"
ADVISORY_SUFFIXES = (".yaml", ".yml", ".json")
EVENT_KINDS = ("introduced", "fixed", "last_affected", "limit")


class AdvisoryError(ValueError):
    """An advisory file that cannot be read; the message names the file, field and problem."""


def normalize_name(name: str) -> str:
    """Return the PEP 503 normalised form of a distribution name (``Foo_Bar`` -> ``foo-bar``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Event:
    """One OSV range event: ``kind`` is introduced, fixed, last_affected or limit."""

    kind: str
    version: str


@dataclass(frozen=True)
class AffectedPackage:
    """The PyPI part of one ``affected`` entry: ECOSYSTEM ranges and explicit versions."""

    name: str
    ranges: tuple[tuple[Event, ...], ...]
    versions: tuple[str, ...]


@dataclass(frozen=True)
class Advisory:
    """One advisory, reduced to what the audit needs."""

    id: str
    aliases: tuple[str, ...]
    summary: str
    modified: str
    withdrawn: str | None
    source: str
    affected: tuple[AffectedPackage, ...]


@dataclass(frozen=True)
class Verdict:
    """Whether a version is affected, the fixes above it, and notes on what was not evaluable."""

    affected: bool
    fixed: tuple[str, ...]
    notes: tuple[str, ...]


def _field(data: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    value = data.get(key)
    if value is None:
        return kind()
    if not isinstance(value, kind):
        raise AdvisoryError(f"{where}: field '{key}' must be a {kind.__name__}, got {value!r}")
    return value


def _parse_affected(entry: Any, where: str) -> AffectedPackage | None:
    if not isinstance(entry, Mapping):
        raise AdvisoryError(f"{where}: must be a mapping, got {type(entry).__name__}")
    package = _field(entry, "package", dict, where)
    if package.get("ecosystem") != ECOSYSTEM:
        return None
    name = package.get("name")
    if not isinstance(name, str) or not name:
        raise AdvisoryError(f"{where}: field 'package.name' is missing or not a string")
    ranges = []
    for r, rng in enumerate(_field(entry, "ranges", list, where)):
        rwhere = f"{where}.ranges[{r}]"
        if not isinstance(rng, Mapping) or "type" not in rng:
            raise AdvisoryError(f"{rwhere}: must be a mapping with a 'type'")
        if rng["type"] != "ECOSYSTEM":
            continue
        events = []
        for e, event in enumerate(_field(rng, "events", list, rwhere)):
            keys = [k for k in EVENT_KINDS if isinstance(event, Mapping) and k in event]
            if len(keys) != 1:
                raise AdvisoryError(
                    f"{rwhere}.events[{e}]: must hold exactly one of {', '.join(EVENT_KINDS)}, "
                    f"got {event!r}"
                )
            events.append(Event(keys[0], str(event[keys[0]])))
        ranges.append(tuple(events))
    versions = tuple(str(v) for v in _field(entry, "versions", list, where))
    return AffectedPackage(normalize_name(name), tuple(ranges), versions)


def _timestamp(value: Any) -> str:
    """RFC 3339 text for a timestamp that YAML may have decoded into a datetime."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value.tzinfo else str(value)
    return str(value)


def parse_advisory(data: Any, source: str) -> Advisory:
    """Validate one decoded OSV document; raise AdvisoryError naming the file and field."""
    if not isinstance(data, Mapping):
        raise AdvisoryError(f"{source}: the document must be a mapping, got {type(data).__name__}")
    ident = data.get("id")
    if not isinstance(ident, str) or not ident:
        raise AdvisoryError(f"{source}: field 'id' is missing or not a string")
    affected = []
    for i, entry in enumerate(_field(data, "affected", list, source)):
        parsed = _parse_affected(entry, f"{source}: affected[{i}]")
        if parsed is not None:
            affected.append(parsed)
    withdrawn = data.get("withdrawn")
    modified = data.get("modified") or ""
    return Advisory(
        id=ident,
        aliases=tuple(str(a) for a in _field(data, "aliases", list, source)),
        summary=str(data.get("summary") or data.get("details") or "").strip(),
        modified=_timestamp(modified),
        withdrawn=None if withdrawn is None else _timestamp(withdrawn),
        source=source,
        affected=tuple(affected),
    )


def _decode(text: str | bytes, source: str) -> Any:
    try:
        if source.endswith(".json"):
            return json.loads(text)
        import yaml  # lazily: only YAML databases need PyYAML

        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        return yaml.load(text, Loader=loader)  # a safe loader (C or pure Python)
    except ValueError as exc:
        raise AdvisoryError(f"{source}: not valid JSON: {exc}") from exc
    except Exception as exc:  # yaml.YAMLError has no common base we can import eagerly
        raise AdvisoryError(f"{source}: not valid YAML: {exc}") from exc


def iter_documents(db: Path) -> Iterator[tuple[str, str | bytes]]:
    """Yield ``(source name, raw text)`` for every advisory file in a directory tree or zip."""
    if not db.exists():
        raise FileNotFoundError(f"advisory database {db} does not exist")
    if db.is_file():
        if not zipfile.is_zipfile(db):
            raise AdvisoryError(f"{db}: not a directory and not a zip archive of advisories")
        with zipfile.ZipFile(db) as archive:
            for name in sorted(archive.namelist()):
                if name.endswith(ADVISORY_SUFFIXES):
                    yield f"{db}!{name}", archive.read(name)
        return
    root = db / "vulns" if (db / "vulns").is_dir() else db  # PyPA layout: advisories only
    for path in sorted(root.rglob("*")):
        if path.suffix in ADVISORY_SUFFIXES and path.is_file() and ".git" not in path.parts:
            yield str(path.relative_to(db)), path.read_bytes()


def load_advisory(source: str, text: str | bytes) -> Advisory:
    """Decode and validate one advisory file."""
    return parse_advisory(_decode(text, source), source)


def _key(version: str, source: str) -> Version:
    try:
        return Version(version)
    except InvalidVersion as exc:
        raise AdvisoryError(f"{source}: '{version}' is not a PEP 440 version") from exc


def range_affects(events: tuple[Event, ...], version: Version, source: str = "") -> bool:
    """Evaluate one ECOSYSTEM range as the OSV schema specifies (events sorted by version).

    Raises:
        AdvisoryError: an event version is not a PEP 440 version.
    """
    keyed = []
    for event in events:
        floor = event.kind == "introduced" and event.version == "0"
        keyed.append((floor, None if floor else _key(event.version, source), event.kind))
    keyed.sort(key=lambda k: (not k[0], Version("0") if k[1] is None else k[1]))
    affected = False
    for floor, bound, kind in keyed:
        if kind == "introduced" and (floor or version >= bound):
            affected = True
        elif kind == "fixed" and version >= bound:
            affected = False
        elif kind == "last_affected" and version > bound:
            affected = False
    limits = [bound for _, bound, kind in keyed if kind == "limit"]
    return affected and (not limits or any(version < bound for bound in limits))


def evaluate(package: AffectedPackage, version: Version, source: str = "") -> Verdict:
    """Tell whether ``version`` is affected by one package entry (explicit list or any range)."""
    notes: list[str] = []
    listed = False
    for listed_version in package.versions:
        try:
            listed = listed or Version(listed_version) == version
        except InvalidVersion:
            listed = listed or listed_version == str(version)
    in_range = False
    fixes: set[str] = set()
    for events in package.ranges:
        try:
            hit = range_affects(events, version, source)
        except AdvisoryError as exc:
            notes.append(f"range not evaluated ({exc}); the explicit version list was used")
            continue
        if hit:
            in_range = True
            for event in events:
                if event.kind == "fixed" and Version(event.version) > version:
                    fixes.add(event.version)
    fixed = tuple(sorted(fixes, key=Version))
    return Verdict(affected=listed or in_range, fixed=fixed, notes=tuple(notes))
