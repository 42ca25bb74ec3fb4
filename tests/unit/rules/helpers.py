"""Shared helpers of the per-rule tests: run SQL through the whole analyzer."""

from __future__ import annotations

from migration_guard.analysis.analyzer import analyze_sql
from migration_guard.analysis.model import Finding, Severity
from migration_guard.config import ProtectedTables

DIALECTS = ("mysql", "postgresql", "sqlite")


def quote(name: str, dialect: str) -> str:
    """``name`` quoted the way ``dialect`` quotes identifiers."""
    return f"`{name}`" if dialect in ("mysql", "mariadb") else f'"{name}"'


def findings(
    sql: str,
    dialect: str,
    rule: str,
    *,
    protect: tuple[str, ...] = (),
    file: str = "migration.sql",
) -> list[Finding]:
    """Unsuppressed findings of ``rule`` for ``sql``."""
    report = analyze_sql(
        sql, file=file, dialect=dialect, protected=ProtectedTables(patterns=protect)
    )
    return [finding for finding in report.active if finding.rule == rule]


def tables(found: list[Finding]) -> list[str | None]:
    return [finding.table.lower() if finding.table else None for finding in found]


def severities(found: list[Finding]) -> set[Severity]:
    return {finding.severity for finding in found}
