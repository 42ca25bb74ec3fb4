from __future__ import annotations

import pytest

from migration_guard.analysis.model import Severity

from .helpers import DIALECTS, findings, quote, severities, tables

RULE = "drop-column"


@pytest.mark.parametrize("dialect", DIALECTS)
def test_drop_column_is_flagged(dialect: str) -> None:
    sql = (
        f"SELECT 1;\nALTER TABLE {quote('users', dialect)} DROP COLUMN {quote('legacy', dialect)};"
    )
    found = findings(sql, dialect, RULE)
    assert tables(found) == ["users"]
    assert "legacy" in found[0].message
    assert found[0].line == 2
    assert severities(found) == {Severity.ERROR}


def test_mysql_drop_without_column_keyword() -> None:
    found = findings("ALTER TABLE users DROP legacy;", "mysql", RULE)
    assert tables(found) == ["users"]


@pytest.mark.parametrize("dialect", ["mysql", "postgresql"])
def test_several_drops_in_one_alter(dialect: str) -> None:
    found = findings("ALTER TABLE users DROP COLUMN a, DROP COLUMN b;", dialect, RULE)
    assert len(found) == 2
    assert {finding.message.split()[2] for finding in found} == {"a", "b"}


@pytest.mark.parametrize(("dialect", "schema"), [("mysql", "shop"), ("postgresql", "app")])
def test_schema_qualified(dialect: str, schema: str) -> None:
    found = findings(
        f"ALTER TABLE {schema}.users DROP COLUMN IF EXISTS x;", dialect, RULE, protect=("users",)
    )
    assert tables(found) == [f"{schema}.users"]
    assert severities(found) == {Severity.ERROR}


@pytest.mark.parametrize(
    ("dialect", "sql"),
    [
        ("mysql", "ALTER TABLE users DROP INDEX idx_email;"),
        ("mysql", "ALTER TABLE users DROP FOREIGN KEY fk_org;"),
        ("mysql", "ALTER TABLE users DROP PRIMARY KEY;"),
        ("postgresql", "ALTER TABLE users DROP CONSTRAINT fk_org;"),
        ("postgresql", "ALTER TABLE users ALTER COLUMN email DROP NOT NULL;"),
        ("postgresql", "ALTER TABLE users ALTER COLUMN email DROP DEFAULT;"),
        ("mysql", "ALTER TABLE users ADD COLUMN nickname VARCHAR(20);"),
        ("sqlite", "ALTER TABLE users ADD COLUMN nickname TEXT;"),
        ("sqlite", "SELECT 'ALTER TABLE users DROP COLUMN legacy';"),
        ("mysql", "-- ALTER TABLE users DROP COLUMN legacy;\nSELECT 1;"),
        ("postgresql", "/* ALTER TABLE users DROP COLUMN legacy; */ SELECT 1;"),
    ],
)
def test_not_flagged(dialect: str, sql: str) -> None:
    assert findings(sql, dialect, RULE) == []


@pytest.mark.parametrize("dialect", DIALECTS)
def test_column_of_a_table_created_in_the_same_file_is_exempt(dialect: str) -> None:
    sql = "CREATE TABLE t (id INTEGER, tmp INTEGER);\nALTER TABLE t DROP COLUMN tmp;"
    assert findings(sql, dialect, RULE) == []
