from __future__ import annotations

import pytest

from migration_guard.analysis.model import Severity

from .helpers import DIALECTS, findings, quote, severities, tables

RULE = "update-without-where"


@pytest.mark.parametrize("dialect", DIALECTS)
def test_update_without_where(dialect: str) -> None:
    sql = f"SELECT 1;\nUPDATE {quote('users', dialect)} SET active = 0;"
    found = findings(sql, dialect, RULE)
    assert tables(found) == ["users"]
    assert found[0].line == 2
    assert severities(found) == {Severity.ERROR}


@pytest.mark.parametrize("dialect", DIALECTS)
def test_tautological_where(dialect: str) -> None:
    found = findings("UPDATE users SET active = 0 WHERE 1=1;", dialect, RULE)
    assert tables(found) == ["users"]


@pytest.mark.parametrize(
    ("dialect", "schema"), [("mysql", "shop"), ("postgresql", "app"), ("sqlite", "main")]
)
def test_schema_qualified_unprotected_is_warning(dialect: str, schema: str) -> None:
    found = findings(f"UPDATE {schema}.logs SET seen = 1;", dialect, RULE, protect=("users",))
    assert tables(found) == [f"{schema}.logs"]
    assert severities(found) == {Severity.WARNING}


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE users SET active = 0 WHERE id = 5;",
        "SELECT 'UPDATE users SET active = 0';",
        "-- UPDATE users SET active = 0;\nSELECT 1;",
        "INSERT INTO users (id) VALUES (1);",
    ],
)
def test_not_flagged(dialect: str, sql: str) -> None:
    assert findings(sql, dialect, RULE) == []
