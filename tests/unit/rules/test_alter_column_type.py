from __future__ import annotations

import pytest

from migration_guard.analysis.model import ColumnType, Severity
from migration_guard.analysis.rules.alter_column_type import is_widening

from .helpers import findings, quote, severities, tables

RULE = "alter-column-type"


@pytest.mark.parametrize(
    ("dialect", "sql"),
    [
        ("mysql", "ALTER TABLE `users` MODIFY `name` VARCHAR(10);"),
        ("mysql", "ALTER TABLE users MODIFY COLUMN name VARCHAR(10) NOT NULL;"),
        ("mysql", "ALTER TABLE users CHANGE name name VARCHAR(10);"),
        ("postgresql", 'ALTER TABLE "users" ALTER COLUMN "name" TYPE varchar(10);'),
        ("postgresql", "ALTER TABLE users ALTER name SET DATA TYPE varchar(10);"),
    ],
)
def test_type_change_with_unknown_previous_type_is_flagged(dialect: str, sql: str) -> None:
    found = findings("SELECT 1;\n" + sql, dialect, RULE)
    assert tables(found) == ["users"]
    assert found[0].line == 2
    assert severities(found) == {Severity.ERROR}


@pytest.mark.parametrize(("dialect", "schema"), [("mysql", "shop"), ("postgresql", "app")])
def test_schema_qualified(dialect: str, schema: str) -> None:
    change = "MODIFY total INT" if dialect == "mysql" else "ALTER COLUMN total TYPE int"
    found = findings(f"ALTER TABLE {schema}.orders {change};", dialect, RULE, protect=("z",))
    assert tables(found) == [f"{schema}.orders"]
    assert severities(found) == {Severity.WARNING}


def _change(dialect: str, table: str, column: str, type_: str) -> str:
    if dialect == "mysql":
        return f"ALTER TABLE {table} MODIFY {column} {type_};"
    return f"ALTER TABLE {table} ALTER COLUMN {column} TYPE {type_};"


@pytest.mark.parametrize("dialect", ["mysql", "postgresql"])
@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("VARCHAR(50)", "VARCHAR(255)"),
        ("INT", "BIGINT"),
        ("SMALLINT", "INTEGER"),
        ("DECIMAL(10,2)", "DECIMAL(14,4)"),
        ("CHAR(3)", "VARCHAR(3)"),
        ("VARCHAR(200)", "TEXT"),
    ],
)
def test_provable_widening_after_create_is_not_flagged(
    dialect: str, before: str, after: str
) -> None:
    sql = f"CREATE TABLE {quote('t', dialect)} (id INT, c {before});\n" + _change(
        dialect, "t", "c", after
    )
    assert findings(sql, dialect, RULE) == []


@pytest.mark.parametrize("dialect", ["mysql", "postgresql"])
@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("VARCHAR(255)", "VARCHAR(50)"),
        ("BIGINT", "INT"),
        ("DECIMAL(10,2)", "DECIMAL(10,4)"),
        ("TEXT", "VARCHAR(255)"),
        ("VARCHAR(10)", "INT"),
    ],
)
def test_narrowing_after_create_is_flagged(dialect: str, before: str, after: str) -> None:
    sql = f"CREATE TABLE t (id INT, c {before});\n" + _change(dialect, "t", "c", after)
    found = findings(sql, dialect, RULE)
    assert len(found) == 1
    assert found[0].line == 2
    assert "from" in found[0].message


@pytest.mark.parametrize("dialect", ["mysql", "postgresql"])
def test_type_known_from_add_column(dialect: str) -> None:
    sql = "ALTER TABLE t ADD COLUMN c VARCHAR(20);\n" + _change(dialect, "t", "c", "VARCHAR(40)")
    assert findings(sql, dialect, RULE) == []


def test_mysql_modify_restating_the_same_type_is_not_flagged() -> None:
    sql = "CREATE TABLE t (c VARCHAR(20));\nALTER TABLE t MODIFY c VARCHAR(20) NOT NULL;"
    assert findings(sql, "mysql", RULE) == []


def test_mysql_change_with_rename_tracks_the_new_name() -> None:
    sql = (
        "CREATE TABLE t (a INT);\n"
        "ALTER TABLE t CHANGE a b INT;\n"
        "ALTER TABLE t MODIFY b BIGINT;\n"
        "ALTER TABLE t MODIFY b SMALLINT;\n"
    )
    assert [finding.line for finding in findings(sql, "mysql", RULE)] == [4]


@pytest.mark.parametrize(
    ("dialect", "sql"),
    [
        ("mysql", "ALTER TABLE t ALTER COLUMN c SET DEFAULT 1;"),
        ("postgresql", "ALTER TABLE t ALTER COLUMN c SET DEFAULT 1;"),
        ("postgresql", "ALTER TABLE t ALTER COLUMN c SET NOT NULL;"),
        ("sqlite", "SELECT 'ALTER TABLE t MODIFY c INT';"),
        ("mysql", "/* ALTER TABLE t MODIFY c INT; */ SELECT 1;"),
    ],
)
def test_not_flagged(dialect: str, sql: str) -> None:
    assert findings(sql, dialect, RULE) == []


def _t(name: str, *args: int, unsigned: bool = False) -> ColumnType:
    return ColumnType(name, tuple(args), unsigned)


@pytest.mark.parametrize(
    ("old", "new", "dialect", "expected"),
    [
        (_t("TINYINT"), _t("SMALLINT"), "mysql", True),
        (_t("TINYINT"), _t("BIGINT"), "mysql", True),
        (_t("INT", unsigned=True), _t("INT", unsigned=True), "mysql", True),
        (_t("UINT"), _t("BIGINT"), "mysql", True),
        (_t("UINT"), _t("INT"), "mysql", False),
        (_t("INT"), _t("UBIGINT"), "mysql", False),
        (_t("INT", 11), _t("BIGINT", 20), "mysql", True),
        (_t("INTEGER"), _t("INT8"), "postgresql", True),
        (_t("INT"), _t("DECIMAL", 10, 0), "mysql", True),
        (_t("INT"), _t("DECIMAL", 12, 3), "mysql", False),
        (_t("BIGINT"), _t("DOUBLE"), "mysql", False),
        (_t("INT"), _t("DOUBLE"), "postgresql", True),
        (_t("DECIMAL", 10, 2), _t("NUMERIC"), "postgresql", True),
        (_t("DECIMAL", 10, 2), _t("DECIMAL"), "mysql", False),
        (_t("DECIMAL", 8), _t("DECIMAL", 10, 2), "mysql", True),
        (_t("FLOAT"), _t("DOUBLE"), "mysql", True),
        (_t("DOUBLE"), _t("FLOAT"), "mysql", False),
        (_t("CHAR", 10), _t("CHAR", 12), "mysql", True),
        (_t("VARCHAR", 10), _t("CHAR", 12), "mysql", False),
        (_t("VARCHAR", 16383), _t("TEXT"), "mysql", True),
        (_t("VARCHAR", 16384), _t("TEXT"), "mysql", False),
        (_t("VARCHAR", 16384), _t("MEDIUMTEXT"), "mysql", True),
        (_t("TINYTEXT"), _t("VARCHAR", 255), "mysql", True),
        (_t("TEXT"), _t("MEDIUMTEXT"), "mysql", True),
        (_t("MEDIUMTEXT"), _t("LONGTEXT"), "mysql", True),
        (_t("LONGTEXT"), _t("TEXT"), "mysql", False),
        (_t("VARCHAR", 10), _t("VARCHAR"), "postgresql", True),
        (_t("TEXT"), _t("VARCHAR", 10), "postgresql", False),
        (_t("VARBINARY", 16), _t("BLOB"), "mysql", True),
        (_t("BLOB"), _t("TINYBLOB"), "mysql", False),
        (_t("VARCHAR", 16), _t("VARBINARY", 64), "mysql", False),
        (_t("DATE"), _t("DATETIME"), "mysql", True),
        (_t("DATE"), _t("TIMESTAMP"), "mysql", False),
        (_t("DATE"), _t("TIMESTAMP"), "postgresql", True),
        (_t("DATETIME"), _t("DATETIME", 6), "mysql", True),
        (_t("DATETIME", 6), _t("DATETIME"), "mysql", False),
        (_t("TIMESTAMP", 3), _t("TIMESTAMP"), "postgresql", True),
        (ColumnType("", text="character varying(20)"), _t("VARCHAR", 30), "postgresql", True),
        (ColumnType("", text="int unsigned"), _t("BIGINT"), "mysql", True),
        (
            ColumnType("ENUM", text="ENUM('a','b')"),
            ColumnType("ENUM", text="enum('a', 'b')"),
            "mysql",
            True,
        ),
        (
            ColumnType("ENUM", text="ENUM('a','b')"),
            ColumnType("ENUM", text="ENUM('a')"),
            "mysql",
            False,
        ),
        (
            ColumnType("VARCHAR", (20,), text="VARCHAR(20) CHARACTER SET latin1"),
            ColumnType("VARCHAR", (30,), text="VARCHAR(30)"),
            "mysql",
            False,
        ),
        (
            ColumnType("VARCHAR", (20,), text="VARCHAR(20) CHARSET utf8mb4"),
            ColumnType("VARCHAR", (30,), text="varchar(30) charset utf8mb4"),
            "mysql",
            True,
        ),
    ],
)
def test_widening_table(old: ColumnType, new: ColumnType, dialect: str, expected: bool) -> None:
    assert is_widening(old, new, dialect) is expected
