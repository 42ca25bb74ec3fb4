from __future__ import annotations

import pytest

from migration_guard.analysis.analyzer import analyze_sql
from migration_guard.analysis.model import Severity

from .helpers import DIALECTS

RULE = "suppression-without-reason"


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize(
    "comment",
    [
        "-- migration-guard: allow drop-table",
        "-- migration-guard: allow drop-table because:",
        "/* migration-guard: allow drop-table because:   */",
    ],
)
def test_suppression_without_reason_is_an_error_and_does_not_apply(
    dialect: str, comment: str
) -> None:
    report = analyze_sql(f"SELECT 1;\n{comment}\nDROP TABLE users;", dialect=dialect)
    rules = [(f.rule, f.severity, f.line, f.suppressed) for f in report.findings]
    assert rules == [
        (RULE, Severity.ERROR, 2, False),
        ("drop-table", Severity.ERROR, 3, False),
    ]


def test_mysql_hash_comment_form() -> None:
    report = analyze_sql("# migration-guard: allow drop-table\nDROP TABLE users;")
    assert [f.rule for f in report.findings] == [RULE, "drop-table"]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_with_a_reason_there_is_no_finding(dialect: str) -> None:
    sql = "-- migration-guard: allow drop-table because: scratch table\nDROP TABLE users;"
    report = analyze_sql(sql, dialect=dialect)
    assert [f.rule for f in report.findings if f.rule == RULE] == []
