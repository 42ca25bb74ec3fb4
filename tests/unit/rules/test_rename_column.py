from __future__ import annotations

import pytest

from migration_guard.analysis.model import Severity

from .helpers import DIALECTS, findings, quote, severities, tables

RULE = "rename-column"


@pytest.mark.parametrize("dialect", DIALECTS)
def test_rename_column(dialect: str) -> None:
    users, old = quote("users", dialect), quote("e", dialect)
    sql = f"SELECT 1;\nALTER TABLE {users} RENAME COLUMN {old} TO email;"
    found = findings(sql, dialect, RULE)
    assert tables(found) == ["users"]
    assert "email" in found[0].message
    assert found[0].line == 2
    assert severities(found) == {Severity.ERROR}


def test_mysql_change_with_a_new_name() -> None:
    found = findings("ALTER TABLE shop.users CHANGE COLUMN e email VARCHAR(255);", "mysql", RULE)
    assert tables(found) == ["shop.users"]


def test_mysql_change_with_the_same_name_is_no_rename() -> None:
    assert findings("ALTER TABLE users CHANGE email email VARCHAR(255);", "mysql", RULE) == []


def test_postgresql_rename_without_column_keyword() -> None:
    assert tables(findings("ALTER TABLE app.users RENAME e TO email;", "postgresql", RULE)) == [
        "app.users"
    ]


@pytest.mark.parametrize(
    ("dialect", "sql"),
    [
        ("mysql", "ALTER TABLE users RENAME TO accounts;"),
        ("postgresql", "ALTER TABLE users RENAME CONSTRAINT a TO b;"),
        ("sqlite", "SELECT 'ALTER TABLE users RENAME COLUMN a TO b';"),
        ("postgresql", "-- ALTER TABLE users RENAME COLUMN a TO b;\nSELECT 1;"),
    ],
)
def test_not_flagged(dialect: str, sql: str) -> None:
    assert findings(sql, dialect, RULE) == []
