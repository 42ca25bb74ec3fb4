"""SARIF 2.1.0 for GitHub code scanning (``github/codeql-action/upload-sarif``).

Locations are relative to the working directory (``%SRCROOT%``), which is the
repository root in CI, because that is what code scanning maps to files.
Suppressed findings stay in the log with an ``inSource`` suppression so the
approval and its reason remain visible in the code scanning UI.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from migration_guard import __version__
from migration_guard.analysis.model import Finding, Report, Severity
from migration_guard.render._common import relative_posix_path

if TYPE_CHECKING:
    from migration_guard.render import RuleInfo

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_VERSION = "2.1.0"
TOOL_NAME = "migration-guard"
PROJECT_URL = "https://github.com/migration-guard/migration-guard"
RULE_DOCS_URL = f"{PROJECT_URL}/blob/main/docs/rules/"
SOURCE_ROOT = "%SRCROOT%"
#: Key of our own fingerprint; versioned so a change of algorithm can be told apart.
FINGERPRINT_KEY = "migrationGuard/v1"

_LEVELS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.NOTE: "note"}
#: Rules whose findings never reach error severity (a rule object may instead
#: carry ``default_severity``). Everything else defaults to error because every
#: table is protected unless configured otherwise.
_KNOWN_DEFAULT_LEVELS = {"unused-suppression": "warning"}
# Characters a relative URI reference may keep unescaped; ':' is left out so a
# first segment like ``c:x.sql`` is never read as a scheme.
_URI_SAFE = "/-._~!$&'()*+,;=@"


@dataclass(frozen=True)
class _RuleDescriptor:
    id: str
    summary: str
    description: str
    hint: str
    level: str


def pascal_case(rule_id: str) -> str:
    """``drop-table`` -> ``DropTable`` (SARIF's human-readable rule ``name``)."""
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^0-9A-Za-z]+", rule_id))


def rule_docs_url(rule_id: str) -> str:
    """Where the documentation page of ``rule_id`` lives."""
    return f"{RULE_DOCS_URL}{quote(rule_id)}.md"


def _default_level(rule: RuleInfo) -> str:
    # The protocol does not require a default severity; use one when the rule has it.
    for attribute in ("default_severity", "severity"):
        value = getattr(rule, attribute, None)
        if isinstance(value, Severity):
            return _LEVELS[value]
        if isinstance(value, str) and value in _LEVELS.values():
            return value
    return _KNOWN_DEFAULT_LEVELS.get(rule.id, "error")


def _descriptors(rules: Sequence[RuleInfo], findings: Sequence[Finding]) -> list[_RuleDescriptor]:
    """The catalogue's rules, then any rule only known from a finding (so every
    result has a valid ``ruleIndex``)."""
    descriptors: dict[str, _RuleDescriptor] = {}
    for rule in rules:
        if rule.id not in descriptors:
            descriptors[rule.id] = _RuleDescriptor(
                id=rule.id,
                summary=rule.summary,
                description=rule.description,
                hint=rule.hint,
                level=_default_level(rule),
            )
    for finding in findings:
        if finding.rule not in descriptors:
            descriptors[finding.rule] = _RuleDescriptor(
                id=finding.rule,
                summary="",
                description="",
                hint=finding.hint,
                level=_LEVELS[finding.severity],
            )
    return list(descriptors.values())


def _rule_object(rule: _RuleDescriptor) -> dict[str, object]:
    summary = rule.summary or rule.id.replace("-", " ")
    description = rule.description or summary
    advice = rule.hint or description
    url = rule_docs_url(rule.id)
    return {
        "id": rule.id,
        "name": pascal_case(rule.id),
        "shortDescription": {"text": summary},
        "fullDescription": {"text": description},
        "helpUri": url,
        "help": {
            "text": f"{advice}\n\nDocumentation: {url}",
            "markdown": f"{advice}\n\nSee [{rule.id}]({url}) for the safe alternatives.",
        },
        "defaultConfiguration": {"level": rule.level},
        "properties": {"tags": ["migration", "data-loss", TOOL_NAME]},
    }


def artifact_location(path: str, base: Path | None = None) -> dict[str, str]:
    """A SARIF ``artifactLocation``: relative to ``%SRCROOT%`` when the file lies
    under ``base`` (default: the working directory), else an absolute ``file:`` URI."""
    relative = relative_posix_path(path, base)
    if relative is not None:
        return {"uri": quote(relative, safe=_URI_SAFE), "uriBaseId": SOURCE_ROOT}
    return {"uri": Path(path).resolve().as_uri()}


def normalise_statement(statement: str) -> str:
    """The statement with whitespace runs collapsed and trailing semicolons dropped,
    so reformatting a migration does not change its fingerprint."""
    return " ".join(statement.split()).rstrip(";").rstrip()


def fingerprint(finding: Finding, location_uri: str) -> str:
    """A stable hash of rule, file and normalised statement; line moves keep it."""
    material = "\0".join((finding.rule, location_uri, normalise_statement(finding.statement)))
    return hashlib.sha256(material.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _result(
    finding: Finding,
    rule_index: int,
    location: dict[str, str],
    partial_fingerprint: str,
) -> dict[str, object]:
    result: dict[str, object] = {
        "ruleId": finding.rule,
        "ruleIndex": rule_index,
        "level": _LEVELS[finding.severity],
        "message": {"text": finding.message or finding.rule},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": location,
                    "region": {
                        "startLine": max(1, finding.line),
                        "startColumn": max(1, finding.column),
                    },
                }
            }
        ],
        "partialFingerprints": {FINGERPRINT_KEY: partial_fingerprint},
    }
    if finding.table is not None:
        result["properties"] = {"table": finding.table}
    if finding.suppressed:
        result["suppressions"] = [
            {"kind": "inSource", "justification": finding.reason or "no reason given"}
        ]
    return result


def sarif_log(
    report: Report, rules: Sequence[RuleInfo], *, base: Path | None = None
) -> dict[str, object]:
    """The SARIF log as plain Python values."""
    root = Path.cwd() if base is None else base
    descriptors = _descriptors(rules, report.findings)
    index_of = {rule.id: index for index, rule in enumerate(descriptors)}
    occurrences: dict[str, int] = {}
    results: list[dict[str, object]] = []
    for finding in report.findings:
        location = artifact_location(finding.file, root)
        digest = fingerprint(finding, location["uri"])
        # Identical statements in one file must still get distinct fingerprints.
        occurrences[digest] = occurrences.get(digest, 0) + 1
        results.append(
            _result(finding, index_of[finding.rule], location, f"{digest}:{occurrences[digest]}")
        )
    run: dict[str, object] = {
        "tool": {
            "driver": {
                "name": TOOL_NAME,
                "informationUri": PROJECT_URL,
                "version": __version__,
                "semanticVersion": __version__,
                "rules": [_rule_object(rule) for rule in descriptors],
            }
        },
        "originalUriBaseIds": {SOURCE_ROOT: {"uri": root.resolve().as_uri().rstrip("/") + "/"}},
        "invocations": [
            {
                "executionSuccessful": True,
                "toolExecutionNotifications": [
                    {"level": "note", "message": {"text": note}} for note in report.notes
                ],
            }
        ],
        "columnKind": "unicodeCodePoints",
        "results": results,
    }
    return {"$schema": SARIF_SCHEMA, "version": SARIF_VERSION, "runs": [run]}


def render_sarif(report: Report, rules: Sequence[RuleInfo], *, base: Path | None = None) -> str:
    """Render ``report`` as a SARIF 2.1.0 log describing ``rules``."""
    return json.dumps(sarif_log(report, rules, base=base), indent=2)
