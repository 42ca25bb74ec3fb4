from __future__ import annotations

import pytest

from migration_guard.analysis.model import Severity

from .helpers import DIALECTS, findings, quote, severities, tables

RULE = "rename-table"


@pytest.mark.parametrize("dialect", DIALECTS)
def test_alter_table_rename_to(dialect: str) -> None:
    sql = f"SELECT 1;\nALTER TABLE {quote('users', dialect)} RENAME TO accounts;"
    found = findings(sql, dialect, RULE)
    assert tables(found) == ["users"]
    assert "accounts" in found[0].message
    assert found[0].line == 2
    assert severities(found) == {Severity.ERROR}


def test_mysql_rename_table_with_several_pairs() -> None:
    found = findings("RENAME TABLE a TO b, shop.c TO shop.d;", "mysql", RULE)
    assert tables(found) == ["a", "shop.c"]


def test_mysql_rename_without_to() -> None:
    assert tables(findings("ALTER TABLE `a` RENAME `b`;", "mysql", RULE)) == ["a"]


def test_postgresql_schema_qualified() -> None:
    found = findings(
        'ALTER TABLE app."Users" RENAME TO people;', "postgresql", RULE, protect=("x",)
    )
    assert tables(found) == ["app.users"]
    assert severities(found) == {Severity.WARNING}


@pytest.mark.parametrize(
    ("dialect", "sql"),
    [
        ("mysql", "ALTER TABLE users RENAME INDEX a TO b;"),
        ("postgresql", "ALTER INDEX a RENAME TO b;"),
        ("postgresql", "ALTER TABLE users RENAME COLUMN a TO b;"),
        ("sqlite", "SELECT 'ALTER TABLE a RENAME TO b';"),
        ("mysql", "# RENAME TABLE a TO b;\nSELECT 1;"),
    ],
)
def test_not_flagged(dialect: str, sql: str) -> None:
    assert findings(sql, dialect, RULE) == []
