"""The parser: one SQL statement -> normalised operations, for every dialect."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from migration_guard.analysis.model import ColumnType, Operation, OpKind, Statement, TableRef
from migration_guard.analysis.parse import parse_statement, unwrap_version_comments


def ops(sql: str, dialect: str = "mysql") -> list[Operation]:
    return parse_statement(Statement(sql=sql, file="m.sql", line=1), dialect)


def summary(sql: str, dialect: str = "mysql") -> list[tuple[str, str | None]]:
    return [
        (operation.kind.value, operation.table.qualified if operation.table else None)
        for operation in ops(sql, dialect)
    ]


def only(sql: str, dialect: str = "mysql") -> Operation:
    result = ops(sql, dialect)
    assert len(result) == 1, result
    return result[0]


ALL = ("mysql", "mariadb", "postgresql", "sqlite")

# (dialects, sql, expected [(kind, qualified table)])
CASES: list[tuple[tuple[str, ...], str, list[tuple[str, str | None]]]] = [
    # DROP TABLE
    (ALL, "DROP TABLE users", [("drop-table", "users")]),
    (ALL, "drop table if exists a, b", [("drop-table", "a"), ("drop-table", "b")]),
    (("mysql", "mariadb"), "DROP TABLE `db`.`Order`", [("drop-table", "db.Order")]),
    (("postgresql", "sqlite"), 'DROP TABLE "s"."T"', [("drop-table", "s.T")]),
    (
        ("postgresql",),
        "DROP TABLE a, public.b CASCADE",
        [("drop-table", "a"), ("drop-table", "public.b")],
    ),
    (("sqlite",), "DROP TABLE [my table]", [("drop-table", "my table")]),
    (("mysql",), "DROP TABLE `select`", [("drop-table", "select")]),
    (("postgresql",), 'DROP TABLE "user"', [("drop-table", "user")]),
    (("mysql",), "DROP TEMPORARY TABLE tmp", [("other-ddl", "tmp")]),
    (ALL, "DROP VIEW v", [("other-ddl", "v")]),
    (("mysql",), "DROP INDEX i ON t", [("other-ddl", "t")]),
    # DROP DATABASE
    (("mysql", "postgresql"), "DROP DATABASE shop", [("drop-database", "shop")]),
    (("mysql", "postgresql"), "DROP SCHEMA IF EXISTS shop", [("drop-database", "shop")]),
    # TRUNCATE
    (("mysql", "postgresql"), "TRUNCATE TABLE a", [("truncate-table", "a")]),
    (("mysql",), "TRUNCATE a", [("truncate-table", "a")]),
    (
        ("postgresql",),
        "TRUNCATE ONLY a, s.b RESTART IDENTITY",
        [("truncate-table", "a"), ("truncate-table", "s.b")],
    ),
    # CREATE
    (ALL, "CREATE TABLE t (id INT)", [("create-table", "t")]),
    (ALL, "CREATE TABLE t2 AS SELECT * FROM t", [("create-table", "t2")]),
    (("mysql", "postgresql"), "CREATE TEMPORARY TABLE t (a INT)", [("create-table", "t")]),
    (ALL, "CREATE INDEX ix ON t (a)", [("other-ddl", "t")]),
    (("mysql",), "CREATE UNIQUE INDEX ix USING BTREE ON t (a)", [("other-ddl", "t")]),
    (ALL, "CREATE VIEW v AS SELECT 1", [("other-ddl", "v")]),
    (
        ("mysql",),
        "CREATE DEFINER=`root`@`localhost` TRIGGER tr BEFORE INSERT ON film FOR EACH ROW "
        "BEGIN DELETE FROM x; END",
        [("other-ddl", "film")],
    ),
    (
        ("sqlite",),
        "CREATE TRIGGER tr AFTER DELETE ON t BEGIN DELETE FROM u; END",
        [("other-ddl", "t")],
    ),
    (("mysql",), "CREATE PROCEDURE p() BEGIN DROP TABLE x; END", [("other-ddl", None)]),
    (
        ("postgresql",),
        "CREATE FUNCTION f() RETURNS trigger AS $$ BEGIN DROP TABLE x; END $$ LANGUAGE plpgsql",
        [("other-ddl", None)],
    ),
    (
        ("mariadb",),
        "CREATE OR REPLACE TABLE t (a INT)",
        [("drop-table", "t"), ("create-table", "t")],
    ),
    # ALTER TABLE: columns
    (ALL, "ALTER TABLE t DROP COLUMN c", [("drop-column", "t")]),
    (
        ("mysql",),
        "ALTER TABLE t DROP c, DROP COLUMN d",
        [("drop-column", "t"), ("drop-column", "t")],
    ),
    (
        ("postgresql",),
        "ALTER TABLE ONLY public.t DROP COLUMN c CASCADE",
        [("drop-column", "public.t")],
    ),
    (("sqlite",), 'ALTER TABLE "main"."t" DROP COLUMN "c"', [("drop-column", "main.t")]),
    (
        ("mysql",),
        "ALTER TABLE t DROP INDEX i, DROP KEY k, DROP PRIMARY KEY, DROP FOREIGN KEY f, "
        "DROP CHECK c, DROP CONSTRAINT x",
        [("other-ddl", "t")] * 6,
    ),
    (ALL, "ALTER TABLE t ADD COLUMN c INT", [("add-column", "t")]),
    (("mysql",), "ALTER TABLE t ADD INDEX i (c)", [("other-ddl", "t")]),
    (ALL, "ALTER TABLE t RENAME TO u", [("rename-table", "t")]),
    (("mysql",), "ALTER TABLE t RENAME AS u", [("rename-table", "t")]),
    (("mysql",), "ALTER TABLE t RENAME u", [("rename-table", "t")]),
    (ALL, "ALTER TABLE t RENAME COLUMN a TO b", [("rename-column", "t")]),
    (("sqlite",), "ALTER TABLE t RENAME a TO b", [("rename-column", "t")]),
    (
        ("mysql",),
        "ALTER TABLE t CHANGE a b INT",
        [("rename-column", "t"), ("alter-column-type", "t")],
    ),
    (("mysql",), "ALTER TABLE t CHANGE COLUMN a A BIGINT", [("alter-column-type", "t")]),
    (("mysql",), "ALTER TABLE t MODIFY c TEXT", [("alter-column-type", "t")]),
    (
        ("mysql",),
        "ALTER TABLE t MODIFY COLUMN c VARCHAR(10) NOT NULL",
        [("alter-column-type", "t")],
    ),
    (
        ("postgresql",),
        "ALTER TABLE t ALTER COLUMN c TYPE bigint USING c::bigint",
        [("alter-column-type", "t")],
    ),
    (("postgresql",), "ALTER TABLE t ALTER c SET DATA TYPE text", [("alter-column-type", "t")]),
    (("postgresql",), "ALTER TABLE t ALTER COLUMN c SET NOT NULL", [("other-ddl", "t")]),
    (("mysql", "postgresql"), "ALTER TABLE t ALTER COLUMN c SET DEFAULT 1", [("other-ddl", "t")]),
    (("postgresql",), "ALTER TABLE t SET SCHEMA archive", [("rename-table", "t")]),
    (("postgresql",), "ALTER TABLE t OWNER TO bob", [("other-ddl", "t")]),
    (("postgresql", "sqlite"), "ALTER TABLE t RENAME c TO d", [("rename-column", "t")]),
    (
        ("postgresql",),
        "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d",
        [("delete", "t"), ("select", None)],
    ),
    # ALTER TABLE: MySQL table-level actions (sqlglot gives up on most of these)
    (("mysql",), "ALTER TABLE t ENGINE=MyISAM", [("change-engine", "t")]),
    (("mysql",), "ALTER TABLE t ENGINE = BLACKHOLE, ALGORITHM=COPY", [("change-engine", "t")]),
    (("mysql",), "ALTER TABLE t CONVERT TO CHARACTER SET latin1", [("convert-charset", "t")]),
    (("mysql",), "ALTER TABLE t DROP PARTITION p1, p2", [("drop-partition", "t")]),
    (("mysql",), "ALTER TABLE t TRUNCATE PARTITION p0", [("truncate-partition", "t")]),
    (("mysql",), "ALTER TABLE t ALGORITHM=INPLACE, LOCK=NONE", [("other-ddl", "t")]),
    (
        ("mysql", "mariadb"),
        "ALTER IGNORE TABLE `s`.`t` DROP x, CONVERT TO CHARSET utf8mb4",
        [("drop-column", "s.t"), ("convert-charset", "s.t")],
    ),
    (("mysql",), "ALTER TABLE t DISCARD TABLESPACE", [("unanalyzable", "t")]),
    (("mysql",), "ALTER TABLE t FROBNICATE", [("unanalyzable", "t")]),
    # RENAME TABLE
    (
        ("mysql", "mariadb"),
        "RENAME TABLE a TO b, db.c TO d",
        [("rename-table", "a"), ("rename-table", "db.c")],
    ),
    # DELETE / UPDATE
    (ALL, "DELETE FROM t", [("delete", "t")]),
    (ALL, "DELETE FROM t WHERE id = 1", [("delete", "t")]),
    (
        ("mysql",),
        "DELETE t1, t2 FROM t1 JOIN t2 ON t1.id = t2.id",
        [("delete", "t1"), ("delete", "t2")],
    ),
    (
        ("mysql",),
        "DELETE FROM t1, t2 USING t1 JOIN t2 ON t1.id = t2.id",
        [("delete", "t1"), ("delete", "t2")],
    ),
    (("mysql",), "DELETE a FROM orders AS a JOIN b ON a.id = b.id", [("delete", "orders")]),
    (("mysql",), "DELETE LOW_PRIORITY QUICK IGNORE FROM t", [("delete", "t")]),
    (("postgresql",), "DELETE FROM ONLY t USING u WHERE t.id = u.id", [("delete", "t")]),
    (ALL, "UPDATE t SET a = 1", [("update", "t")]),
    (("mysql",), "UPDATE IGNORE t SET a = 1", [("update", "t")]),
    (("mysql",), "UPDATE a JOIN b ON a.id = b.id SET a.x = 1", [("update", "a")]),
    (("postgresql",), "UPDATE t SET a = 1 FROM u WHERE t.id = u.id", [("update", "t")]),
    (("postgresql",), 'UPDATE "order" SET "select" = 1', [("update", "order")]),
    # INSERT / SELECT / no-ops
    (ALL, "INSERT INTO log VALUES ('DROP TABLE users')", [("insert", "log")]),
    (("mysql", "sqlite"), "REPLACE INTO t VALUES (1)", [("insert", "t")]),
    (("sqlite",), "INSERT OR REPLACE INTO t VALUES (1)", [("insert", "t")]),
    (ALL, "SELECT 1 -- DROP TABLE x", [("select", None)]),
    (ALL, "SELECT 'DROP TABLE x' /* TRUNCATE y */", [("select", None)]),
    (ALL, "-- DROP TABLE x\nSELECT 1", [("select", None)]),
    (("mysql",), "SET NAMES utf8mb4", [("no-op", None)]),
    (("mysql",), "SET @OLD_SQL_MODE=@@SQL_MODE, SQL_MODE='TRADITIONAL'", [("no-op", None)]),
    (("mysql",), "USE sakila", [("no-op", None)]),
    (("mysql",), "LOCK TABLES t WRITE", [("no-op", None)]),
    (("mysql",), "UNLOCK TABLES", [("no-op", None)]),
    (ALL, "BEGIN", [("no-op", None)]),
    (ALL, "COMMIT", [("no-op", None)]),
    (("postgresql",), "SET search_path TO x, public", [("no-op", None)]),
    (("sqlite",), "PRAGMA foreign_keys=OFF", [("no-op", None)]),
    (("mysql",), "/*!40101 SET NAMES utf8mb4 */", [("no-op", None)]),
    (("mysql",), "/*!50001 DROP TABLE IF EXISTS `v`*/", [("drop-table", "v")]),
    (("postgresql",), "COMMENT ON TABLE t IS 'DROP TABLE t'", [("other-ddl", "t")]),
    (("postgresql",), "GRANT SELECT ON t TO bob", [("no-op", None)]),
    # dynamic SQL and procedural code: fail closed
    (("mysql",), "PREPARE s FROM @sql", [("unanalyzable", None)]),
    (("mysql",), "PREPARE s FROM 'DROP TABLE x'", [("drop-table", "x")]),
    (("mysql", "postgresql"), "EXECUTE s", [("unanalyzable", None)]),
    (("mysql", "postgresql"), "CALL cleanup()", [("unanalyzable", None)]),
    (("postgresql",), "DO $$ BEGIN EXECUTE 'DROP TABLE x'; END $$", [("unanalyzable", "x")]),
    (("postgresql",), "PREPARE p (int) AS DELETE FROM t WHERE id = $1", [("delete", "t")]),
    (("mariadb",), "BEGIN NOT ATOMIC DELETE FROM t; END", [("unanalyzable", "t")]),
    (ALL, "this is not sql at all", [("unanalyzable", None)]),
    (ALL, ")))", [("unanalyzable", None)]),
]


@pytest.mark.parametrize(
    ("dialect", "sql", "expected"),
    [
        pytest.param(dialect, sql, expected, id=f"{dialect}:{sql[:50]}")
        for dialects, sql, expected in CASES
        for dialect in dialects
    ],
)
def test_statement_kinds_and_tables(dialect: str, sql: str, expected: list[Any]) -> None:
    assert summary(sql, dialect) == expected


def test_schema_qualified_and_quoted_names_are_split_and_unquoted() -> None:
    assert only("DROP TABLE `shop`.`Orders`").table == TableRef(name="Orders", schema="shop")
    assert only('DROP TABLE "Shop"."Orders"', "postgresql").table == TableRef("Orders", "Shop")
    assert only("DROP TABLE [Orders]", "sqlite").table == TableRef("Orders")
    assert only("DROP TABLE `we``ird`").table == TableRef("we`ird")


def test_drop_table_if_exists_flag() -> None:
    assert only("DROP TABLE IF EXISTS t").if_exists
    assert not only("DROP TABLE t").if_exists


def test_drop_column_names_and_mysql_drop_without_column_keyword() -> None:
    result = ops("ALTER TABLE t DROP a, DROP COLUMN `b`, DROP INDEX c")
    assert [(op.kind, op.column) for op in result] == [
        (OpKind.DROP_COLUMN, "a"),
        (OpKind.DROP_COLUMN, "b"),
        (OpKind.OTHER_DDL, None),
    ]


def test_fallback_alter_with_several_actions() -> None:
    result = ops(
        "ALTER TABLE t DROP x, CHANGE a b VARCHAR(20), MODIFY c BIGINT UNSIGNED, "
        "CONVERT TO CHARACTER SET utf8mb4, ENGINE=MyISAM"
    )
    kinds = [op.kind for op in result]
    assert kinds == [
        OpKind.DROP_COLUMN,
        OpKind.RENAME_COLUMN,
        OpKind.ALTER_COLUMN_TYPE,
        OpKind.ALTER_COLUMN_TYPE,
        OpKind.CONVERT_CHARSET,
        OpKind.CHANGE_ENGINE,
    ]
    assert result[1].column == "a" and result[1].new_name == "b"
    assert result[2].new_type is not None and result[2].new_type.name == "VARCHAR"
    assert result[2].new_type.args == (20,)
    modify = result[3]
    assert modify.column == "c"
    assert modify.new_type == ColumnType("BIGINT", (), True, "BIGINT UNSIGNED")
    assert result[4].value == "utf8mb4"
    assert result[5].value == "MyISAM"


def test_change_with_same_name_is_only_a_type_change() -> None:
    result = ops("ALTER TABLE t CHANGE COLUMN `Price` price DECIMAL(10,2) UNSIGNED NOT NULL")
    assert [op.kind for op in result] == [OpKind.ALTER_COLUMN_TYPE]
    assert result[0].new_type == ColumnType("DECIMAL", (10, 2), True, "DECIMAL(10, 2) UNSIGNED")


def test_rename_column_and_table_names() -> None:
    column = only("ALTER TABLE t RENAME COLUMN a TO b", "postgresql")
    assert (column.column, column.new_name) == ("a", "b")
    table = only("ALTER TABLE t RENAME TO archive.u")
    assert table.new_name == "archive.u"
    pairs = ops("RENAME TABLE a TO b, c TO d")
    assert [(op.table, op.new_name) for op in pairs] == [(TableRef("a"), "b"), (TableRef("c"), "d")]


def test_partitions_are_listed() -> None:
    assert only("ALTER TABLE t DROP PARTITION p1, p2").partitions == ("p1", "p2")
    assert only("ALTER TABLE t TRUNCATE PARTITION p0").partitions == ("p0",)


def test_create_table_columns_and_types() -> None:
    created = only(
        "CREATE TABLE film (film_id SMALLINT UNSIGNED NOT NULL AUTO_INCREMENT, "
        "title VARCHAR(128) NOT NULL, rate DECIMAL(4,2), note TEXT NULL, PRIMARY KEY (film_id), "
        "FULLTEXT KEY ft (title)) ENGINE=InnoDB"
    )
    assert created.kind is OpKind.CREATE_TABLE
    assert [(c.name, c.type.name if c.type else None, c.nullable) for c in created.columns] == [
        ("film_id", "SMALLINT", False),
        ("title", "VARCHAR", False),
        ("rate", "DECIMAL", None),
        ("note", "TEXT", True),
    ]
    assert created.columns[0].type is not None and created.columns[0].type.unsigned
    assert created.columns[2].type is not None and created.columns[2].type.args == (4, 2)


def test_add_column_type() -> None:
    added = only("ALTER TABLE t ADD COLUMN price NUMERIC(10, 2) NOT NULL", "postgresql")
    assert added.kind is OpKind.ADD_COLUMN
    assert added.column == "price"
    assert added.new_type is not None and added.new_type.args == (10, 2)


def test_postgres_type_change_keeps_the_new_type() -> None:
    change = only("ALTER TABLE t ALTER COLUMN c TYPE varchar(20)", "postgresql")
    assert change.column == "c"
    assert change.new_type is not None
    assert (change.new_type.name, change.new_type.args) == ("VARCHAR", (20,))


def test_engine_and_charset_values() -> None:
    assert only("ALTER TABLE t ENGINE=BLACKHOLE").value == "BLACKHOLE"
    assert (
        only("ALTER TABLE t CONVERT TO CHARACTER SET latin1 COLLATE latin1_bin").value == "latin1"
    )


@pytest.mark.parametrize(
    "condition",
    [
        "1=1",
        "1",
        "TRUE",
        "'a'='a'",
        "x = x",
        "1 OR x = 2",
        "x = 2 OR 1 = 1",
        "NOT FALSE",
        "NOT (1 = 0)",
        "x IS NULL OR x IS NOT NULL",
        "(1 = 1) AND ('b' = 'b')",
        "2 > 1",
        "1 <> 2",
        "1 IN (1, 2)",
        "'1' = 1",
    ],
)
@pytest.mark.parametrize("dialect", ["mysql", "postgresql", "sqlite"])
def test_tautological_where(condition: str, dialect: str) -> None:
    delete = only(f"DELETE FROM t WHERE {condition}", dialect)
    assert delete.has_where is True
    assert delete.where_is_tautology, condition
    update = only(f"UPDATE t SET a = 1 WHERE {condition}", dialect)
    assert update.where_is_tautology, condition


@pytest.mark.parametrize(
    "condition",
    [
        "id = 1",
        "1 = 0",
        "x = 1 AND 1 = 1",
        "x <> x",
        "NOT TRUE",
        "x IS NULL",
        "'a' = 'b'",
        "id IN (SELECT id FROM u)",
        "FALSE OR x = 1",
    ],
)
def test_real_where_is_not_a_tautology(condition: str) -> None:
    delete = only(f"DELETE FROM t WHERE {condition}")
    assert delete.has_where is True
    assert not delete.where_is_tautology


def test_delete_without_where_even_with_limit() -> None:
    delete = only("DELETE FROM t ORDER BY id LIMIT 10")
    assert delete.has_where is False
    assert not delete.where_is_tautology


def test_unanalyzable_has_a_reason() -> None:
    for sql, dialect in [
        ("PREPARE s FROM @q", "mysql"),
        ("EXECUTE s", "mysql"),
        ("CALL p()", "mysql"),
        ("DO $$ BEGIN END $$", "postgresql"),
        ("gibberish here", "sqlite"),
    ]:
        operation = only(sql, dialect)
        assert operation.kind is OpKind.UNANALYZABLE
        assert operation.reason


def test_known_operations_are_returned_unchanged() -> None:
    known = Operation(kind=OpKind.DROP_COLUMN, statement=Statement("", "r.py", 3), column="c")
    statement = Statement(sql="DROP TABLE x", file="r.py", line=3, known_operations=(known,))
    assert parse_statement(statement, "mysql") == [known]


def test_operations_carry_their_statement() -> None:
    statement = Statement(sql="DROP TABLE a, b", file="x.sql", line=7)
    assert all(op.statement is statement for op in parse_statement(statement, "postgresql"))


def test_unknown_dialect_does_not_raise() -> None:
    assert isinstance(parse_statement(Statement("DROP TABLE t", "f", 1), "oracle"), list)


def test_version_comments_are_unwrapped() -> None:
    assert unwrap_version_comments("/*!40101 SET x=1 */").strip() == "SET x=1"
    assert unwrap_version_comments("/*M!100100 DROP TABLE t */").strip() == "DROP TABLE t"
    text = "SELECT '/*!1 x */' /* plain */"
    assert unwrap_version_comments(text) == text


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=st.one_of(
        st.text(max_size=300),
        st.binary(max_size=300).map(lambda raw: raw.decode("latin-1")),
        st.lists(
            st.sampled_from(
                [
                    "ALTER",
                    "TABLE",
                    "DROP",
                    "t",
                    "`x`",
                    '"y"',
                    "(",
                    ")",
                    ",",
                    "'s",
                    "PARTITION",
                    "CHANGE",
                    "MODIFY",
                    "RENAME",
                    "TO",
                    "ENGINE",
                    "=",
                    "CONVERT",
                    "DELETE",
                    "FROM",
                    "WHERE",
                    "1",
                    "/*!",
                    "*/",
                    "$$",
                    "--",
                    "\n",
                    "PREPARE",
                    "CREATE",
                    "TRIGGER",
                    "ON",
                    "BEGIN",
                    "END",
                    ";",
                    "TRUNCATE",
                    "UPDATE",
                    "SET",
                    "[",
                    "]",
                ]
            ),
            max_size=25,
        ).map(" ".join),
    ),
    dialect=st.sampled_from(ALL),
)
def test_never_raises_on_any_text(text: str, dialect: str) -> None:
    result = parse_statement(Statement(sql=text, file="fuzz.sql", line=1), dialect)
    assert isinstance(result, list) and result
    assert all(isinstance(operation, Operation) for operation in result)
    for operation in result:
        if operation.kind is OpKind.UNANALYZABLE:
            assert operation.reason


def test_every_sakila_schema_statement_is_analysed_or_unanalyzable(sakila_dir: Path) -> None:
    from migration_guard.analysis.splitter import split_sql

    schema = sakila_dir / "sakila-schema.sql"
    statements = split_sql(schema.read_text(encoding="utf-8"), file="sakila-schema.sql")
    assert len(statements) > 40
    kinds: dict[OpKind, int] = {}
    for statement in statements:
        result = parse_statement(statement, "mysql")
        assert result, statement.sql
        for operation in result:
            assert isinstance(operation.kind, OpKind)
            assert operation.kind is not OpKind.UNANALYZABLE or operation.reason
            kinds[operation.kind] = kinds.get(operation.kind, 0) + 1
    assert kinds[OpKind.CREATE_TABLE] == 16
    assert kinds[OpKind.DROP_DATABASE] == 1
    assert OpKind.UNANALYZABLE not in kinds
    triggers = [
        op
        for statement in statements
        if "CREATE TRIGGER" in statement.sql
        for op in parse_statement(statement, "mysql")
    ]
    assert {op.table for op in triggers} == {TableRef("film")}


@pytest.mark.parametrize("alias", ["postgres", "pg", "PostgreSQL"])
def test_dialect_aliases_read_like_the_dialect(alias: str) -> None:
    # PostgreSQL's ``RENAME c TO d`` (no COLUMN keyword) is a column rename only
    # when read as PostgreSQL.
    sql = "ALTER TABLE t RENAME c TO d"
    assert ops(sql, alias) == ops(sql, "postgresql")
    assert only(sql, alias).kind is OpKind.RENAME_COLUMN
