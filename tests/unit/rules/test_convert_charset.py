from __future__ import annotations

import pytest

from migration_guard.analysis.model import Severity

from .helpers import findings, severities, tables

RULE = "convert-charset"


@pytest.mark.parametrize(
    ("sql", "table"),
    [
        ("ALTER TABLE `users` CONVERT TO CHARACTER SET utf8mb4;", "users"),
        ("ALTER TABLE shop.users CONVERT TO CHARSET latin1 COLLATE latin1_bin;", "shop.users"),
    ],
)
def test_convert_to_character_set(sql: str, table: str) -> None:
    found = findings("SELECT 1;\n" + sql, "mysql", RULE)
    assert tables(found) == [table]
    assert found[0].line == 2
    assert severities(found) == {Severity.ERROR}


def test_charset_is_named_in_the_message() -> None:
    found = findings("ALTER TABLE users CONVERT TO CHARACTER SET latin1;", "mysql", RULE)
    assert "latin1" in found[0].message.lower()


@pytest.mark.parametrize(
    ("dialect", "sql"),
    [
        ("mysql", "ALTER TABLE users DEFAULT CHARACTER SET utf8mb4;"),
        ("mysql", "CREATE TABLE users (id INT) DEFAULT CHARSET=utf8mb4;"),
        ("mysql", "SELECT 'ALTER TABLE users CONVERT TO CHARACTER SET latin1';"),
        ("mysql", "/* ALTER TABLE users CONVERT TO CHARACTER SET latin1 */ SELECT 1;"),
        ("postgresql", "-- ALTER TABLE users CONVERT TO CHARACTER SET latin1;\nSELECT 1;"),
        ("sqlite", "SELECT 'CONVERT TO CHARACTER SET';"),
    ],
)
def test_not_flagged(dialect: str, sql: str) -> None:
    assert findings(sql, dialect, RULE) == []
