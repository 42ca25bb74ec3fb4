"""The sqlglot-free quick path must agree exactly with the full parser."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from migration_guard.analysis.model import OpKind, Statement
from migration_guard.analysis.parse import parse_statement
from migration_guard.analysis.quick import quick_operations

DIALECTS = ("postgresql", "mysql", "mariadb", "sqlite")


def _statement(sql: str) -> Statement:
    return Statement(sql=sql, file="m.sql", line=1)


def _agrees(sql: str, dialect: str) -> bool:
    """True when the quick path recognised ``sql``; asserts it matches the parser."""
    statement = _statement(sql)
    quick = quick_operations(statement, dialect)
    if quick is None:
        return False
    assert quick == parse_statement(statement, dialect), (dialect, sql)
    return True


HARMLESS = [
    "INSERT INTO t0 (id, name) VALUES (1, 'row 1; not a statement');",
    "insert into app.Orders values (1, NULL), (-2.5, 'x')",
    "CREATE INDEX CONCURRENTLY idx_1 ON t0 (name);",
    "CREATE UNIQUE INDEX ix ON s.t (a, b)",
    "DROP INDEX IF EXISTS idx_3;",
    "COMMENT ON TABLE t9 IS 'table 9';",
    "UPDATE t1 SET name = 'x' WHERE id = 4;",
    "DELETE FROM app.t2 WHERE id < 6 ;  ",
    "ALTER TABLE t0 RENAME COLUMN note_8 TO remark_8;",
]


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("sql", HARMLESS)
def test_common_harmless_shapes_take_the_quick_path_and_agree(sql: str, dialect: str) -> None:
    assert _agrees(sql, dialect)


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM t",
        "DELETE FROM t WHERE 1 = 1",
        "DELETE FROM t WHERE true = 1",
        "DELETE FROM t WHERE id = id",
        "UPDATE t SET a = 1",
        "UPDATE t SET a = 1 WHERE null IS NULL",
        "INSERT INTO t VALUES (1); DROP TABLE x",
        "INSERT INTO t VALUES ('a\\'); DROP TABLE x; --')",
        "INSERT INTO t VALUES (1) /* ; DROP TABLE x */",
        "DELETE FROM only WHERE a = 1",
        'DELETE FROM "t" WHERE a = 1',
        "COMMENT ON TABLE t IS NULL",
        "ALTER TABLE t RENAME COLUMN a TO b, DROP COLUMN c",
        "/*!50000 DROP TABLE t */",
        "DROP TABLE t",
    ],
)
def test_anything_else_goes_to_the_full_parser(sql: str) -> None:
    for dialect in DIALECTS:
        assert quick_operations(_statement(sql), dialect) is None


def test_known_operations_and_other_dialects_are_left_alone() -> None:
    assert quick_operations(_statement("DROP INDEX i"), "oracle") is None
    known = parse_statement(_statement("DROP TABLE t"), "mysql")
    statement = Statement(sql="DROP INDEX i", file="m.sql", line=1, known_operations=tuple(known))
    assert quick_operations(statement, "mysql") is None


def test_keyed_delete_is_a_delete_with_a_real_where() -> None:
    [operation] = quick_operations(_statement("DELETE FROM t WHERE id = 3"), "postgresql") or []
    assert operation.kind is OpKind.DELETE
    assert operation.has_where is True and operation.where_is_tautology is False


_words = st.sampled_from(
    ["t", "T0", "orders", "s", "id", "name", "x_1", "true", "null", "only", "set", "where",
     "select", "key", "current_date", "values", "user", "default", "ignore"]
)
_literals = st.one_of(
    st.integers(-1000, 1000).map(str),
    st.sampled_from(["1.5", "-0.25", "NULL", "'a;b'", "''", "'it''s'", "'x\\'y'", "'--'", "id"]),
)
_space = st.sampled_from([" ", "  ", "\n", "\t", " /* c */ ", " -- c\n"])
_compare = st.sampled_from(["=", "<>", "!=", "<", ">", "<=", ">=", "IS", "LIKE"])
_tail = st.sampled_from(["", ";", " ; ", ";\n", "; DROP TABLE x", " RETURNING *", ")"])


@st.composite
def _candidates(draw: st.DrawFn) -> str:
    name, other, col, value, space = (
        draw(_words), draw(_words), draw(_words), draw(_literals), draw(_space)
    )
    table = draw(st.sampled_from([name, f"{other}.{name}", f'"{name}"', f"`{name}`"]))
    where = f"WHERE{space}{col} {draw(_compare)} {value}"
    shapes = [
        f"INSERT INTO {table} ({col}, {other}) VALUES ({value}, {draw(_literals)})",
        f"INSERT INTO {table}{space}VALUES ({value}), ({draw(_literals)})",
        f"COMMENT ON TABLE {table} IS {value}",
        f"CREATE INDEX {other} ON {table} ({col})",
        f"CREATE UNIQUE INDEX CONCURRENTLY {other} ON {table}{space}({col}, {name})",
        f"DROP INDEX IF EXISTS {other}",
        f"DROP INDEX{space}{other}",
        f"UPDATE {table} SET {col} = {value} {where}",
        f"DELETE FROM {table} {where}",
        f"DELETE FROM {table}",
        f"ALTER TABLE {table} RENAME COLUMN {col} TO {other}",
    ]
    return draw(st.sampled_from(shapes)) + draw(_tail)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sql=_candidates(), dialect=st.sampled_from(DIALECTS))
def test_quick_path_never_disagrees_with_the_parser(sql: str, dialect: str) -> None:
    _agrees(sql, dialect)
