from __future__ import annotations

import pytest

from migration_guard.analysis.model import Severity

from .helpers import findings, severities, tables

RULE = "drop-partition"


@pytest.mark.parametrize(
    ("sql", "table", "partitions"),
    [
        ("ALTER TABLE `events` DROP PARTITION p2019, p2020;", "events", ("p2019", "p2020")),
        ("ALTER TABLE shop.events TRUNCATE PARTITION p2019;", "shop.events", ("p2019",)),
    ],
)
def test_mysql_drop_and_truncate_partition(
    sql: str, table: str, partitions: tuple[str, ...]
) -> None:
    found = findings("SELECT 1;\n" + sql, "mysql", RULE)
    assert tables(found) == [table]
    assert found[0].line == 2
    assert severities(found) == {Severity.ERROR}
    assert all(partition in found[0].message for partition in partitions)


def test_unprotected_is_a_warning() -> None:
    found = findings("ALTER TABLE events DROP PARTITION p0;", "mysql", RULE, protect=("users",))
    assert severities(found) == {Severity.WARNING}


@pytest.mark.parametrize(
    ("dialect", "sql"),
    [
        ("mysql", "ALTER TABLE events ADD PARTITION (PARTITION p9 VALUES LESS THAN (2030));"),
        ("mysql", "SELECT 'ALTER TABLE events DROP PARTITION p0';"),
        ("mysql", "-- ALTER TABLE events DROP PARTITION p0;\nSELECT 1;"),
        ("postgresql", "ALTER TABLE events DETACH PARTITION events_2019;"),
        ("postgresql", "/* ALTER TABLE events DROP PARTITION p0 */ SELECT 1;"),
        ("sqlite", "SELECT 'ALTER TABLE events TRUNCATE PARTITION p0';"),
    ],
)
def test_not_flagged(dialect: str, sql: str) -> None:
    assert findings(sql, dialect, RULE) == []
