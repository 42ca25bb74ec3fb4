"""Approvals of destructive steps: ``--allow RULE:TABLE --reason TEXT``, inline
suppressions and the typed confirmation of an approved destructive step.

A plan with an unapproved destructive finding is refused before anything is locked
for writing or changed; every approval that lets a step through is recorded in the
result (and so in the audit log) with its reason and where it came from.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from migration_guard.analysis.model import Finding, Report, Severity, TableRef
from migration_guard.errors import BlockedMigration, UsageError

if TYPE_CHECKING:
    from migration_guard.alembic.results import UpgradeResult

#: ``confirm(word)`` returns True when the user typed ``word`` (a table or database name).
ConfirmCallback = Callable[[str], bool]


@dataclass(frozen=True)
class Allowance:
    """``--allow RULE:TABLE``: approval of a rule on a table (``*`` for any table)."""

    rule: str
    table: str
    reason: str

    def matches(self, finding: Finding) -> bool:
        if finding.rule != self.rule:
            return False
        if self.table == "*":
            return True
        if finding.table is None:
            return False
        name = finding.table.lower()
        return fnmatch.fnmatchcase(name, self.table.lower()) or fnmatch.fnmatchcase(
            name.rsplit(".", 1)[-1], self.table.lower()
        )


#: Rules whose ``--allow RULE:*`` is refused: the finding often has no known target, so
#: a wildcard would approve statements on any table, protected ones included.
NO_WILDCARD_RULES = frozenset({"unanalyzable"})


@dataclass(frozen=True)
class Approval:
    """What one approved finding lets through at run time, and nothing more.

    ``table`` is the finding's table (``(schema, name)`` lower-cased; None when the
    finding named no table: it then approves only statements whose target is unknown
    too). ``revision`` is the absolute path of the revision whose inline suppression
    approved it; None for ``--allow``, which approves the finding in every revision
    of the run.
    """

    rule: str
    table: tuple[str | None, str] | None
    revision: str | None


class Approvals:
    """The approvals of one run, keyed by revision, rule and schema-qualified table.

    An unqualified name is in ``default_schema`` (the connection's default schema or
    database), so ``app.customers`` and ``customers`` are one table when it is ``app``.
    """

    def __init__(self, approvals: Iterable[Approval] = (), default_schema: str | None = None):
        self.default_schema = default_schema.lower() if default_schema else None
        self.items: set[Approval] = set()
        for approval in approvals:
            self.add(approval.rule, approval.table, approval.revision)

    def key(self, table: TableRef | str | None) -> tuple[str | None, str] | None:
        """``(schema, name)`` of ``table``, lower-cased, the default schema filled in."""
        if table is None:
            return None
        if isinstance(table, str):
            qualifier, _, name = table.rpartition(".")
            table = TableRef(name=name, schema=qualifier or None)
        schema = table.schema.lower() if table.schema else self.default_schema
        return (schema, table.name.lower())

    def add(
        self,
        rule: str,
        table: TableRef | str | tuple[str | None, str] | None,
        revision: str | None,
    ) -> None:
        key = table if isinstance(table, tuple) else self.key(table)
        if key is not None and key[0] is None and self.default_schema:
            key = (self.default_schema, key[1])
        where = os.path.abspath(revision) if revision else None
        self.items.add(Approval(rule, key, where))

    def allows(self, rule: str, table: TableRef | str | None, revision: str | None) -> bool:
        """Whether ``rule`` on ``table`` in the revision file ``revision`` is approved.

        Two set lookups, whatever the number of approvals: one approving every
        revision (``--allow``), one approving this revision only (inline).
        """
        key = self.key(table)
        if Approval(rule, key, None) in self.items:
            return True
        if not revision:
            return False
        return Approval(rule, key, os.path.abspath(revision)) in self.items

    def __len__(self) -> int:
        return len(self.items)

    def __bool__(self) -> bool:
        return bool(self.items)


def parse_allowances(allow: Sequence[str], reason: str | None) -> list[Allowance]:
    """``RULE:TABLE`` texts as :class:`Allowance` values; a reason is required."""
    from migration_guard.analysis.rules import rule_ids

    if not allow:
        return []
    if not reason or not reason.strip():
        raise UsageError(
            "--allow needs --reason TEXT: every approval of a destructive step is recorded "
            "with its reason (e.g. --reason 'archived in ticket #1234')"
        )
    known = set(rule_ids())
    result: list[Allowance] = []
    for text in allow:
        rule, separator, table = text.partition(":")
        rule, table = rule.strip(), table.strip()
        if not separator or not rule or not table:
            raise UsageError(
                f"--allow {text!r} is not RULE:TABLE, e.g. --allow drop-column:customers"
            )
        if rule not in known:
            raise UsageError(
                f"--allow {text!r}: unknown rule {rule!r}; known rules: {', '.join(sorted(known))}"
            )
        if rule in NO_WILDCARD_RULES and not table.replace("*", "").replace("?", "").strip("."):
            raise UsageError(
                f"--allow {text!r} would approve every statement migration-guard cannot "
                "analyse, on any table, protected ones included; it is refused. Name the "
                f"table (--allow {rule}:customers), or approve the one statement with an "
                f"inline comment `# migration-guard: allow {rule} because: REASON` above "
                "it in its revision"
            )
        result.append(Allowance(rule, table, reason.strip()))
    return result


def apply_approvals(
    report: Report,
    allow: Sequence[Allowance],
    result: UpgradeResult,
    *,
    command: str,
    refuse: bool,
    default_schema: str | None = None,
) -> Approvals:
    """Mark the findings ``allow`` approves, record every approval in ``result`` and
    return the approvals for the statement interceptor: each for its rule, its finding's
    qualified table and (for an inline suppression) its revision only.

    With ``refuse`` (every real run; a dry run only reports), an unapproved
    destructive finding raises :class:`BlockedMigration`.
    """
    findings: list[Finding] = []
    used: set[Allowance] = set()
    for finding in report.findings:
        if not finding.suppressed:
            for allowance in allow:
                if allowance.matches(finding):
                    used.add(allowance)
                    finding = dataclasses.replace(
                        finding, suppressed=True, reason=f"--allow: {allowance.reason}"
                    )
                    break
        findings.append(finding)
    report.findings = findings
    result.findings = findings
    for allowance in allow:
        if allowance not in used:
            result.notes.append(
                f"--allow {allowance.rule}:{allowance.table} matched no finding of the plan"
            )
    approved = Approvals(default_schema=default_schema)
    for finding in findings:
        if finding.suppressed:
            by_flag = (finding.reason or "").startswith("--allow")
            # An inline suppression may sit at an anchor (the CALL or PREPARE that runs
            # the statement) in another revision: it approves there too, nowhere else.
            for file in {finding.file, *(anchor for anchor, _line in finding.anchors)}:
                approved.add(finding.rule, finding.table, None if by_flag else file)
            result.approvals.append(
                {
                    "rule": finding.rule,
                    "table": finding.table,
                    "file": finding.file,
                    "line": finding.line,
                    "reason": finding.reason,
                    "by": "command line" if by_flag else "inline suppression",
                }
            )
    if report.has_errors and refuse:
        blocking = [f for f in report.active if f.severity is Severity.ERROR]
        lines = [
            f"  {f.file}:{f.line}: {f.rule} on {f.table or '(unknown table)'}: {f.message}"
            for f in blocking
        ]
        raise BlockedMigration(
            f"{command} refused before anything changed: "
            f"{len(blocking)} unapproved destructive finding(s):\n"
            + "\n".join(lines)
            + "\nApprove a step with an inline comment "
            "`# migration-guard: allow RULE because: REASON` above the op call, or with "
            "--allow RULE:TABLE --reason TEXT.",
            blocking,
        )
    return approved


def confirm_approved(
    report: Report, *, command: str, yes: bool, confirm: ConfirmCallback | None
) -> None:
    """Have the user type the name of each table an approved destructive step touches.

    ``yes`` answers for them; without a terminal to ask on (``confirm`` is None) an
    approved destructive step is refused with a :class:`UsageError`.
    """
    tables = sorted(
        {
            f.table
            for f in report.findings
            if f.suppressed and f.severity is Severity.ERROR and f.table
        }
    )
    if not tables or yes:
        return
    if confirm is None:
        raise UsageError(
            f"the plan has approved destructive steps on {', '.join(tables)}; "
            "pass --yes to confirm them (no terminal to ask on)"
        )
    for table in tables:
        if not confirm(table):
            raise UsageError(f"{command} cancelled: the table name {table!r} was not confirmed")
