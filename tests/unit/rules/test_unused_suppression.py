from __future__ import annotations

import pytest

from migration_guard.analysis.analyzer import analyze_sql
from migration_guard.analysis.model import Severity

from .helpers import DIALECTS

RULE = "unused-suppression"


@pytest.mark.parametrize("dialect", DIALECTS)
def test_suppression_matching_nothing_is_a_warning(dialect: str) -> None:
    sql = "-- migration-guard: allow drop-column because: legacy\nDROP TABLE users;"
    report = analyze_sql(sql, dialect=dialect)
    unused = [f for f in report.findings if f.rule == RULE]
    assert [(f.severity, f.line) for f in unused] == [(Severity.WARNING, 1)]
    assert "drop-column" in unused[0].message
    assert [f.rule for f in report.active if f.rule != RULE] == ["drop-table"]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_unknown_rule_id_lists_the_known_ids(dialect: str) -> None:
    sql = "-- migration-guard: allow drop-tabel because: typo\nDROP TABLE users;"
    report = analyze_sql(sql, dialect=dialect)
    unused = [f for f in report.findings if f.rule == RULE]
    assert len(unused) == 1
    assert "drop-tabel" in unused[0].message and "drop-table" in unused[0].message


@pytest.mark.parametrize("dialect", DIALECTS)
def test_used_suppression_is_not_reported(dialect: str) -> None:
    sql = "-- migration-guard: allow drop-table because: scratch\nDROP TABLE users;"
    report = analyze_sql(sql, dialect=dialect)
    assert [f.rule for f in report.findings] == ["drop-table"]
    assert report.findings[0].suppressed


def test_only_the_unused_id_of_several_is_reported() -> None:
    sql = "-- migration-guard: allow drop-table, truncate-table because: scratch\nDROP TABLE t;"
    unused = [f for f in analyze_sql(sql).findings if f.rule == RULE]
    assert len(unused) == 1
    assert "truncate-table" in unused[0].message
