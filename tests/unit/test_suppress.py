"""Suppression comments: ``migration-guard: allow RULE because: REASON``."""

from __future__ import annotations

import pytest

from migration_guard.analysis.analyzer import analyze, analyze_sql
from migration_guard.analysis.model import (
    Finding,
    Operation,
    OpKind,
    Report,
    Severity,
    Statement,
    TableRef,
)
from migration_guard.analysis.suppress import apply_suppressions, find_suppressions
from migration_guard.config import ProtectedTables


def _summary(report: Report) -> list[tuple[str, int, bool, str | None]]:
    return [(f.rule, f.line, f.suppressed, f.reason) for f in report.findings]


@pytest.mark.parametrize(
    "comment",
    [
        "-- migration-guard: allow drop-table because: scratch table, archived",
        "# migration-guard: allow drop-table because: scratch table, archived",
        "/* migration-guard: allow drop-table because: scratch table, archived */",
        "--   Migration-Guard:  ALLOW   drop-table   BECAUSE:   scratch table, archived  ",
    ],
)
def test_suppression_with_reason_applies(comment: str) -> None:
    report = analyze_sql(f"SELECT 1;\n{comment}\nDROP TABLE users;", dialect="mysql")
    assert _summary(report) == [("drop-table", 3, True, "scratch table, archived")]
    assert not report.has_errors
    assert report.summary()["suppressed"] == 1
    assert report.findings[0].to_dict()["suppressed"] is True


def test_comment_block_and_blank_lines_between_comment_and_statement() -> None:
    sql = (
        "-- migration-guard: allow drop-column because: moved to profiles in v3\n"
        "-- (ticket OPS-12)\n"
        "\n"
        "ALTER TABLE users DROP COLUMN bio;\n"
    )
    assert _summary(analyze_sql(sql, dialect="postgresql")) == [
        ("drop-column", 4, True, "moved to profiles in v3")
    ]


def test_suppression_only_covers_the_next_statement() -> None:
    sql = "-- migration-guard: allow drop-table because: scratch\nDROP TABLE a;\nDROP TABLE b;\n"
    assert _summary(analyze_sql(sql, dialect="sqlite")) == [
        ("drop-table", 2, True, "scratch"),
        ("drop-table", 3, False, None),
    ]


def test_other_rules_on_the_same_statement_are_not_suppressed() -> None:
    sql = (
        "-- migration-guard: allow drop-column because: unused\n"
        "ALTER TABLE users DROP COLUMN a, RENAME COLUMN b TO c;\n"
    )
    rules = {(f.rule, f.suppressed) for f in analyze_sql(sql, dialect="mysql").findings}
    assert rules == {("drop-column", True), ("rename-column", False)}


@pytest.mark.parametrize("separator", [", ", ",", " , "])
def test_several_rule_ids(separator: str) -> None:
    sql = (
        f"-- migration-guard: allow drop-column{separator}rename-column because: v2 cleanup\n"
        "ALTER TABLE users DROP COLUMN a, RENAME COLUMN b TO c;\n"
    )
    report = analyze_sql(sql, dialect="mysql")
    assert {(f.rule, f.suppressed) for f in report.findings} == {
        ("drop-column", True),
        ("rename-column", True),
    }


def test_without_reason_does_not_apply_and_is_an_error() -> None:
    sql = "-- migration-guard: allow drop-table\nDROP TABLE users;"
    report = analyze_sql(sql, dialect="mysql", protected=ProtectedTables(patterns=("x",)))
    assert [(f.rule, f.severity, f.line, f.suppressed) for f in report.findings] == [
        ("suppression-without-reason", Severity.ERROR, 1, False),
        ("drop-table", Severity.WARNING, 2, False),
    ]
    assert report.has_errors


def test_unused_suppression_is_a_warning() -> None:
    sql = "-- migration-guard: allow truncate-table because: x\nSELECT 1;"
    report = analyze_sql(sql)
    assert [(f.rule, f.severity, f.line) for f in report.findings] == [
        ("unused-suppression", Severity.WARNING, 1)
    ]
    assert not report.has_errors


def test_unknown_rule_id_mentions_the_known_ids() -> None:
    sql = "-- migration-guard: allow drop-everything because: x\nDROP TABLE t;"
    findings = analyze_sql(sql).findings
    unknown = [f for f in findings if f.rule == "unused-suppression"]
    assert len(unknown) == 1
    assert "drop-everything" in unknown[0].message
    assert "drop-table" in unknown[0].message and "rename-column" in unknown[0].message


def test_trailing_comment_on_the_statement_line() -> None:
    sql = "DROP TABLE t; -- migration-guard: allow drop-table because: temp\n"
    assert _summary(analyze_sql(sql, dialect="postgresql")) == [("drop-table", 1, True, "temp")]


def test_directive_inside_a_string_is_not_a_suppression() -> None:
    sql = "SELECT '-- migration-guard: allow drop-table because: x';\nDROP TABLE t;"
    report = analyze_sql(sql, dialect="postgresql")
    assert [f.suppressed for f in report.findings if f.rule == "drop-table"] == [False]


PYTHON_REVISION = """\
from alembic import op


def upgrade():
    # migration-guard: allow drop-column because: column unused since 2.3
    op.drop_column("users", "legacy")

    # migration-guard: allow drop-table
    op.drop_table("sessions")
    op.drop_table("tokens")  # migration-guard: allow drop-table because: re-created by v5
"""


def _python_statement(line: int, kind: OpKind, table: str, column: str | None = None) -> Statement:
    bare = Statement(sql="", file="versions/abc_rev.py", line=line, column=5, unit="abc")
    operation = Operation(kind, bare, table=TableRef(table), column=column)
    return Statement(
        sql="", file=bare.file, line=line, column=5, unit="abc", known_operations=(operation,)
    )


def test_python_revision_form() -> None:
    statements = [
        _python_statement(6, OpKind.DROP_COLUMN, "users", "legacy"),
        _python_statement(9, OpKind.DROP_TABLE, "sessions"),
        _python_statement(10, OpKind.DROP_TABLE, "tokens"),
    ]
    report = analyze(
        statements,
        dialect="sqlite",
        protected=ProtectedTables(),
        sources={"versions/abc_rev.py": PYTHON_REVISION},
    )
    assert _summary(report) == [
        ("drop-column", 6, True, "column unused since 2.3"),
        ("suppression-without-reason", 8, False, None),
        ("drop-table", 9, False, None),
        ("drop-table", 10, True, "re-created by v5"),
    ]


def test_find_suppressions_reports_positions_and_targets() -> None:
    found = find_suppressions(PYTHON_REVISION, "rev.py")
    assert [(s.line, s.column, s.rule_ids, s.reason, s.target_line) for s in found] == [
        (5, 5, ("drop-column",), "column unused since 2.3", 6),
        (8, 5, ("drop-table",), None, 9),
        (10, 30, ("drop-table",), "re-created by v5", 10),
    ]


def test_find_suppressions_ignores_text_without_the_marker() -> None:
    assert find_suppressions("-- allow drop-table because: x\nDROP TABLE t;", "a.sql") == []


def test_apply_suppressions_leaves_other_files_alone() -> None:
    finding = Finding(
        rule="drop-table",
        severity=Severity.ERROR,
        table="t",
        file="other.sql",
        line=2,
        column=1,
        message="m",
        statement="DROP TABLE t",
    )
    source = "-- migration-guard: allow drop-table because: x\nDROP TABLE t;"
    result = apply_suppressions([finding], {"a.sql": source})
    assert result[0] == finding
    assert [f.rule for f in result[1:]] == ["unused-suppression"]
