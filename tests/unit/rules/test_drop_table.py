from __future__ import annotations

import pytest

from migration_guard.analysis.model import Severity

from .helpers import DIALECTS, findings, quote, severities, tables

RULE = "drop-table"


@pytest.mark.parametrize("dialect", DIALECTS)
def test_drop_table_is_an_error_on_protected_tables(dialect: str) -> None:
    found = findings("DROP TABLE users;", dialect, RULE)
    assert tables(found) == ["users"]
    assert severities(found) == {Severity.ERROR}
    assert found[0].line == 1
    assert found[0].hint


@pytest.mark.parametrize("dialect", DIALECTS)
def test_if_exists_quoted_and_line_numbers(dialect: str) -> None:
    sql = f"SELECT 1;\n\n  DROP TABLE IF EXISTS {quote('order items', dialect)};\n"
    found = findings(sql, dialect, RULE)
    assert tables(found) == ["order items"]
    assert (found[0].line, found[0].column) == (3, 3)


@pytest.mark.parametrize(
    ("dialect", "schema"), [("mysql", "shop"), ("postgresql", "app"), ("sqlite", "main")]
)
def test_schema_qualified_name(dialect: str, schema: str) -> None:
    found = findings(f"DROP TABLE {schema}.{quote('users', dialect)};", dialect, RULE)
    assert tables(found) == [f"{schema}.users"]


@pytest.mark.parametrize("dialect", ["mysql", "postgresql"])
def test_multi_table_drop_reports_each_table(dialect: str) -> None:
    found = findings("DROP TABLE a, b;", dialect, RULE)
    assert sorted(tables(found)) == ["a", "b"]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_unprotected_table_is_a_warning(dialect: str) -> None:
    sql = "DROP TABLE scratch;\nDROP TABLE orders;"
    found = findings(sql, dialect, RULE, protect=("orders",))
    assert [(f.table, f.severity, f.line) for f in found] == [
        ("scratch", Severity.WARNING, 1),
        ("orders", Severity.ERROR, 2),
    ]


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 'DROP TABLE users';",
        "-- DROP TABLE users;\nSELECT 1;",
        "/* DROP TABLE users; */ SELECT 1;",
        "INSERT INTO log (message) VALUES ('DROP TABLE users');",
        "CREATE TABLE users (id INTEGER PRIMARY KEY);",
    ],
)
def test_destructive_text_in_strings_and_comments_is_not_flagged(dialect: str, sql: str) -> None:
    assert findings(sql, dialect, RULE) == []


@pytest.mark.parametrize("dialect", DIALECTS)
def test_dropping_a_table_created_in_the_same_file_is_exempt(dialect: str) -> None:
    sql = "CREATE TABLE tmp_import (id INTEGER);\nDROP TABLE tmp_import;"
    assert findings(sql, dialect, RULE) == []


@pytest.mark.parametrize("dialect", DIALECTS)
def test_dropping_a_table_created_twice_needs_a_fresh_create(dialect: str) -> None:
    sql = "CREATE TABLE t (id INTEGER);\nDROP TABLE t;\nDROP TABLE t;"
    found = findings(sql, dialect, RULE)
    assert [finding.line for finding in found] == [3]
