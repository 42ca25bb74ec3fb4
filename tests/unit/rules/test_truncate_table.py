from __future__ import annotations

import pytest

from migration_guard.analysis.model import Severity

from .helpers import findings, quote, severities, tables

RULE = "truncate-table"
DIALECTS = ("mysql", "postgresql")  # SQLite has no TRUNCATE


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("keyword", ["TRUNCATE TABLE", "TRUNCATE"])
def test_truncate_is_flagged(dialect: str, keyword: str) -> None:
    found = findings(f"SELECT 1;\n{keyword} {quote('audit log', dialect)};", dialect, RULE)
    assert tables(found) == ["audit log"]
    assert found[0].line == 2
    assert severities(found) == {Severity.ERROR}


@pytest.mark.parametrize(("dialect", "schema"), [("mysql", "shop"), ("postgresql", "app")])
def test_schema_qualified(dialect: str, schema: str) -> None:
    found = findings(f"TRUNCATE TABLE {schema}.orders;", dialect, RULE, protect=("other",))
    assert tables(found) == [f"{schema}.orders"]
    assert severities(found) == {Severity.WARNING}


def test_postgresql_truncate_of_several_tables() -> None:
    found = findings("TRUNCATE a, b RESTART IDENTITY CASCADE;", "postgresql", RULE)
    assert sorted(tables(found)) == ["a", "b"]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_truncating_a_table_created_in_the_same_file_is_exempt(dialect: str) -> None:
    sql = "CREATE TABLE staging (id INT);\nTRUNCATE TABLE staging;"
    assert findings(sql, dialect, RULE) == []


@pytest.mark.parametrize("dialect", [*DIALECTS, "sqlite"])
def test_text_in_strings_and_comments_is_not_flagged(dialect: str) -> None:
    sql = "SELECT 'TRUNCATE TABLE users';\n/* TRUNCATE users; */\nSELECT 2;"
    assert findings(sql, dialect, RULE) == []
