"""The sqlglot-free quick path must agree exactly with the full parser."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from migration_guard.analysis.coltypes import TYPE_SPELLINGS
from migration_guard.analysis.families import sqlglot_family
from migration_guard.analysis.model import OpKind, Statement
from migration_guard.analysis.parse import parse_statement
from migration_guard.analysis.quick import quick_operations
from migration_guard.analysis.tokens import plain_tokens, tokenize

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
    # Alembic's own version-table bookkeeping, as SQLAlchemy renders it
    "UPDATE alembic_version SET version_num='r001' WHERE alembic_version.version_num = 'r000'",
    "INSERT INTO alembic_version (version_num) VALUES ('r000') RETURNING version_num",
    "INSERT INTO alembic_version (version_num) VALUES ('r0') RETURNING alembic_version.version_num",
    "DELETE FROM alembic_version WHERE alembic_version.version_num = 'r009'",
]
# Issue 16: where findings are many, the destructive one-table shapes skip sqlglot too.
DESTRUCTIVE = [
    "DROP TABLE vault_1;",
    "drop table if exists app.Vault CASCADE",
    "DROP TABLE t RESTRICT ;",
    "TRUNCATE TABLE vault_2;",
    "TRUNCATE s.t",
    "DELETE FROM vault_3;",
    "DELETE FROM app.t",
]


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("sql", DESTRUCTIVE)
def test_destructive_one_table_shapes_take_the_quick_path_and_agree(sql: str, dialect: str) -> None:
    assert _agrees(sql, dialect)


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("sql", HARMLESS)
def test_common_harmless_shapes_take_the_quick_path_and_agree(sql: str, dialect: str) -> None:
    assert _agrees(sql, dialect)


@pytest.mark.parametrize(
    "sql",
    [
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
        "DROP TABLE a, b",
        "DROP TEMPORARY TABLE t",
        "DROP TABLE IF EXISTS",
        "TRUNCATE t CASCADE",
        "TRUNCATE ONLY t",
        "TRUNCATE t, u",
        "DELETE FROM t USING u",
    ],
)
def test_anything_else_goes_to_the_full_parser(sql: str) -> None:
    for dialect in DIALECTS:
        assert quick_operations(_statement(sql), dialect) is None


@pytest.mark.parametrize(
    "sql",
    [
        "DROP\u00a0TABLE t",  # a no-break space
        "UPDATE t SET a = 1 WHERE\u2003id = 2",  # an em space
        "DELETE FROM t WHERE id = \u0661",  # an Arabic-Indic digit
        "INSERT INTO t VALUES (\u0661)",
        "DROP TABLE \u212aelvin",  # the Kelvin sign, which only folds to an ASCII K
        "TRUNCATE \u017fales",  # the long s
    ],
)
def test_non_ascii_blanks_digits_and_letters_go_to_the_full_parser(sql: str) -> None:
    # The patterns match ASCII only (cheaper to compile); the parser reads the rest.
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
    [
        "t",
        "T0",
        "orders",
        "s",
        "id",
        "name",
        "x_1",
        "true",
        "null",
        "only",
        "set",
        "where",
        "select",
        "key",
        "current_date",
        "values",
        "user",
        "default",
        "ignore",
    ]
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
        draw(_words),
        draw(_words),
        draw(_words),
        draw(_literals),
        draw(_space),
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
        f"DROP TABLE {table}",
        f"DROP TABLE IF EXISTS {table}{space}CASCADE",
        f"DROP TABLE {table}, {other}",
        f"TRUNCATE {table}",
        f"TRUNCATE TABLE{space}{table}",
    ]
    return draw(st.sampled_from(shapes)) + draw(_tail)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sql=_candidates(), dialect=st.sampled_from(DIALECTS))
def test_quick_path_never_disagrees_with_the_parser(sql: str, dialect: str) -> None:
    _agrees(sql, dialect)


# --------------------------------------------------------------------------- column statements

COLUMN_STATEMENTS = [
    (
        "CREATE TABLE t1 (id bigint PRIMARY KEY, name varchar(100) NOT NULL, "
        "created_at timestamptz DEFAULT now(), payload jsonb);",
        DIALECTS,
    ),
    ("ALTER TABLE t0 ADD COLUMN note_1 text;", DIALECTS),
    ("ALTER TABLE t0 ALTER COLUMN name TYPE varchar(200);", DIALECTS),
    ("alter table app.t0 alter name set data type numeric(10, 2)", DIALECTS),
    ("ALTER TABLE t ADD c int NULL, ADD COLUMN d double precision DEFAULT -1.5", DIALECTS),
    (
        "CREATE TABLE IF NOT EXISTS s.orders (id serial PRIMARY KEY, "
        "customer_id integer NOT NULL REFERENCES customers(id), total decimal(12,2) DEFAULT 0, "
        "note character varying(20) DEFAULT 'it''s' NULL, seen boolean DEFAULT false, "
        "at timestamp with time zone DEFAULT CURRENT_TIMESTAMP NOT NULL, UNIQUE (customer_id), "
        "FOREIGN KEY (customer_id) REFERENCES s.customers (id))",
        DIALECTS,
    ),
    (
        'CREATE TABLE "Order" ("select" int, "Id" uuid UNIQUE NOT NULL, PRIMARY KEY ("Id"))',
        ("postgresql", "sqlite"),
    ),
    (
        "CREATE TABLE `users` (`id` int(11) unsigned NOT NULL AUTO_INCREMENT, "
        "`active` tinyint(1) NOT NULL DEFAULT 1, `created` datetime(6) DEFAULT NULL "
        "COMMENT 'creation', `amount` decimal(10,2) unsigned, PRIMARY KEY (`id`))",
        ("mysql", "mariadb"),
    ),
    ("ALTER TABLE `users` ADD COLUMN `age` smallint unsigned DEFAULT NULL", ("mysql", "mariadb")),
    ("CREATE TABLE t (id integer PRIMARY KEY AUTOINCREMENT, b blob)", ("sqlite",)),
    (
        "CREATE TABLE t (a timestamp, b timestamp without time zone, c blob, d real, e float)",
        ("postgresql", "sqlite"),
    ),
    ("CREATE TABLE t (a timestamp, c blob, d real, e float)", ("mysql", "mariadb")),
    ("CREATE TABLE t (a int8, b bigserial, c smallserial)", ("postgresql",)),
    (
        "CREATE TABLE alembic_version (\n\tversion_num VARCHAR(32) NOT NULL, \n\t"
        "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)\n)",
        DIALECTS,
    ),
]


@pytest.mark.parametrize("dialect", ["mysql", "mariadb"])
def test_a_spelling_the_accepted_sqlglot_releases_disagree_on_is_left_to_the_parser(
    dialect: str,
) -> None:
    """sqlglot 30.30 reads MySQL's TIMESTAMP WITHOUT TIME ZONE as TIMESTAMP, 30.31 as
    TIMESTAMPNTZ; both are allowed (sqlglotc lags), so the quick path must not guess."""
    sql = "CREATE TABLE t (b timestamp without time zone)"
    assert quick_operations(_statement(sql), dialect) is None


@pytest.mark.parametrize(("sql", "dialects"), COLUMN_STATEMENTS)
def test_column_statements_take_the_quick_path_and_agree(
    sql: str, dialects: tuple[str, ...]
) -> None:
    for dialect in dialects:
        assert _agrees(sql, dialect), dialect


def test_create_table_keeps_the_normalised_column_types() -> None:
    sql = "CREATE TABLE t (a numeric(10,2) NOT NULL, b character varying(5), c timestamptz)"
    [operation] = quick_operations(_statement(sql), "postgresql") or []
    assert operation.kind is OpKind.CREATE_TABLE
    assert [(c.name, c.type.text if c.type else "", c.nullable) for c in operation.columns] == [
        ("a", "DECIMAL(10, 2)", False),
        ("b", "VARCHAR(5)", None),
        ("c", "TIMESTAMPTZ", None),
    ]


_SPELLINGS = sorted(" ".join(words).lower() for words in TYPE_SPELLINGS)


@pytest.mark.parametrize("spelling", _SPELLINGS)
def test_every_listed_type_spelling_agrees_in_every_dialect(spelling: str) -> None:
    for dialect in DIALECTS:
        for suffix in ("", "(10)", "(10, 2)", " unsigned", "(11) unsigned"):
            for sql in (
                f"CREATE TABLE t (c {spelling}{suffix} NOT NULL)",
                f"ALTER TABLE t ADD COLUMN c {spelling}{suffix}",
                f"ALTER TABLE t ALTER COLUMN c TYPE {spelling}{suffix}",
            ):
                _agrees(sql, dialect)
        assert _agrees(f"ALTER TABLE t ADD COLUMN c {spelling}", dialect) == (
            TYPE_SPELLINGS[tuple(spelling.upper().split())].names[str(sqlglot_family(dialect))]
            is not None
        )


@pytest.mark.parametrize(
    "sql",
    [
        "CREATE TABLE t (c int KEY)",
        "CREATE TABLE t (c int UNIQUE KEY)",
        "CREATE TABLE t (c mystery)",
        "CREATE TABLE t (c json(10))",
        "CREATE TABLE t (c varchar(10, 2))",
        "CREATE TABLE t (c timestamp with time zone(3))",
        "CREATE TABLE t (c int DEFAULT 1 + 1)",
        "CREATE TABLE t (c text DEFAULT e'x')",
        "CREATE TABLE t (c text DEFAULT 'a\\'b')",
        "CREATE TABLE t (c text DEFAULT 'x'::text)",
        "CREATE TABLE t (c int CHECK (c > 0))",
        "CREATE TABLE t (c int REFERENCES u(id) ON DELETE CASCADE)",
        "CREATE TABLE t (c int) ; DROP TABLE u",
        "CREATE TABLE t (c int); DROP TABLE u",
        "CREATE TABLE t (c int) -- comment",
        "CREATE TABLE t (c int /* ; */)",
        "CREATE TABLE t (key int)",
        "CREATE TABLE t (c int, CONSTRAINT CHECK (c > 0))",
        "CREATE TABLE t AS SELECT 1",
        "CREATE TABLE t (LIKE u)",
        "CREATE TABLE t ()",
        "CREATE OR REPLACE TABLE t (c int)",
        "CREATE TEMPORARY TABLE t (c int)",
        "CREATE TABLE t (c int) PARTITION BY RANGE (c)",
        "CREATE TABLE t (c int) ENGINE=InnoDB",
        "CREATE TABLE t (c varchar(10) unsigned)",
        "CREATE TABLE t (c int(11) zerofill)",
        "ALTER TABLE t ADD COLUMN c int, DROP COLUMN d",
        "ALTER TABLE t ADD COLUMN c int FIRST",
        "ALTER TABLE t ADD COLUMN IF NOT EXISTS c int",
        "ALTER TABLE t ADD CONSTRAINT c UNIQUE (a)",
        "ALTER TABLE t ADD PRIMARY KEY (a)",
        "ALTER TABLE t ADD INDEX (a)",
        "ALTER TABLE t ALTER COLUMN c TYPE int USING c::int",
        'ALTER TABLE t ALTER COLUMN c TYPE text COLLATE "C"',
        "ALTER TABLE t ALTER COLUMN c SET DEFAULT 1",
        "ALTER TABLE t ALTER COLUMN c DROP NOT NULL",
        "ALTER TABLE ONLY t ADD COLUMN c int",
        "ALTER TABLE IF EXISTS t ADD COLUMN c int",
        "ALTER TABLE t DROP COLUMN c",
    ],
)
def test_other_column_statements_go_to_the_full_parser(sql: str) -> None:
    for dialect in DIALECTS:
        assert quick_operations(_statement(sql), dialect) is None, dialect


def test_quoting_is_read_per_dialect() -> None:
    backquoted = "CREATE TABLE `t` (`c` int)"
    double_quoted = 'CREATE TABLE "t" ("c" int)'
    assert quick_operations(_statement(backquoted), "postgresql") is None
    assert quick_operations(_statement(double_quoted), "mysql") is None
    assert _agrees(backquoted, "sqlite") and _agrees(double_quoted, "sqlite")


# Valid pieces are drawn twice as often as the rest so that many candidates take
# the quick path; the others check that near misses fall back.
_column_names = st.one_of(
    st.sampled_from(["c", "Id", "name", "text", "date", "type", "year", "time", "zone", "data"]),
    st.sampled_from(
        [
            "key",
            "primary",
            "unique",
            "null",
            "default",
            "check",
            "first",
            "column",
            "index",
            "serial",
            "comment",
            "like",
        ]
    ),
)
_VALID_TYPES = [
    "int",
    "INTEGER",
    "int(11)",
    "varchar(255)",
    "character varying",
    "numeric(10,2)",
    "decimal( 5 , 0 )",
    "double precision",
    "timestamp with time zone",
    "timestamp(3)",
    "timestamptz",
    "boolean",
    "text",
    "jsonb",
    "real",
    "float(24)",
    "blob",
    "tinyint(1)",
    "datetime(6)",
    "serial",
    "uuid",
    "char(2)",
    "time without time zone",
    "double",
    "year(4)",
]
_OTHER_TYPES = [
    "bigint unsigned",
    "int(10) UNSIGNED",
    "json(5)",
    "int8",
    "bigserial",
    "varchar(10) unsigned",
    "enum('a')",
    "mystery",
    "timestamp(6) with time zone",
    "int(11) zerofill",
    "varchar(1, 2)",
]
_type_texts = st.one_of(
    st.sampled_from(_VALID_TYPES), st.sampled_from(_VALID_TYPES), st.sampled_from(_OTHER_TYPES)
)
_VALID_CONSTRAINTS = [
    "NOT NULL",
    "NULL",
    "PRIMARY KEY",
    "UNIQUE",
    "DEFAULT 0",
    "DEFAULT -1",
    "DEFAULT 1.5",
    "DEFAULT 'x'",
    "DEFAULT ''",
    "DEFAULT 'a''b'",
    "DEFAULT NULL",
    "DEFAULT now()",
    "DEFAULT NOW ( )",
    "DEFAULT CURRENT_TIMESTAMP",
    "DEFAULT true",
    "REFERENCES u(id)",
    "REFERENCES s.u",
    "REFERENCES u (a, b)",
]
_OTHER_CONSTRAINTS = [
    "UNIQUE KEY",
    "KEY",
    "DEFAULT 'a\\'b'",
    "DEFAULT 1+1",
    "DEFAULT e'x'",
    "AUTO_INCREMENT",
    "AUTOINCREMENT",
    "COMMENT 'c'",
    "COLLATE utf8mb4_bin",
    "CHECK (c > 0)",
    "UNSIGNED",
    "GENERATED ALWAYS AS IDENTITY",
    "ON UPDATE CURRENT_TIMESTAMP",
]
_constraints = st.lists(
    st.one_of(
        st.sampled_from(_VALID_CONSTRAINTS),
        st.sampled_from(_VALID_CONSTRAINTS),
        st.sampled_from(_OTHER_CONSTRAINTS),
    ),
    max_size=4,
)


@st.composite
def _column_definitions(draw: st.DrawFn) -> str:
    name = draw(_column_names)
    name = draw(st.sampled_from([name, f'"{name}"', f"`{name}`"]))
    return " ".join([name, draw(_type_texts), *draw(_constraints)])


@st.composite
def _column_candidates(draw: st.DrawFn) -> str:
    table = draw(st.sampled_from(["t", "s.t", '"T"', "`t`", "only", 's."t"']))
    space = draw(_space)
    columns = draw(st.lists(_column_definitions(), min_size=1, max_size=3))
    extra = draw(
        st.sampled_from(
            [
                "",
                ", PRIMARY KEY (c)",
                ", UNIQUE (c, name)",
                ", FOREIGN KEY (c) REFERENCES u(id)",
                ", CONSTRAINT k PRIMARY KEY (c)",
                ", CONSTRAINT fk FOREIGN KEY (c) REFERENCES u(id)",
                ", CONSTRAINT uq UNIQUE (c)",
                ", CONSTRAINT ck CHECK (c > 0)",
                ", CONSTRAINT PRIMARY KEY (c)",
                ", KEY (c)",
            ]
        )
    )
    shapes = [
        f"CREATE TABLE {table}{space}({', '.join(columns)}{extra})",
        f"CREATE TABLE IF NOT EXISTS {table} ({', '.join(columns)})",
        f"ALTER TABLE {table} ADD COLUMN {columns[0]}",
        f"ALTER TABLE {table} ADD {columns[0]}",
        f"ALTER TABLE {table} {', '.join('ADD COLUMN ' + column for column in columns)}",
        f"ALTER TABLE {table} ALTER COLUMN {draw(_column_names)} TYPE {draw(_type_texts)}",
        f"ALTER TABLE {table} ALTER {draw(_column_names)}{space}SET DATA TYPE {draw(_type_texts)}",
    ]
    return draw(st.sampled_from(shapes)) + draw(_tail)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sql=_column_candidates(), dialect=st.sampled_from(DIALECTS))
def test_quick_column_path_never_disagrees_with_the_parser(sql: str, dialect: str) -> None:
    _agrees(sql, dialect)


# --------------------------------------------------------------------------- plain tokens
_PLAIN = {
    "word": r"[A-Za-z_][A-Za-z0-9_]*",
    "number": r"\d+(?:\.\d+)?",
    "string": r"'[^'\\]*(?:''[^'\\]*)*'",
}
_NAME_QUOTES = {"mysql": "`", "postgres": '"', "sqlite": '"`'}


def _reference_plain_tokens(sql: str, family: str) -> tuple[list[str], ...] | None:
    """The plain reading through the shared tokenizer, as the quick path did before."""
    kinds: list[str] = []
    texts: list[str] = []
    keys: list[str] = []
    position = 0
    for token in tokenize(sql, family):
        raw = sql[token.start : token.end]
        if token.start > position and not sql[position : token.start].isspace():
            return None
        kind = {"word": "word", "ident": "quoted", "number": "number", "string": "string"}.get(
            token.kind, "punct" if token.kind == "op" and raw in "(),.-" else ""
        )
        if kind == "quoted":
            plain = raw[:1] in _NAME_QUOTES[family] and raw[-1:] == raw[:1]
            if not plain or not re.fullmatch(_PLAIN["word"], raw[1:-1]):
                return None
        elif (kind in _PLAIN and not re.fullmatch(_PLAIN[kind], raw)) or not kind:
            return None
        kinds.append(kind)
        texts.append(token.text)
        keys.append(raw.upper() if kind == "word" else raw if kind == "punct" else "")
        position = token.end
    if position < len(sql) and not sql[position:].isspace():
        return None
    return kinds, texts, keys


_PIECES = st.sampled_from(
    [" ", "\n", "\r", "\t", "a", "Ab_1", "1", "2.5", "1.", ".5", "1e5", "'x'", "''", "'a''b'",
     "'a\\'b'", '"n"', "`n`", "[n]", "(", ")", ",", ".", "-", "--", "->", "/*", "*/", "#", "$",
     "$1", "E'x'", "N'x'", "x'0a'", "é", "=", ";", "@v", ":p", "\x1c"]
)  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(
    parts=st.lists(_PIECES, max_size=12), family=st.sampled_from(["mysql", "postgres", "sqlite"])
)
def test_plain_tokens_read_as_the_tokenizer_does_or_decline(parts: list[str], family: str) -> None:
    """Issue 16: the quick path's fast reading never differs from the shared tokenizer's."""
    sql = "".join(parts)
    fast = plain_tokens(sql, family)
    if fast is not None:
        assert fast == _reference_plain_tokens(sql, family), sql
