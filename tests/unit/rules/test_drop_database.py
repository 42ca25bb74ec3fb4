from __future__ import annotations

import pytest

from migration_guard.analysis.model import Severity

from .helpers import findings, quote, severities, tables

RULE = "drop-database"


@pytest.mark.parametrize(
    ("dialect", "sql"),
    [
        ("mysql", "DROP DATABASE shop;"),
        ("mysql", "DROP DATABASE IF EXISTS `shop`;"),
        ("mysql", "DROP SCHEMA shop;"),
        ("postgresql", "DROP SCHEMA shop CASCADE;"),
        ("postgresql", 'DROP SCHEMA IF EXISTS "shop";'),
        ("postgresql", "DROP DATABASE shop;"),
    ],
)
def test_drop_database_is_always_an_error(dialect: str, sql: str) -> None:
    # Even when the protected patterns do not name anything in it.
    found = findings(sql, dialect, RULE, protect=("unrelated_table",))
    assert len(found) == 1
    assert severities(found) == {Severity.ERROR}
    assert tables(found) == ["shop"]


@pytest.mark.parametrize("dialect", ["mysql", "postgresql", "sqlite"])
def test_strings_comments_and_other_drops_are_not_flagged(dialect: str) -> None:
    sql = (
        "SELECT 'DROP DATABASE shop';\n"
        "-- DROP DATABASE shop;\n"
        f"DROP TABLE {quote('database', dialect)};\n"
    )
    assert findings(sql, dialect, RULE) == []
