"""The four output formats of ``migration-guard check`` on hand-built reports."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from migration_guard import __version__
from migration_guard.analysis.model import Finding, Report, Severity
from migration_guard.errors import UnknownNameError, UsageError
from migration_guard.render import FORMATS, render_report
from migration_guard.render.github import escape_data, escape_property
from migration_guard.render.json_format import report_to_dict
from migration_guard.render.sarif import fingerprint, pascal_case, sarif_log

ODD_PATH = "migrations/versions/001 drop, users.py"


@dataclass(frozen=True)
class CatalogRule:
    id: str
    summary: str
    description: str
    hint: str


CATALOG = [
    CatalogRule(
        "drop-table",
        "Dropping a table",
        "DROP TABLE destroys every row of the table.",
        "Rename the table to an archive name first and drop it in a later release.",
    ),
    CatalogRule(
        "drop-column",
        "Dropping a column",
        "DROP COLUMN destroys the column's data.",
        "Stop writing the column (expand/contract), then drop it once unused.",
    ),
    CatalogRule("truncate-table", "Truncating a table", "TRUNCATE deletes every row.", ""),
]


def make_report() -> Report:
    return Report(
        findings=[
            Finding(
                rule="drop-table",
                severity=Severity.ERROR,
                table="users",
                file=ODD_PATH,
                line=12,
                column=5,
                message="drops protected table users",
                statement="DROP TABLE users",
                hint="Rename the table to an archive name first.",
            ),
            Finding(
                rule="drop-column",
                severity=Severity.WARNING,
                table="public.orders",
                file="sql/002.sql",
                line=3,
                column=1,
                message="drops column orders.note: 100% of its data is lost",
                statement="ALTER TABLE public.orders\n  DROP COLUMN note;",
                hint="Stop writing the column, then drop it later.",
            ),
            Finding(
                rule="unanalyzable",
                severity=Severity.ERROR,
                table=None,
                file="sql/002.sql",
                line=9,
                column=1,
                message="dynamic SQL: the target table cannot be known",
                statement="EXECUTE stmt",
            ),
            Finding(
                rule="drop-column",
                severity=Severity.ERROR,
                table="accounts",
                file="sql/003.sql",
                line=4,
                column=1,
                message="drops column accounts.legacy",
                statement="ALTER TABLE accounts DROP COLUMN legacy",
                suppressed=True,
                reason="column unused since v2",
            ),
        ],
        notes=["no database reachable: checked base:head"],
        files=[ODD_PATH, "sql/002.sql", "sql/003.sql"],
        statements=14,
    )


@pytest.fixture(autouse=True)
def _in_tmp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


# --------------------------------------------------------------------- dispatch


def test_formats_are_the_documented_ones() -> None:
    assert FORMATS == ("text", "json", "sarif", "github")


@pytest.mark.parametrize("fmt", ["xml", "", "TEXT", "sarif2"])
def test_unknown_format_is_a_usage_error_naming_the_known_ones(fmt: str) -> None:
    with pytest.raises(UnknownNameError) as caught:
        render_report(make_report(), fmt)
    assert isinstance(caught.value, UsageError)
    assert caught.value.exit_code == 2
    message = str(caught.value)
    assert repr(fmt) in message
    for known in FORMATS:
        assert known in message


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_renders_an_empty_report(fmt: str) -> None:
    output = render_report(Report(statements=0), fmt, rules=CATALOG)
    assert output
    assert not output.endswith("\n")


def test_sarif_without_explicit_rules_uses_catalogue_or_finding_ids() -> None:
    log = json.loads(render_report(make_report(), "sarif"))
    rule_ids = [rule["id"] for rule in log["runs"][0]["tool"]["driver"]["rules"]]
    assert {"drop-table", "drop-column", "unanalyzable"} <= set(rule_ids)
    assert len(rule_ids) == len(set(rule_ids))


# ------------------------------------------------------------------------- text


def test_text_lines_hints_suppressed_notes_and_summary() -> None:
    lines = render_report(make_report(), "text").splitlines()
    assert lines[0] == (f"{ODD_PATH}:12:5 error drop-table users — drops protected table users")
    assert lines[1] == "    hint: Rename the table to an archive name first."
    assert lines[2].startswith("sql/002.sql:3:1 warning drop-column public.orders — drops column")
    assert lines[3] == "    hint: Stop writing the column, then drop it later."
    # No hint for unanalyzable, and '-' for the missing table.
    assert lines[4] == (
        "sql/002.sql:9:1 error unanalyzable - — dynamic SQL: the target table cannot be known"
    )
    assert lines[5] == (
        "sql/003.sql:4:1 error drop-column accounts — drops column accounts.legacy"
        " (suppressed: column unused since v2)"
    )
    assert lines[6] == "note: no database reachable: checked base:head"
    assert lines[-1] == "2 errors, 1 warning, 1 suppressed in 14 statements (3 files)"
    assert "\x1b[" not in "\n".join(lines)


def test_text_clean_report_summary() -> None:
    report = Report(statements=7, files=["a.sql"])
    assert render_report(report, "text") == "no findings in 7 statements (1 file)"
    assert render_report(Report(statements=1), "text") == "no findings in 1 statement"


def test_text_only_suppressed_findings_is_no_findings() -> None:
    report = make_report()
    report.findings = [f for f in report.findings if f.suppressed]
    report.notes = []
    text = render_report(report, "text")
    assert text.splitlines()[-1] == "no findings, 1 suppressed in 14 statements (3 files)"
    assert "(suppressed: column unused since v2)" in text


def test_text_colour_only_when_asked() -> None:
    coloured = render_report(make_report(), "text", color=True)
    assert "\x1b[1;31merror\x1b[0m" in coloured
    assert "\x1b[1;33mwarning\x1b[0m" in coloured
    # The suppressed line is dimmed as a whole.
    assert any(
        line.startswith("\x1b[2m") and "suppressed" in line for line in coloured.splitlines()
    )
    plain = re.sub(r"\x1b\[[0-9;]*m", "", coloured)
    assert plain == render_report(make_report(), "text")


def test_text_escapes_control_characters_from_untrusted_sql() -> None:
    report = Report(
        findings=[
            Finding(
                rule="drop-table",
                severity=Severity.ERROR,
                table="evil\x1b[2Jname",
                file="a.sql",
                line=1,
                column=1,
                message="drops evil\x1b[2Jname\nsecond line",
                statement="DROP TABLE x",
            )
        ],
        statements=1,
    )
    text = render_report(report, "text")
    assert "\x1b" not in text
    assert "evil\\x1b[2Jname" in text
    assert len(text.splitlines()) == 3  # finding, blank, summary


# ------------------------------------------------------------------------- json


def test_json_has_required_keys_and_round_trips() -> None:
    report = make_report()
    document = json.loads(render_report(report, "json"))
    assert list(document) == ["findings", "summary", "notes", "version"]
    assert document["version"] == __version__
    assert document["notes"] == report.notes
    assert document["summary"] == report.summary()
    assert document["summary"]["errors"] == 2
    assert document["summary"]["suppressed"] == 1
    required = {
        "rule",
        "severity",
        "table",
        "file",
        "line",
        "column",
        "message",
        "statement",
        "suppressed",
    }
    for rendered, finding in zip(document["findings"], report.findings, strict=True):
        assert required <= set(rendered)
        rebuilt = Finding(**{**rendered, "severity": Severity(rendered["severity"])})
        assert rebuilt == finding
    assert document["findings"][2]["table"] is None
    suppressed = document["findings"][3]
    assert suppressed["suppressed"] is True
    assert suppressed["reason"] == "column unused since v2"


def test_json_is_compact_by_default_pretty_on_request_and_stable() -> None:
    first = render_report(make_report(), "json")
    assert first == render_report(make_report(), "json")
    assert first.startswith('{"findings":[{"rule":')
    assert "\n" not in first
    pretty = render_report(make_report(), "json", pretty=True)
    assert pretty.startswith('{\n  "findings": [')
    assert json.loads(pretty) == json.loads(first)


_TEXT = st.text(st.characters(max_codepoint=0x2FFF))


@given(
    st.lists(
        st.builds(
            Finding,
            rule=st.sampled_from(["drop-table", "unanalyzable"]) | _TEXT,
            severity=st.sampled_from(list(Severity)),
            table=st.none() | _TEXT,
            file=st.sampled_from([ODD_PATH, "sql/002.sql"]) | _TEXT,
            line=st.integers(min_value=0, max_value=10**9),
            column=st.integers(min_value=0, max_value=10**6),
            message=_TEXT,
            statement=_TEXT,
            hint=_TEXT,
            suppressed=st.booleans(),
            reason=st.none() | _TEXT,
        ),
        max_size=6,
    ),
    st.lists(_TEXT, max_size=2),
)
def test_compact_json_is_exactly_what_json_dumps_writes(
    findings: list[Finding], notes: list[str]
) -> None:
    # The compact renderer encodes findings itself (faster): byte for byte the
    # standard library's output, non-ASCII, control characters and DEL included.
    report = Report(findings=findings, notes=notes, files=["a.sql"], statements=7)
    expected = json.dumps(report_to_dict(report), separators=(",", ":"))
    assert render_report(report, "json") == expected
    assert list(report_to_dict(report, findings=False)) == ["summary", "notes", "version"]


# ------------------------------------------------------------------------ sarif
# A structural validator for the parts of the SARIF 2.1.0 schema we emit:
# required properties, enums, minimums and the allowed property names of each
# object (the schema forbids additional properties outside property bags).


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


ALLOWED = {
    "log": _names("$schema version runs inlineExternalProperties properties"),
    "run": _names(
        "tool invocations conversion language versionControlProvenance originalUriBaseIds "
        "artifacts logicalLocations graphs results automationDetails runAggregates "
        "baselineGuid redactionTokens defaultEncoding defaultSourceLanguage newlineSequences "
        "columnKind externalPropertyFileReferences threadFlowLocations taxonomies addresses "
        "translations policies webRequests webResponses specialLocations properties"
    ),
    "tool": _names("driver extensions properties"),
    "driver": _names(
        "guid name organization product productSuite shortDescription fullDescription "
        "fullName version semanticVersion dottedQuadFileVersion releaseDateUtc downloadUri "
        "informationUri globalMessageStrings notifications rules taxa locations language "
        "contents isComprehensive localizedDataSemanticVersion "
        "minimumRequiredLocalizedDataSemanticVersion associatedComponent translationMetadata "
        "supportedTaxonomies properties"
    ),
    "rule": _names(
        "id deprecatedIds guid deprecatedGuids name deprecatedNames shortDescription "
        "fullDescription messageStrings defaultConfiguration helpUri help relationships "
        "properties"
    ),
    "multiformat": _names("text markdown properties"),
    "configuration": _names("enabled level rank parameters properties"),
    "result": _names(
        "ruleId ruleIndex rule kind level message analysisTarget locations guid "
        "correlationGuid occurrenceCount partialFingerprints fingerprints stacks codeFlows "
        "graphs graphTraversals relatedLocations suppressions baselineState rank attachments "
        "hostedViewerUri workItemUris provenance fixes taxa webRequest webResponse properties"
    ),
    "message": _names("text markdown id arguments properties"),
    "location": _names(
        "id physicalLocation logicalLocations message annotations relationships properties"
    ),
    "physicalLocation": _names("address artifactLocation region contextRegion properties"),
    "artifactLocation": _names("uri uriBaseId index description properties"),
    "region": _names(
        "startLine startColumn endLine endColumn charOffset charLength byteOffset byteLength "
        "snippet message sourceLanguage properties"
    ),
    "suppression": _names("guid kind status location justification properties"),
    "notification": _names(
        "locations message level threadId timeUtc exception descriptor associatedRule properties"
    ),
}
LEVELS = {"none", "note", "warning", "error"}
URI_REFERENCE = re.compile(r"^[A-Za-z0-9\-._~!$&'()*+,;=:@/%]+$")


def check_object(
    value: object, kind: str, required: set[str] | frozenset[str] = frozenset()
) -> dict[str, Any]:
    assert isinstance(value, dict), f"{kind} must be an object"
    unknown = set(value) - ALLOWED[kind]
    assert not unknown, f"{kind} has properties the schema does not allow: {unknown}"
    missing = set(required) - set(value)
    assert not missing, f"{kind} lacks required {missing}"
    return value


def check_message(value: object, kind: str = "message") -> None:
    message = check_object(value, kind)
    assert isinstance(message.get("text"), str) and message["text"], f"{kind} needs text"


def check_property_bag(value: object) -> None:
    assert isinstance(value, dict)
    tags = value.get("tags", [])
    assert isinstance(tags, list) and all(isinstance(tag, str) for tag in tags)
    assert len(tags) == len(set(tags)), "tags must be unique"


def check_uri(uri: object) -> None:
    assert isinstance(uri, str) and uri
    assert URI_REFERENCE.match(uri), f"not a URI reference: {uri!r}"


def validate_sarif(log: Any) -> None:
    top = check_object(log, "log", {"version", "runs"})
    assert top["version"] == "2.1.0"
    assert top["$schema"] == "https://json.schemastore.org/sarif-2.1.0.json"
    runs = top["runs"]
    assert isinstance(runs, list) and len(runs) == 1
    run = check_object(runs[0], "run", {"tool"})
    assert run.get("columnKind") in (None, "utf16CodeUnits", "unicodeCodePoints")
    tool = check_object(run["tool"], "tool", {"driver"})
    driver = check_object(tool["driver"], "driver", {"name"})
    assert driver["name"] == "migration-guard"
    check_uri(driver["informationUri"])
    rules = driver.get("rules", [])
    assert isinstance(rules, list)
    for rule_value in rules:
        rule = check_object(rule_value, "rule", {"id"})
        for key in ("shortDescription", "fullDescription", "help"):
            check_message(rule[key], "multiformat")
        configuration = check_object(rule["defaultConfiguration"], "configuration")
        assert configuration["level"] in LEVELS
        check_property_bag(rule["properties"])
    for base in (run.get("originalUriBaseIds") or {}).values():
        location = check_object(base, "artifactLocation")
        assert str(location["uri"]).endswith("/")
    for invocation in run.get("invocations", []):
        assert isinstance(invocation["executionSuccessful"], bool)
        for notification in invocation.get("toolExecutionNotifications", []):
            check_object(notification, "notification", {"message"})
            check_message(notification["message"])
    results = run["results"]
    assert isinstance(results, list)
    for result_value in results:
        result = check_object(result_value, "result", {"message"})
        check_message(result["message"])
        assert result["level"] in LEVELS
        index = result["ruleIndex"]
        assert isinstance(index, int) and 0 <= index < len(rules)
        assert rules[index]["id"] == result["ruleId"]
        locations = result["locations"]
        assert isinstance(locations, list) and locations
        for location_value in locations:
            location = check_object(location_value, "location")
            physical = check_object(location["physicalLocation"], "physicalLocation")
            artifact = check_object(physical["artifactLocation"], "artifactLocation", {"uri"})
            check_uri(artifact["uri"])
            region = check_object(physical["region"], "region", {"startLine"})
            assert isinstance(region["startLine"], int) and region["startLine"] >= 1
            assert isinstance(region["startColumn"], int) and region["startColumn"] >= 1
        fingerprints = result["partialFingerprints"]
        assert isinstance(fingerprints, dict)
        assert all(isinstance(v, str) for v in fingerprints.values())
        for suppression in result.get("suppressions", []):
            entry = check_object(suppression, "suppression", {"kind"})
            assert entry["kind"] in {"inSource", "external"}
            assert isinstance(entry.get("justification", ""), str)


def sarif_of(report: Report) -> dict[str, Any]:
    log = json.loads(render_report(report, "sarif", rules=CATALOG))
    assert isinstance(log, dict)
    return log


def results_of(log: dict[str, Any]) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = log["runs"][0]["results"]
    return results


def test_sarif_is_structurally_valid() -> None:
    validate_sarif(sarif_of(make_report()))
    validate_sarif(sarif_of(Report()))


def test_sarif_rules_are_indexed_with_help() -> None:
    log = sarif_of(make_report())
    rules = log["runs"][0]["tool"]["driver"]["rules"]
    ids = [rule["id"] for rule in rules]
    # Catalogue order first, then rules only seen in findings.
    assert ids == ["drop-table", "drop-column", "truncate-table", "unanalyzable"]
    drop_table = rules[0]
    assert drop_table["name"] == "DropTable"
    assert drop_table["shortDescription"]["text"] == "Dropping a table"
    assert drop_table["fullDescription"]["text"] == "DROP TABLE destroys every row of the table."
    assert drop_table["help"]["text"].startswith("Rename the table to an archive name")
    assert "docs/rules/drop-table.md" in drop_table["help"]["markdown"]
    assert drop_table["helpUri"].endswith("docs/rules/drop-table.md")
    assert drop_table["defaultConfiguration"]["level"] == "error"
    # A catalogue rule without a hint still carries help text.
    assert rules[2]["help"]["text"].startswith("TRUNCATE deletes every row.")
    assert rules[3]["name"] == "Unanalyzable"
    for result in results_of(log):
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]


def test_sarif_levels_locations_and_suppressions() -> None:
    results = results_of(sarif_of(make_report()))
    assert [r["level"] for r in results] == ["error", "warning", "error", "error"]
    first = results[0]["locations"][0]["physicalLocation"]
    assert first["artifactLocation"]["uriBaseId"] == "%SRCROOT%"
    assert unquote(first["artifactLocation"]["uri"]) == ODD_PATH
    assert " " not in first["artifactLocation"]["uri"]
    assert first["region"] == {"startLine": 12, "startColumn": 5}
    assert results[0]["properties"] == {"table": "users"}
    assert "properties" not in results[2]  # no table
    assert "suppressions" not in results[0]
    assert results[3]["suppressions"] == [
        {"kind": "inSource", "justification": "column unused since v2"}
    ]


def test_sarif_notes_become_tool_notifications() -> None:
    run = sarif_of(make_report())["runs"][0]
    notifications = run["invocations"][0]["toolExecutionNotifications"]
    assert [n["message"]["text"] for n in notifications] == [
        "no database reachable: checked base:head"
    ]


def test_sarif_paths_are_relative_to_cwd_with_forward_slashes(tmp_path: Path) -> None:
    inside = tmp_path / "db" / "migrations" / "001.sql"
    report = Report(
        findings=[
            replace(make_report().findings[0], file=str(inside)),
            replace(make_report().findings[0], file="db\\windows\\002.sql"),
            replace(make_report().findings[0], file="./db/./003.sql", line=0, column=0),
        ]
    )
    log = sarif_of(report)
    validate_sarif(log)
    locations = [r["locations"][0]["physicalLocation"] for r in results_of(log)]
    assert [loc["artifactLocation"]["uri"] for loc in locations] == [
        "db/migrations/001.sql",
        "db/windows/002.sql",
        "db/003.sql",
    ]
    assert locations[2]["region"] == {"startLine": 1, "startColumn": 1}


def test_sarif_path_outside_cwd_is_an_absolute_file_uri(tmp_path: Path) -> None:
    outside = tmp_path.parent / "elsewhere" / "x.sql"
    report = Report(findings=[replace(make_report().findings[0], file=str(outside))])
    log = sarif_of(report)
    validate_sarif(log)
    artifact = results_of(log)[0]["locations"][0]["physicalLocation"]["artifactLocation"]
    assert artifact["uri"].startswith("file:///")
    assert "uriBaseId" not in artifact


def test_sarif_fingerprints_survive_reformatting_and_line_moves() -> None:
    base = make_report().findings[1]
    moved = replace(base, line=40, statement="ALTER TABLE public.orders DROP COLUMN note")
    other_rule = replace(base, rule="drop-table")
    assert fingerprint(base, "sql/002.sql") == fingerprint(moved, "sql/002.sql")
    assert fingerprint(base, "sql/002.sql") != fingerprint(other_rule, "sql/002.sql")
    assert fingerprint(base, "sql/002.sql") != fingerprint(base, "sql/other.sql")


def test_sarif_duplicate_statements_get_distinct_fingerprints() -> None:
    finding = make_report().findings[0]
    report = Report(findings=[finding, replace(finding, line=30)])
    values = [r["partialFingerprints"]["migrationGuard/v1"] for r in results_of(sarif_of(report))]
    assert values[0] != values[1]
    assert values[0].split(":")[0] == values[1].split(":")[0]


def test_sarif_log_accepts_an_explicit_base(tmp_path: Path) -> None:
    project = tmp_path / "project"
    finding = replace(make_report().findings[0], file=str(project / "m" / "1.sql"))
    log: dict[str, Any] = sarif_log(Report(findings=[finding]), CATALOG, base=project)
    run = log["runs"][0]
    assert run["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"] == {
        "uri": "m/1.sql",
        "uriBaseId": "%SRCROOT%",
    }
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"] == project.resolve().as_uri() + "/"


@pytest.mark.parametrize(
    ("rule_id", "name"),
    [
        ("drop-table", "DropTable"),
        ("suppression-without-reason", "SuppressionWithoutReason"),
        ("x", "X"),
    ],
)
def test_pascal_case(rule_id: str, name: str) -> None:
    assert pascal_case(rule_id) == name


# ----------------------------------------------------------------------- github


def test_github_annotations_for_active_findings_only() -> None:
    lines = render_report(make_report(), "github").splitlines()
    assert lines[0] == (
        "::error file=migrations/versions/001 drop%2C users.py,line=12,col=5,"
        "title=migration-guard drop-table::drops protected table users"
        "%0Ahint: Rename the table to an archive name first."
    )
    assert lines[1] == (
        "::warning file=sql/002.sql,line=3,col=1,title=migration-guard drop-column::"
        "drops column orders.note: 100%25 of its data is lost"
        "%0Ahint: Stop writing the column, then drop it later."
    )
    assert lines[2] == (
        "::error file=sql/002.sql,line=9,col=1,title=migration-guard unanalyzable::"
        "dynamic SQL: the target table cannot be known"
    )
    assert not any("accounts" in line for line in lines)  # the suppressed finding
    assert lines[3] == "note: no database reachable: checked base:head"
    assert (
        lines[4] == "migration-guard: 2 errors, 1 warning, 1 suppressed in 14 statements (3 files)"
    )
    assert len(lines) == 5


def test_github_cannot_be_tricked_into_extra_commands() -> None:
    finding = replace(
        make_report().findings[0],
        file="a,title=x::oops.sql",
        message="line one\r\n::error::forged",
        hint="",
    )
    report = Report(findings=[finding], notes=["note\n::warning::forged"])
    lines = render_report(report, "github").splitlines()
    assert len(lines) == 3
    assert lines[0] == (
        "::error file=a%2Ctitle=x%3A%3Aoops.sql,line=12,col=5,"
        "title=migration-guard drop-table::line one%0D%0A::error::forged"
    )
    assert not lines[1].startswith("::") and not lines[2].startswith("::")


def test_github_note_severity_is_a_notice() -> None:
    finding = replace(make_report().findings[0], severity=Severity.NOTE)
    assert render_report(Report(findings=[finding]), "github").startswith("::notice file=")


def unescape_property(text: str) -> str:
    for escaped, raw in (("%2C", ","), ("%3A", ":"), ("%0A", "\n"), ("%0D", "\r"), ("%25", "%")):
        text = text.replace(escaped, raw)
    return text


@given(st.text())
def test_github_property_escaping_is_safe_and_reversible(text: str) -> None:
    escaped = escape_property(text)
    assert not set(escaped) & {",", ":", "\n", "\r"}
    assert unescape_property(escaped) == text


@given(st.text())
def test_github_data_escaping_is_safe_and_reversible(text: str) -> None:
    escaped = escape_data(text)
    assert "\n" not in escaped and "\r" not in escaped
    assert unescape_property(escaped) == text


# ------------------------------------------------------------- pre-commit hook


def _hook_setting(key: str) -> str:
    """A top-level scalar of the single hook in .pre-commit-hooks.yaml (no YAML library needed)."""
    hooks = (Path(__file__).resolve().parents[2] / ".pre-commit-hooks.yaml").read_text()
    match = re.search(rf"^  {key}: (.+)$", hooks, re.MULTILINE)
    assert match, f"{key} missing from .pre-commit-hooks.yaml"
    value = match.group(1).strip()
    return value[1:-1] if value[:1] in "'\"" else value


def test_pre_commit_hook_definition() -> None:
    assert _hook_setting("entry") == "migration-guard check"
    assert _hook_setting("language") == "python"
    assert _hook_setting("pass_filenames") == "true"
    included = re.compile(_hook_setting("files"))
    excluded = re.compile(_hook_setting("exclude"))

    def selected(path: str) -> bool:
        return bool(included.search(path)) and not excluded.search(path)

    for path in ("a.sql", "db/001 init.sql", "versions/ab12.py", "app/migrations/versions/x.py"):
        assert selected(path), path
    for path in ("app/models.py", "migrations/env.py", "migrations/__init__.py", "a.sqlite"):
        assert not selected(path), path


@dataclass(frozen=True)
class RuleWithSeverity(CatalogRule):
    default_severity: Severity = Severity.WARNING


def test_sarif_default_level_follows_the_rule_when_known() -> None:
    rules = [
        RuleWithSeverity("rename-table", "Renaming", "Renames break readers.", "Use a view."),
        CatalogRule("unused-suppression", "Unused suppression", "Matched nothing.", ""),
        CatalogRule("drop-table", "Dropping", "Destroys rows.", ""),
    ]
    log: dict[str, Any] = sarif_log(Report(), rules)
    levels = [r["defaultConfiguration"]["level"] for r in log["runs"][0]["tool"]["driver"]["rules"]]
    assert levels == ["warning", "warning", "error"]
