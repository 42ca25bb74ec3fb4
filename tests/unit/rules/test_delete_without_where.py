from __future__ import annotations

import pytest

from migration_guard.analysis.model import Severity

from .helpers import DIALECTS, findings, quote, severities, tables

RULE = "delete-without-where"


@pytest.mark.parametrize("dialect", DIALECTS)
def test_delete_without_where(dialect: str) -> None:
    found = findings(f"SELECT 1;\nDELETE FROM {quote('users', dialect)};", dialect, RULE)
    assert tables(found) == ["users"]
    assert found[0].line == 2
    assert severities(found) == {Severity.ERROR}
    assert "without WHERE" in found[0].message


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("condition", ["1=1", "1 = 1", "TRUE", "'a' = 'a'"])
def test_tautological_where(dialect: str, condition: str) -> None:
    found = findings(f"DELETE FROM users WHERE {condition};", dialect, RULE)
    assert tables(found) == ["users"]
    assert "always-true" in found[0].message


@pytest.mark.parametrize(
    ("dialect", "schema"), [("mysql", "shop"), ("postgresql", "app"), ("sqlite", "main")]
)
def test_schema_qualified_unprotected_is_warning(dialect: str, schema: str) -> None:
    found = findings(f"DELETE FROM {schema}.logs;", dialect, RULE, protect=("users",))
    assert tables(found) == [f"{schema}.logs"]
    assert severities(found) == {Severity.WARNING}


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM users WHERE id = 5;",
        "DELETE FROM users WHERE created_at < '2020-01-01' AND 1=1;",
        "DELETE FROM users WHERE 1=0;",
        "SELECT 'DELETE FROM users';",
        "-- DELETE FROM users;\nSELECT 1;",
        "/* DELETE FROM users; */ SELECT 1;",
    ],
)
def test_not_flagged(dialect: str, sql: str) -> None:
    assert findings(sql, dialect, RULE) == []
