"""Suppression comments: ``migration-guard: allow RULE[, RULE...] because: REASON``.

A suppression is a comment directly above the statement (SQL) or the ``op.``
call (Alembic revision) it is meant for::

    -- migration-guard: allow drop-column because: unused since v2.3, archived in #1234
    ALTER TABLE users DROP COLUMN legacy_flag;

    # migration-guard: allow drop-table, truncate-table because: staging-only table
    op.drop_table("import_scratch")

SQL accepts ``--``, ``#`` and ``/* ... */`` comments, Python ``#``. Blank lines
and other comment lines may sit between the suppression and its statement; a
trailing comment on the statement's own line works too. The reason is required:
a suppression without one does not apply and is itself an error
(``suppression-without-reason``). A rule id that is unknown, or that suppressed
nothing, gives an ``unused-suppression`` warning. Suppressed findings are kept,
marked ``suppressed`` with the reason, so that reports and audits show them.
"""

from __future__ import annotations

import bisect
import dataclasses
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from migration_guard.analysis.model import SUPPRESSION_MARKER, Finding, Severity

__all__ = ["Suppression", "apply_suppressions", "find_suppressions"]

MISSING_REASON_RULE = "suppression-without-reason"
UNUSED_RULE = "unused-suppression"

_MARKER = SUPPRESSION_MARKER
_DIRECTIVE = re.compile(r"migration-guard\s*:\s*allow\b(?P<rest>.*)", re.IGNORECASE)
_BECAUSE = re.compile(r"\bbecause\b\s*:?", re.IGNORECASE)
_TRAILING_COMMENT = re.compile(r"(?:--|#|/\*)\s*migration-guard\s*:", re.IGNORECASE)
_LINE_COMMENT_STARTS = ("--", "#")
_STATEMENT_PREVIEW = 500
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class Suppression:
    """One ``migration-guard: allow`` comment.

    ``target_line`` is the first line of code below the comment (or the
    comment's own line for a trailing comment); None when nothing follows.
    ``reason`` is None when the comment gives none.
    """

    file: str
    line: int
    column: int
    rule_ids: tuple[str, ...]
    reason: str | None
    target_line: int | None
    text: str


@dataclass
class _FileScan:
    suppressions: list[Suppression] = field(default_factory=list)
    #: Sorted line numbers (1-based) that hold code, not comments or blanks.
    code_lines: list[int] = field(default_factory=list)

    def anchor(self, line: int) -> int | None:
        """The first code line at or after ``line``: where a statement really starts."""
        position = bisect.bisect_left(self.code_lines, line)
        return self.code_lines[position] if position < len(self.code_lines) else None


def _classify(lines: list[str]) -> list[bool]:
    """For each line, whether it holds code (True) or only comments/blank (False)."""
    is_code: list[bool] = []
    in_block = False
    for raw in lines:
        rest = raw.strip()
        code = False
        while rest:
            if in_block:
                end = rest.find("*/")
                if end < 0:
                    rest = ""
                    break
                in_block = False
                rest = rest[end + 2 :].strip()
            elif rest.startswith("/*") and not rest.startswith("/*!"):
                in_block = True
                rest = rest[2:]
            elif rest.startswith(_LINE_COMMENT_STARTS):
                break
            else:
                code = True
                break
        is_code.append(code)
    return is_code


def _parse_directive(comment: str) -> tuple[tuple[str, ...], str | None] | None:
    match = _DIRECTIVE.search(comment)
    if match is None:
        return None
    rest = match.group("rest")
    end_of_block = rest.find("*/")
    if end_of_block >= 0:
        rest = rest[:end_of_block]
    because = _BECAUSE.search(rest)
    ids_text, reason = (rest[: because.start()], rest[because.end() :]) if because else (rest, "")
    rule_ids = tuple(part.lower() for part in re.split(r"[\s,]+", ids_text) if part)
    return rule_ids, (reason.strip() or None)


def _scan(source_text: str, file: str) -> _FileScan:
    scan = _FileScan()
    if _MARKER not in source_text.lower():
        return scan
    # Lines as the splitter counts them: CR, LF and CRLF each end one (not str.splitlines,
    # which also breaks at form feeds and Unicode separators).
    lines = _LINE_BREAK.split(source_text)
    is_code = _classify(lines)
    scan.code_lines = [number for number, code in enumerate(is_code, start=1) if code]
    for index, line in enumerate(lines):
        if _MARKER not in line.lower():
            continue
        if is_code[index]:
            trailing = _TRAILING_COMMENT.search(line)
            if trailing is None:
                continue
            start, target = trailing.start(), index + 1
        else:
            start, target_or_none = 0, scan.anchor(index + 2)
            target = target_or_none if target_or_none is not None else 0
        parsed = _parse_directive(line[start:])
        if parsed is None:
            continue
        rule_ids, reason = parsed
        column = start + 1 if is_code[index] else len(line) - len(line.lstrip()) + 1
        scan.suppressions.append(
            Suppression(
                file=file,
                line=index + 1,
                column=column,
                rule_ids=rule_ids,
                reason=reason,
                target_line=target or None,
                text=line.strip()[:_STATEMENT_PREVIEW],
            )
        )
    return scan


def find_suppressions(source_text: str, file: str) -> list[Suppression]:
    """Every ``migration-guard: allow`` comment in ``source_text`` (SQL or Python)."""
    return _scan(source_text, file).suppressions


def _known_rule_ids() -> list[str]:
    from migration_guard.analysis.rules import rule_ids

    return rule_ids()


def _meta_finding(
    suppression: Suppression, rule: str, severity: Severity, message: str, hint: str
) -> Finding:
    return Finding(
        rule=rule,
        severity=severity,
        table=None,
        file=suppression.file,
        line=suppression.line,
        column=suppression.column,
        message=message,
        statement=suppression.text,
        hint=hint,
    )


def apply_suppressions(findings: Iterable[Finding], sources: Mapping[str, str]) -> list[Finding]:
    """Mark findings suppressed by comments in ``sources`` (file -> text) and add
    findings about the suppressions themselves (missing reason, unused, unknown id).

    Each file's text is scanned once. Findings in files absent from ``sources``
    are returned unchanged.
    """
    scans = {file: _scan(text, file) for file, text in sources.items()}
    used: set[tuple[str, int, str]] = set()
    result: list[Finding] = []
    for finding in findings:
        if not finding.suppressed:
            # Inside dynamic SQL or a stored program, a suppression above the
            # statement that runs it counts too (Finding.anchors).
            for file, line in ((finding.file, finding.line), *finding.anchors):
                scan = scans.get(file)
                if scan is not None and scan.suppressions:
                    finding = _suppress(finding, scan, used, line)
                    if finding.suppressed:
                        break
        result.append(finding)

    known = _known_rule_ids()
    known_set = set(known)
    for scan in scans.values():
        for suppression in scan.suppressions:
            result.extend(_judge(suppression, used, known, known_set))
    return result


def _suppress(
    finding: Finding, scan: _FileScan, used: set[tuple[str, int, str]], line: int
) -> Finding:
    anchor = scan.anchor(line)
    if anchor is None:
        return finding
    for suppression in scan.suppressions:
        if (
            suppression.target_line == anchor
            and suppression.reason is not None
            and finding.rule in suppression.rule_ids
        ):
            used.add((suppression.file, suppression.line, finding.rule))
            return dataclasses.replace(finding, suppressed=True, reason=suppression.reason)
    return finding


def _judge(
    suppression: Suppression,
    used: set[tuple[str, int, str]],
    known: list[str],
    known_set: set[str],
) -> list[Finding]:
    if suppression.reason is None:
        listed = ", ".join(suppression.rule_ids) or "RULE"
        return [
            _meta_finding(
                suppression,
                MISSING_REASON_RULE,
                Severity.ERROR,
                "suppression has no reason and does not apply; write "
                f"'migration-guard: allow {listed} because: <why this is safe>'",
                "Add 'because: <why this is safe>' to the suppression comment.",
            )
        ]
    if not suppression.rule_ids:
        return [
            _meta_finding(
                suppression,
                UNUSED_RULE,
                Severity.WARNING,
                "suppression names no rule id; known rule ids: " + ", ".join(known),
                "Name the rule to allow, e.g. 'allow drop-column because: ...'.",
            )
        ]
    problems: list[Finding] = []
    for rule_id in suppression.rule_ids:
        if rule_id not in known_set:
            problems.append(
                _meta_finding(
                    suppression,
                    UNUSED_RULE,
                    Severity.WARNING,
                    f"suppression names unknown rule id {rule_id!r}; known rule ids: "
                    + ", ".join(known),
                    "Fix the rule id.",
                )
            )
        elif (suppression.file, suppression.line, rule_id) not in used:
            problems.append(
                _meta_finding(
                    suppression,
                    UNUSED_RULE,
                    Severity.WARNING,
                    f"suppression of {rule_id} matched no finding; put it directly above "
                    "the statement or op. call it is for, or delete it",
                    "Move the comment directly above its statement, or delete it.",
                )
            )
    return problems
