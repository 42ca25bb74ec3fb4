from __future__ import annotations

import pytest

from migration_guard.analysis.analyzer import analyze
from migration_guard.analysis.model import Operation, OpKind, Severity, Statement, TableRef
from migration_guard.config import ProtectedTables

from .helpers import findings, severities

RULE = "unanalyzable"


@pytest.mark.parametrize(
    ("dialect", "sql"),
    [
        # @s is set outside this file: the text cannot be known.
        ("mysql", "SELECT 1;\nPREPARE stmt FROM @s;"),
        ("mysql", "SET @s = CONCAT('DROP TABLE ', @@hostname);\nPREPARE stmt FROM @s;"),
        ("mysql", "SELECT 1;\nEXECUTE stmt;"),
        ("postgresql", "SELECT 1;\nDO $$ BEGIN EXECUTE 'DROP TABLE users'; END $$;"),
    ],
)
def test_dynamic_sql_is_always_an_error(dialect: str, sql: str) -> None:
    found = findings(sql, dialect, RULE, protect=("nothing_matches",))
    assert len(found) == 1
    assert found[0].line == 2
    assert severities(found) == {Severity.ERROR}
    assert "dynamic" in found[0].message


def _unanalyzable(table: TableRef | None, reason: str = "cannot parse") -> Statement:
    statement = Statement(sql="FROBNICATE x", file="m.sql", line=7)
    operation = Operation(OpKind.UNANALYZABLE, statement, table=table, reason=reason)
    return Statement(sql="FROBNICATE x", file="m.sql", line=7, known_operations=(operation,))


@pytest.mark.parametrize(
    ("table", "patterns", "expected"),
    [
        (None, (), Severity.ERROR),  # nothing configured: everything is protected
        (None, ("users",), Severity.WARNING),
        (TableRef("users"), ("users",), Severity.ERROR),
        (TableRef("logs"), ("users",), Severity.WARNING),
        (TableRef("alembic_version"), ("users",), Severity.ERROR),
    ],
)
def test_severity_follows_protection(
    table: TableRef | None, patterns: tuple[str, ...], expected: Severity
) -> None:
    report = analyze(
        [_unanalyzable(table)], dialect="mysql", protected=ProtectedTables(patterns=patterns)
    )
    assert [(f.rule, f.severity, f.line) for f in report.findings] == [(RULE, expected, 7)]


def test_dynamic_reason_is_an_error_even_for_unprotected_tables() -> None:
    report = analyze(
        [_unanalyzable(TableRef("logs"), reason="dynamic SQL")],
        dialect="mysql",
        protected=ProtectedTables(patterns=("users",)),
    )
    assert [f.severity for f in report.findings] == [Severity.ERROR]


@pytest.mark.parametrize("dialect", ["mysql", "postgresql", "sqlite"])
@pytest.mark.parametrize(
    "sql", ["SELECT 'PREPARE s FROM @x';", "-- EXECUTE stmt;\nSELECT 1;", "SELECT 1;"]
)
def test_plain_statements_are_analysable(dialect: str, sql: str) -> None:
    assert findings(sql, dialect, RULE) == []
