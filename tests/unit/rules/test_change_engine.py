from __future__ import annotations

import pytest

from migration_guard.analysis.model import Severity

from .helpers import findings, severities, tables

RULE = "change-engine"


@pytest.mark.parametrize("spelling", ["ENGINE=MyISAM", "ENGINE = MyISAM", "ENGINE MyISAM"])
def test_myisam_is_flagged_with_the_engine_named(spelling: str) -> None:
    found = findings(f"SELECT 1;\nALTER TABLE `orders` {spelling};", "mysql", RULE)
    assert tables(found) == ["orders"]
    assert found[0].line == 2
    assert "MyISAM" in found[0].message and "transactions" in found[0].message
    assert severities(found) == {Severity.ERROR}


def test_blackhole_is_an_error_even_on_unprotected_tables() -> None:
    found = findings("ALTER TABLE shop.orders ENGINE=BLACKHOLE;", "mysql", RULE, protect=("x",))
    assert tables(found) == ["shop.orders"]
    assert severities(found) == {Severity.ERROR}
    assert "BLACKHOLE" in found[0].message


def test_myisam_on_unprotected_table_is_a_warning() -> None:
    found = findings("ALTER TABLE orders ENGINE=MyISAM;", "mysql", RULE, protect=("users",))
    assert severities(found) == {Severity.WARNING}


def test_innodb_is_only_a_warning() -> None:
    found = findings("ALTER TABLE orders ENGINE=InnoDB;", "mysql", RULE)
    assert severities(found) == {Severity.WARNING}


@pytest.mark.parametrize(
    ("dialect", "sql"),
    [
        ("mysql", "CREATE TABLE orders (id INT) ENGINE=MyISAM;"),
        ("mysql", "SELECT 'ALTER TABLE orders ENGINE=BLACKHOLE';"),
        ("mysql", "# ALTER TABLE orders ENGINE=BLACKHOLE;\nSELECT 1;"),
        ("postgresql", "-- ALTER TABLE orders ENGINE=BLACKHOLE;\nSELECT 1;"),
        ("sqlite", "SELECT 'ENGINE=MyISAM';"),
    ],
)
def test_not_flagged(dialect: str, sql: str) -> None:
    assert findings(sql, dialect, RULE) == []
