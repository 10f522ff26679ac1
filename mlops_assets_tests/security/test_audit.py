"""The offline OSV audit (security/audit.py) against small hand-written advisory databases."""

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from packaging.version import Version

from security.audit import LockError, audit, main, read_pins
from security.osv import AdvisoryError, Event, load_advisory, normalize_name, range_affects

REPO = Path(__file__).resolve().parents[2]


def advisory_yaml(ident, name, events=(), versions=(), extra=""):
    lines = [
        f"id: {ident}",
        f"summary: {ident} in {name}",
        "modified: 2024-05-01T10:00:00Z",
        "aliases:",
        f"- CVE-{ident}",
        "affected:",
        "- package:",
        f"    name: {name}",
        "    ecosystem: PyPI",
        "  ranges:",
        "  - type: GIT",
        "    repo: https://example.invalid/repo",
        "    events:",
        '    - introduced: "0"',
        "    - fixed: 0123abcd",
        "  - type: ECOSYSTEM",
        "    events:",
    ]
    lines += [f'    - {kind}: "{version}"' for kind, version in events]
    lines += ["  versions:"] + [f'  - "{v}"' for v in versions] if versions else []
    return "\n".join(lines) + "\n" + extra


def write_db(root, advisories):
    for ident, name, text in advisories:
        folder = root / "vulns" / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{ident}.yaml").write_text(text)
    return root


def write_lock(path, text):
    path.write_text(text)
    return path


def findings_by_id(report):
    return {f.advisory: f for f in report.findings}


EVENTS = {
    "open_ended": [("introduced", "0")],
    "fixed_later": [("introduced", "0"), ("fixed", "2.0")],
    "fixed_before": [("introduced", "0"), ("fixed", "1.0")],
    "introduced_after": [("introduced", "3.0"), ("fixed", "3.2")],
    "last_affected_is_pin": [("introduced", "1.0"), ("last_affected", "1.5")],
    "last_affected_before": [("introduced", "1.0"), ("last_affected", "1.4.9")],
    "fixed_is_pin": [("introduced", "0"), ("fixed", "1.5")],
    "introduced_is_pin": [("introduced", "1.5"), ("fixed", "1.6")],
    "second_window": [
        ("introduced", "0"),
        ("fixed", "1.2"),
        ("introduced", "1.4"),
        ("fixed", "1.7"),
    ],
    "between_windows": [("introduced", "0"), ("fixed", "1.2"), ("introduced", "1.6")],
    "prerelease_fix": [("introduced", "0"), ("fixed", "1.5rc1")],
    "limit_below": [("introduced", "0"), ("limit", "1.5")],
}
AFFECTS_1_5 = {
    "open_ended": True,
    "fixed_later": True,
    "fixed_before": False,
    "introduced_after": False,
    "last_affected_is_pin": True,
    "last_affected_before": False,
    "fixed_is_pin": False,
    "introduced_is_pin": True,
    "second_window": True,
    "between_windows": False,
    "prerelease_fix": False,
    "limit_below": False,
}


@pytest.mark.parametrize("case", sorted(EVENTS))
def test_range_evaluation_follows_the_osv_rules(case):
    events = tuple(Event(kind, version) for kind, version in EVENTS[case])
    assert range_affects(events, Version("1.5")) is AFFECTS_1_5[case]


def test_events_are_evaluated_in_version_order_not_file_order():
    events = (Event("fixed", "2.0"), Event("introduced", "1.0"))
    assert range_affects(events, Version("1.5")) is True
    assert range_affects(events, Version("2.0")) is False
    assert range_affects(events, Version("0.9")) is False


@pytest.mark.parametrize("name", ["Foo_Bar", "foo-bar", "FOO.bar", "foo__bar", "Foo-_.Bar"])
def test_names_are_normalised_as_pep_503(name):
    assert normalize_name(name) == "foo-bar"


def test_audit_reports_affected_pins_with_their_fixes(tmp_path):
    db = write_db(
        tmp_path / "db",
        [
            ("A-1", "Foo_Bar", advisory_yaml("A-1", "Foo_Bar", EVENTS["fixed_later"])),
            ("A-2", "foo-bar", advisory_yaml("A-2", "foo-bar", EVENTS["fixed_before"])),
            ("A-3", "foo-bar", advisory_yaml("A-3", "foo-bar", EVENTS["introduced_after"])),
            ("A-4", "foo-bar", advisory_yaml("A-4", "foo.bar", EVENTS["last_affected_is_pin"])),
            ("A-5", "foo-bar", advisory_yaml("A-5", "FOO_BAR", EVENTS["second_window"])),
            ("A-6", "foo-bar", advisory_yaml("A-6", "foo-bar", versions=["1.5.0"])),
            ("A-7", "foo-bar", advisory_yaml("A-7", "foo-bar", versions=["1.4", "1.6"])),
            ("B-1", "other", advisory_yaml("B-1", "other", EVENTS["open_ended"])),
            ("C-1", "baz", advisory_yaml("C-1", "baz", EVENTS["fixed_before"])),
        ],
    )
    lock = write_lock(tmp_path / "req.lock", "# pins\nfoo-bar==1.5\nBaz==1.5  # comment\n")
    report = audit(read_pins(lock), db)
    found = findings_by_id(report)
    assert sorted(found) == ["A-1", "A-4", "A-5", "A-6"]
    assert found["A-1"].fixed == ("2.0",)
    assert found["A-1"].aliases == ("CVE-A-1",)
    assert found["A-4"].fixed == ()  # last_affected: no fixed version known
    assert found["A-5"].fixed == ("1.7",)
    assert found["A-1"].package == "foo-bar" and found["A-1"].version == "1.5"
    assert found["A-1"].source == str(Path("vulns/Foo_Bar/A-1.yaml"))
    assert report.advisories == 9
    assert report.with_advisories == ("baz", "foo-bar")
    assert report.newest_modified == "2024-05-01T10:00:00Z"
    assert report.problems == ()


def test_withdrawn_advisories_and_other_ecosystems_are_skipped(tmp_path):
    withdrawn = advisory_yaml("W-1", "foo", EVENTS["open_ended"], extra="withdrawn: 2024-06-01\n")
    npm = advisory_yaml("N-1", "foo", EVENTS["open_ended"]).replace("PyPI", "npm")
    db = write_db(tmp_path, [("W-1", "foo", withdrawn), ("N-1", "foo", npm)])
    report = audit(read_pins(write_lock(tmp_path / "r.lock", "foo==1.0\n")), db)
    assert report.findings == ()
    assert (report.advisories, report.withdrawn) == (2, 1)


def test_unparseable_range_falls_back_to_the_version_list_with_a_note(tmp_path):
    text = advisory_yaml("L-1", "foo", [("introduced", "0"), ("fixed", "2019-09-12x")], ["1.0"])
    db = write_db(tmp_path, [("L-1", "foo", text)])
    report = audit(read_pins(write_lock(tmp_path / "r.lock", "foo==1.0\n")), db)
    (finding,) = report.findings
    assert "'2019-09-12x' is not a PEP 440 version" in finding.notes[0]
    report = audit(read_pins(write_lock(tmp_path / "r.lock", "foo==1.1\n")), db)
    assert report.findings == ()


def test_osv_json_files_and_zip_archives_are_read(tmp_path):
    doc = {
        "id": "GHSA-xxxx",
        "modified": "2025-01-02T03:04:05Z",
        "aliases": ["CVE-2025-1"],
        "summary": "json advisory",
        "affected": [
            {
                "package": {"ecosystem": "PyPI", "name": "Foo_Bar"},
                "ranges": [
                    {"type": "ECOSYSTEM", "events": [{"introduced": "1.0"}, {"fixed": "1.9"}]}
                ],
            }
        ],
    }
    folder = tmp_path / "osv"
    folder.mkdir()
    (folder / "GHSA-xxxx.json").write_text(json.dumps(doc))
    archive = tmp_path / "all.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("GHSA-xxxx.json", json.dumps(doc))
    pins = read_pins(write_lock(tmp_path / "r.lock", "foo.bar==1.8.2\n"))
    for db in (folder, archive):
        report = audit(pins, db)
        assert [(f.advisory, f.fixed) for f in report.findings] == [("GHSA-xxxx", ("1.9",))]
        assert report.newest_modified == "2025-01-02T03:04:05Z"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("foo>=1.0\n", "r.lock:1: 'foo>=1.0' is not an exact 'name==version' pin"),
        ("foo==1.0\nbar==1\nFoo==2.0\n", "r.lock:3: Foo pinned twice (1.0 on line 1, 2.0 here)"),
        ("foo==not.a.version!\n", "r.lock:1: 'not.a.version!' is not a PEP 440 version"),
        ("foo==1\n-r other.txt\n", "r.lock:2: '-r other.txt' cannot be audited offline"),
        ("# nothing\n\n", "r.lock: no 'name==version' pins found"),
    ],
)
def test_bad_lock_lines_are_named(tmp_path, text, problem):
    with pytest.raises(LockError, match="r.lock") as caught:
        read_pins(write_lock(tmp_path / "r.lock", text))
    assert problem in str(caught.value)


def test_lock_options_extras_and_markers_are_understood(tmp_path):
    text = "--index-url https://x.invalid\nuvicorn[standard]==0.30.0 ; python_version >= '3.9'\n"
    (pin,) = read_pins(write_lock(tmp_path / "r.lock", text))
    assert (pin.name, pin.key, pin.version, pin.line) == ("uvicorn", "uvicorn", "0.30.0", 2)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("id: X\naffected: {}\n", "X.yaml: field 'affected' must be a list"),
        ("summary: no id\n", "X.yaml: field 'id' is missing"),
        ("id: X\naffected:\n- package: {ecosystem: PyPI}\n", "affected[0]: field 'package.name'"),
        ("id: X\naffected: [\n", "X.yaml: not valid YAML"),
        (
            "id: X\naffected:\n- package: {ecosystem: PyPI, name: foo}\n  ranges:\n"
            "  - type: ECOSYSTEM\n    events:\n    - {introduced: '0', fixed: '1'}\n",
            "affected[0].ranges[0].events[0]: must hold exactly one of",
        ),
    ],
)
def test_malformed_advisories_are_named(text, problem):
    with pytest.raises(AdvisoryError) as caught:
        load_advisory("vulns/foo/X.yaml", text)
    assert problem in str(caught.value)


def test_main_exit_status_output_and_json(tmp_path, capsys):
    db = write_db(
        tmp_path / "db", [("A-1", "foo", advisory_yaml("A-1", "foo", EVENTS["fixed_later"]))]
    )
    lock = write_lock(tmp_path / "r.lock", "foo==1.5\n")
    out = tmp_path / "report.json"
    assert main(["--db", str(db), "--requirements", str(lock), "--json", str(out)]) == 1
    text = capsys.readouterr().out
    assert "VULNERABLE foo==1.5: 1 advisories" in text
    assert "A-1 (CVE-A-1): fixed in 2.0" in text
    assert json.loads(out.read_text())["findings"][0]["advisory"] == "A-1"
    assert main(["--db", str(db), "--requirements", str(write_lock(lock, "foo==2.0\n"))]) == 0
    assert "Summary: 0 known vulnerabilities in 0 of 1 pinned packages" in capsys.readouterr().out
    (db / "vulns" / "foo" / "B-2.json").write_text("{not json")
    assert main(["--db", str(db), "--requirements", str(lock)]) == 2
    assert "UNREADABLE vulns/foo/B-2.json: not valid JSON" in capsys.readouterr().out
    assert main(["--db", str(tmp_path / "missing"), "--requirements", str(lock)]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_runs_as_a_script_from_the_repository_root(tmp_path):
    db = write_db(
        tmp_path / "db", [("A-1", "foo", advisory_yaml("A-1", "foo", EVENTS["open_ended"]))]
    )
    lock = write_lock(tmp_path / "r.lock", "foo==1.0\n")
    done = subprocess.run(
        [sys.executable, "security/audit.py", "--db", str(db), "--requirements", str(lock)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    assert "VULNERABLE foo==1.0" in done.stdout


def test_advisories_that_alias_each_other_are_one_finding(tmp_path):
    ghsa = advisory_yaml("GHSA-aaaa", "foo", EVENTS["fixed_later"])
    pysec = advisory_yaml("PYSEC-1", "foo", EVENTS["fixed_later"]).replace(
        "- CVE-PYSEC-1", "- CVE-PYSEC-1\n- GHSA-aaaa"
    )
    other = advisory_yaml("PYSEC-2", "foo", EVENTS["open_ended"])
    db = write_db(
        tmp_path, [("GHSA-aaaa", "foo", ghsa), ("PYSEC-1", "foo", pysec), ("PYSEC-2", "foo", other)]
    )
    report = audit(read_pins(write_lock(tmp_path / "r.lock", "foo==1.5\n")), db)
    assert [(f.advisory, f.aliases, f.fixed) for f in report.findings] == [
        ("GHSA-aaaa", ("CVE-GHSA-aaaa", "CVE-PYSEC-1", "PYSEC-1"), ("2.0",)),
        ("PYSEC-2", ("CVE-PYSEC-2",), ()),
    ]
