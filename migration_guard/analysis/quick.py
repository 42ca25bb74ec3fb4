"""Recognise a few obviously harmless statement shapes without sqlglot.

Most of a large migration is ``INSERT ... VALUES``, ``CREATE INDEX``,
``COMMENT ON TABLE``, keyed ``UPDATE``/``DELETE`` and column renames. Parsing
them with sqlglot costs more than everything else ``check`` does, and importing
sqlglot dominates the start-up of a pre-commit hook. This module matches such
statements with strict whole-statement patterns and returns exactly the
operations :func:`migration_guard.analysis.parse.parse_statement` would
return (a differential test holds the two paths together).

It fails closed by construction: anything that does not match a pattern
completely (comments, quoted identifiers, escapes, expressions, subqueries,
several statements, keywords used as names...) returns ``None`` and goes
through the full parser.
"""

from __future__ import annotations

import re

from migration_guard.analysis.model import (
    ColumnDef,
    ColumnType,
    Operation,
    OpKind,
    Statement,
    TableRef,
)

__all__ = ["quick_operations"]

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_TABLE = rf"(?:(?P<schema>{_NAME})\.)?(?P<table>{_NAME})"
# Strings without backslashes or doubled quotes read the same in every dialect.
_LITERAL = r"(?:-?\d+(?:\.\d+)?|'[^'\\]*')"
_VALUE = rf"(?:{_LITERAL}|NULL)"
_ROW = rf"\(\s*{_VALUE}(?:\s*,\s*{_VALUE})*\s*\)"
_NAMES = rf"\(\s*{_NAME}(?:\s*,\s*{_NAME})*\s*\)"
_COLUMN = rf"(?:{_NAME}\.)?{_NAME}"
_COMPARE = r"(?:=|<>|!=|<=|>=|<|>)"
_KEYED_WHERE = rf"WHERE\s+(?:(?P<qualifier>{_NAME})\.)?(?P<key>{_NAME})\s*{_COMPARE}\s*{_LITERAL}"

#: Compiled on first use: compiling them all costs a short check's start-up ~10 ms.
_PATTERN_SOURCES: dict[str, tuple[str, int]] = {
    "INSERT": (
        rf"INSERT\s+INTO\s+{_TABLE}\s*(?:{_NAMES}\s*)?VALUES\s*{_ROW}(?:\s*,\s*{_ROW})*"
        rf"(?:\s+RETURNING\s+{_COLUMN}(?:\s*,\s*{_COLUMN})*)?",
        re.I,
    ),
    "COMMENT": (rf"COMMENT\s+ON\s+TABLE\s+{_TABLE}\s+IS\s+'[^'\\]*'", re.I),
    "CREATE": (
        rf"CREATE\s+(?:UNIQUE\s+)?INDEX\s+(?:CONCURRENTLY\s+)?(?P<index>{_NAME})"
        rf"\s+ON\s+{_TABLE}\s*{_NAMES}",
        re.I,
    ),
    "DROP": (rf"DROP\s+INDEX\s+(?:IF\s+EXISTS\s+)?(?P<index>{_NAME})", re.I),
    "UPDATE": (
        rf"UPDATE\s+{_TABLE}\s+SET\s+(?P<set>{_NAME})\s*=\s*{_LITERAL}\s+{_KEYED_WHERE}",
        re.I,
    ),
    "DELETE": (rf"DELETE\s+FROM\s+{_TABLE}\s+{_KEYED_WHERE}", re.I),
    "ALTER": (
        rf"ALTER\s+TABLE\s+{_TABLE}\s+RENAME\s+COLUMN\s+(?P<old>{_NAME})\s+TO\s+(?P<new>{_NAME})",
        re.I,
    ),
}
_compiled_patterns: dict[str, re.Pattern[str]] = {}


def _pattern(word: str) -> re.Pattern[str] | None:
    pattern = _compiled_patterns.get(word)
    if pattern is None and word in _PATTERN_SOURCES:
        pattern = re.compile(*_PATTERN_SOURCES[word])
        _compiled_patterns[word] = pattern
    return pattern


#: Dialects whose sqlglot reading of the shapes above was checked against the full path.
_DIALECTS = frozenset({"postgresql", "postgres", "sqlite", "mysql", "mariadb"})
_TRAILING = re.compile(r"\s*;?\s*\Z")
_FIRST_WORD = re.compile(r"\s*([A-Za-z]+)")

#: Words that may change how a statement reads when used as a name: those go
#: through the full parser (so does every name in doubt: this list may be long).
_RESERVED_WORDS = """
    ALL ALTER AND ANY ARRAY AS ASC BETWEEN BINARY BOTH BY CASE CAST CHECK COLLATE COLUMN
    CONCURRENTLY CONSTRAINT CREATE CROSS CURRENT CURRENT_DATE CURRENT_ROLE CURRENT_TIME
    CURRENT_TIMESTAMP CURRENT_USER DATABASE DEFAULT DELAYED DELETE DESC DISTINCT DO DROP
    ELSE END ESCAPE EXCEPT EXISTS FALSE FETCH FOR FOREIGN FROM FULL GLOB GRANT GROUP HAVING
    HIGH_PRIORITY IF IGNORE ILIKE IN INDEX INNER INSERT INTERSECT INTERVAL INTO IS ISNULL
    JOIN KEY LATERAL LEADING LEFT LIKE LIMIT LOCALTIME LOCALTIMESTAMP LOW_PRIORITY MATCH
    NATURAL NOT NOTNULL NULL OFFSET ON ONLY OR ORDER OUTER OVERWRITE PARTITION PRIMARY
    QUICK REFERENCES REGEXP RENAME REPLACE RETURNING RIGHT RLIKE ROW ROWS SCHEMA SELECT
    SESSION_USER SET SIMILAR SOME STRAIGHT_JOIN SYMMETRIC SYSTEM_USER TABLE TEMPORARY THEN
    TO TOP TRAILING TRUE TRUNCATE UNION UNIQUE UNKNOWN UPDATE USER USING VALUES VARIADIC
    WHEN WHERE WINDOW WITH
    """
_RESERVED = frozenset(_RESERVED_WORDS.split())


def quick_operations(statement: Statement, dialect: str) -> list[Operation] | None:
    """The operations of ``statement`` when it has one of the harmless shapes, else ``None``.

    ``None`` means "not recognised here", never "harmless": the caller must
    then run the full parser.
    """
    if statement.known_operations or dialect.lower() not in _DIALECTS:
        return None
    sql = statement.sql
    first = _FIRST_WORD.match(sql)
    if first is None:
        return None
    word = first.group(1).upper()
    pattern = _pattern(word)
    if pattern is None:
        return None
    start = first.start(1)
    match = pattern.match(sql, start)
    if match is None or _TRAILING.fullmatch(sql, match.end()) is None:
        if word in ("CREATE", "ALTER"):
            return _column_statement(statement, dialect.lower(), first)
        return None
    groups = match.groupdict()
    if any(value and value.upper() in _RESERVED for value in groups.values()):
        return None
    name = groups.get("table")
    table = TableRef(name=name, schema=groups.get("schema")) if name else None
    if word == "INSERT":
        return [Operation(OpKind.INSERT, statement, table)]
    if word in ("COMMENT", "CREATE"):
        return [Operation(OpKind.OTHER_DDL, statement, table)]
    if word == "DROP":
        return [Operation(OpKind.OTHER_DDL, statement)]
    if word == "UPDATE":
        return [Operation(OpKind.UPDATE, statement, table, has_where=True)]
    if word == "DELETE":
        return [Operation(OpKind.DELETE, statement, table, has_where=True)]
    return [
        Operation(
            OpKind.RENAME_COLUMN, statement, table, column=groups["old"], new_name=groups["new"]
        )
    ]


# --------------------------------------------------------------------------- column definitions
#
# ``CREATE TABLE t (c type ...)``, ``ALTER TABLE t ADD [COLUMN] c type ...`` and
# ``ALTER TABLE t ALTER [COLUMN] c [SET DATA] TYPE type``: the rules need the
# column types exactly as sqlglot normalises them, so every spelling below was
# read off sqlglot 30 for each dialect family (tests/unit/test_quick.py checks
# each one against the full parser). A spelling, argument count or constraint
# that is not listed sends the statement to the full parser.

#: Dialect -> family, as in ``parse._SQLGLOT_DIALECTS``.
_FAMILIES = {
    "postgresql": "postgres",
    "postgres": "postgres",
    "mysql": "mysql",
    "mariadb": "mysql",
    "sqlite": "sqlite",
}


_FAMILY_NAMES = ("postgres", "mysql", "sqlite")


class _TypeSpelling:
    """How sqlglot names one type spelling, and which parameters it may carry."""

    __slots__ = ("max_args", "names", "unsigned")

    def __init__(
        self, name: str, max_args: int = 0, *, unsigned: bool = False, **per_family: str | None
    ) -> None:
        self.names = {family: per_family.get(family, name) for family in _FAMILY_NAMES}
        self.max_args = max_args
        self.unsigned = unsigned


_TYPE_SPELLINGS: dict[tuple[str, ...], _TypeSpelling] = {
    ("INT",): _TypeSpelling("INT", 1, unsigned=True),
    ("INTEGER",): _TypeSpelling("INT", 1, unsigned=True),
    ("INT4",): _TypeSpelling("INT", 1, unsigned=True),
    ("BIGINT",): _TypeSpelling("BIGINT", 1, unsigned=True),
    ("INT8",): _TypeSpelling("BIGINT", 1, mysql=None, sqlite=None),
    ("SMALLINT",): _TypeSpelling("SMALLINT", 1, unsigned=True),
    ("INT2",): _TypeSpelling("SMALLINT", 1),
    ("TINYINT",): _TypeSpelling("TINYINT", 1, unsigned=True),
    ("MEDIUMINT",): _TypeSpelling("MEDIUMINT", 1, unsigned=True),
    ("SERIAL",): _TypeSpelling("SERIAL"),
    ("BIGSERIAL",): _TypeSpelling("BIGSERIAL", mysql=None),
    ("SMALLSERIAL",): _TypeSpelling("SMALLSERIAL", mysql=None),
    ("NUMERIC",): _TypeSpelling("DECIMAL", 2, unsigned=True),
    ("DECIMAL",): _TypeSpelling("DECIMAL", 2, unsigned=True),
    ("REAL",): _TypeSpelling("FLOAT", sqlite="DOUBLE"),
    ("FLOAT",): _TypeSpelling("DOUBLE", 1, mysql="FLOAT"),
    ("FLOAT4",): _TypeSpelling("FLOAT"),
    ("FLOAT8",): _TypeSpelling("DOUBLE"),
    ("DOUBLE",): _TypeSpelling("DOUBLE", 2, unsigned=True),
    ("DOUBLE", "PRECISION"): _TypeSpelling("DOUBLE"),
    ("BOOLEAN",): _TypeSpelling("BOOLEAN"),
    ("BOOL",): _TypeSpelling("BOOLEAN"),
    ("VARCHAR",): _TypeSpelling("VARCHAR", 1),
    ("CHARACTER", "VARYING"): _TypeSpelling("VARCHAR", 1),
    ("CHAR",): _TypeSpelling("CHAR", 1),
    ("CHARACTER",): _TypeSpelling("CHAR", 1),
    ("TEXT",): _TypeSpelling("TEXT"),
    ("TINYTEXT",): _TypeSpelling("TINYTEXT"),
    ("MEDIUMTEXT",): _TypeSpelling("MEDIUMTEXT"),
    ("LONGTEXT",): _TypeSpelling("LONGTEXT"),
    ("BLOB",): _TypeSpelling("BLOB", postgres="VARBINARY", sqlite="VARBINARY"),
    ("LONGBLOB",): _TypeSpelling("LONGBLOB"),
    ("BYTEA",): _TypeSpelling("VARBINARY"),
    ("BINARY",): _TypeSpelling("BINARY", 1),
    ("VARBINARY",): _TypeSpelling("VARBINARY", 1),
    ("BIT",): _TypeSpelling("BIT", 1),
    ("UUID",): _TypeSpelling("UUID"),
    ("JSON",): _TypeSpelling("JSON"),
    ("JSONB",): _TypeSpelling("JSONB"),
    ("DATE",): _TypeSpelling("DATE"),
    ("YEAR",): _TypeSpelling("YEAR", 1),
    ("DATETIME",): _TypeSpelling("DATETIME", 1),
    ("TIME",): _TypeSpelling("TIME", 1),
    ("TIMETZ",): _TypeSpelling("TIMETZ", 1),
    ("TIME", "WITH", "TIME", "ZONE"): _TypeSpelling("TIMETZ"),
    ("TIME", "WITHOUT", "TIME", "ZONE"): _TypeSpelling("TIME"),
    ("TIMESTAMP",): _TypeSpelling("TIMESTAMP", 1, mysql="TIMESTAMPTZ"),
    ("TIMESTAMPTZ",): _TypeSpelling("TIMESTAMPTZ", 1),
    ("TIMESTAMP", "WITH", "TIME", "ZONE"): _TypeSpelling("TIMESTAMPTZ"),
    ("TIMESTAMP", "WITHOUT", "TIME", "ZONE"): _TypeSpelling("TIMESTAMP", mysql="TIMESTAMPTZ"),
}
#: First word -> the spellings it starts, longest first (``TIMESTAMP WITH TIME ZONE``
#: before ``TIMESTAMP``), as sqlglot reads the longest one.
_SPELLINGS_BY_FIRST_WORD: dict[str, list[tuple[str, ...]]] = {}
for _words in sorted(_TYPE_SPELLINGS, key=len, reverse=True):
    _SPELLINGS_BY_FIRST_WORD.setdefault(_words[0], []).append(_words)

#: Words that start something other than a column definition, or that sqlglot
#: reads specially right after a column name (on top of ``_RESERVED``).
_NOT_A_COLUMN_WORDS = """
    FULLTEXT SPATIAL PERIOD EXCLUDE VECTOR LIKE INDEX KEY FIRST AFTER AUTO_INCREMENT
    AUTOINCREMENT COMMENT COLLATE GENERATED IDENTITY
    """
_NOT_A_COLUMN = _RESERVED | frozenset(_NOT_A_COLUMN_WORDS.split())

_TOKEN_SOURCES = {
    # Strings without backslashes read the same in every dialect; quoted names
    # are limited to plain words so that no unquoting rule can differ.
    family: (
        r"""\s*(?:
        (?P<word>[A-Za-z_][A-Za-z0-9_]*)
        |(?P<number>-?\d+(?:\.\d+)?)(?![A-Za-z0-9_.])
        |(?P<string>'[^'\\]*(?:''[^'\\]*)*')
        |(?P<punct>[(),.])"""
        + quoted
        + r"""
        |(?P<other>.)
        )""",
        re.X | re.S,
    )
    for family, quoted in (
        ("postgres", r'|"(?P<quoted>[A-Za-z_][A-Za-z0-9_]*)"'),
        ("mysql", r"|`(?P<quoted>[A-Za-z_][A-Za-z0-9_]*)`"),
        (
            "sqlite",
            r'|"(?P<quoted>[A-Za-z_][A-Za-z0-9_]*)"|`(?P<backquoted>[A-Za-z_][A-Za-z0-9_]*)`',
        ),
    )
}


_token_patterns: dict[str, re.Pattern[str]] = {}


def _token_pattern(family: str) -> re.Pattern[str]:
    pattern = _token_patterns.get(family)
    if pattern is None:
        pattern = _token_patterns[family] = re.compile(*_TOKEN_SOURCES[family])
    return pattern


class _Unrecognised(Exception):
    """The statement leaves the recognised shapes: use the full parser."""


class _Reader:
    """A cursor over the tokens of one statement.

    ``keys`` holds what keywords are compared with: the upper-cased text of a
    word, the character of a punctuation mark, and an empty string otherwise.
    """

    __slots__ = ("index", "keys", "kinds", "texts")

    def __init__(self, kinds: list[str], texts: list[str], keys: list[str]) -> None:
        self.kinds = kinds
        self.texts = texts
        self.keys = keys
        self.index = 0

    def word(self, offset: int = 0) -> str:
        position = self.index + offset
        return self.keys[position] if position < len(self.keys) else ""

    def take(self) -> tuple[str, str]:
        index = self.index
        if index >= len(self.kinds):
            raise _Unrecognised
        self.index = index + 1
        return self.kinds[index], self.texts[index]

    def accept(self, *words: str) -> bool:
        """Consume ``words`` (upper-case keywords or punctuation) if they come next."""
        end = self.index + len(words)
        if tuple(self.keys[self.index : end]) != words:
            return False
        self.index = end
        return True

    def expect(self, *words: str) -> None:
        if not self.accept(*words):
            raise _Unrecognised

    def name(self) -> str:
        kind, text = self.take()
        if kind == "quoted" or (kind == "word" and self.keys[self.index - 1] not in _NOT_A_COLUMN):
            return text
        raise _Unrecognised

    def table(self) -> TableRef:
        first = self.name()
        if self.accept("."):
            return TableRef(name=self.name(), schema=first)
        return TableRef(name=first)

    def names(self) -> None:
        """A parenthesised list of names."""
        self.expect("(")
        self.name()
        while self.accept(","):
            self.name()
        self.expect(")")

    def at_end(self) -> bool:
        return self.index == len(self.kinds)


def _reader(sql: str, start: int, family: str) -> _Reader | None:
    """Tokenise ``sql`` from ``start``; None if anything is not a plain token."""
    stop = len(sql.rstrip())
    if sql[stop - 1 : stop] == ";":
        stop = len(sql[: stop - 1].rstrip())
    kinds: list[str] = []
    texts: list[str] = []
    for match in _token_pattern(family).finditer(sql, start, stop):
        kind = match.lastgroup
        if kind is None or kind == "other":
            return None
        kinds.append(kind)
        texts.append(match.group(kind))
    keys = [
        text.upper() if kind == "word" else text if kind == "punct" else ""
        for kind, text in zip(kinds, texts, strict=True)
    ]
    return _Reader(["quoted" if kind == "backquoted" else kind for kind in kinds], texts, keys)


def _column_statement(
    statement: Statement, dialect: str, first: re.Match[str]
) -> list[Operation] | None:
    """``CREATE TABLE``, ``ADD COLUMN`` and ``ALTER COLUMN ... TYPE`` of plain columns."""
    family = _FAMILIES.get(dialect)
    reader = _reader(statement.sql, first.end(1), family) if family else None
    if family is None or reader is None:
        return None
    try:
        if first.group(1).upper() == "CREATE":
            operations = _create_table(reader, statement, family)
        else:
            operations = _alter_table(reader, statement, family)
    except _Unrecognised:
        return None
    return operations if reader.at_end() else None


#: Table constraints that name columns and change nothing the rules see.
_TABLE_CONSTRAINTS = {
    "PRIMARY": ("PRIMARY", "KEY"),
    "UNIQUE": ("UNIQUE",),
    "FOREIGN": ("FOREIGN", "KEY"),
}


def _create_table(reader: _Reader, statement: Statement, family: str) -> list[Operation]:
    reader.expect("TABLE")
    reader.accept("IF", "NOT", "EXISTS")
    table = reader.table()
    reader.expect("(")
    columns: list[ColumnDef] = []
    while True:
        key = reader.word()
        if key == "CONSTRAINT":  # a named table constraint: the name changes nothing
            reader.take()
            reader.name()
            key = reader.word()
            if key not in _TABLE_CONSTRAINTS:
                raise _Unrecognised
        if key in _TABLE_CONSTRAINTS:
            reader.expect(*_TABLE_CONSTRAINTS[key])
            reader.names()
            if key == "FOREIGN":
                _references(reader)
        else:
            columns.append(_column(reader, family))
        if not reader.accept(","):
            break
    reader.expect(")")
    if not columns:
        raise _Unrecognised
    return [Operation(OpKind.CREATE_TABLE, statement, table, columns=tuple(columns))]


def _alter_table(reader: _Reader, statement: Statement, family: str) -> list[Operation]:
    reader.expect("TABLE")
    table = reader.table()
    if reader.accept("ALTER"):
        reader.accept("COLUMN")
        column = reader.name()
        if not reader.accept("TYPE"):
            reader.expect("SET", "DATA", "TYPE")
        new_type = _type(reader, family)
        return [
            Operation(OpKind.ALTER_COLUMN_TYPE, statement, table, column=column, new_type=new_type)
        ]
    operations: list[Operation] = []
    while True:
        reader.expect("ADD")
        reader.accept("COLUMN")
        added = _column(reader, family)
        operations.append(
            Operation(
                OpKind.ADD_COLUMN,
                statement,
                table,
                column=added.name,
                new_type=added.type,
                columns=(added,),
            )
        )
        if not reader.accept(","):
            return operations


def _references(reader: _Reader) -> None:
    reader.expect("REFERENCES")
    reader.table()
    if reader.word() == "(":
        reader.names()


def _type(reader: _Reader, family: str) -> ColumnType:
    spelling = None
    for words in _SPELLINGS_BY_FIRST_WORD.get(reader.word(), ()):
        if len(words) == 1 or tuple(reader.keys[reader.index : reader.index + len(words)]) == words:
            spelling = _TYPE_SPELLINGS[words]
            reader.index += len(words)
            break
    name = spelling.names[family] if spelling is not None else None
    if spelling is None or name is None:
        raise _Unrecognised
    digits: list[str] = []
    if reader.accept("("):
        while True:
            kind, text = reader.take()
            if kind != "number" or not text.isdigit():
                raise _Unrecognised
            digits.append(text)
            if not reader.accept(","):
                break
        reader.expect(")")
        if not digits or len(digits) > spelling.max_args:
            raise _Unrecognised
    unsigned = family == "mysql" and spelling.unsigned and reader.accept("UNSIGNED")
    text = f"{name}({', '.join(digits)})" if digits else name
    return ColumnType(
        name=name,
        args=tuple(int(value) for value in digits),
        unsigned=unsigned,
        text=f"{text} UNSIGNED" if unsigned else text,
    )


_AUTO_INCREMENT = {"mysql": "AUTO_INCREMENT", "sqlite": "AUTOINCREMENT", "postgres": "-"}
_DEFAULT_WORDS = frozenset(["NULL", "TRUE", "FALSE", "CURRENT_TIMESTAMP", "CURRENT_DATE"])


def _column(reader: _Reader, family: str) -> ColumnDef:
    name = reader.name()
    column_type = _type(reader, family)
    nullable: bool | None = None
    while True:
        key = reader.word()
        if key == "NOT":
            reader.expect("NOT", "NULL")
            nullable = False
        elif key == "NULL":
            reader.index += 1
            nullable = True
        elif key == "PRIMARY":
            reader.expect("PRIMARY", "KEY")
            nullable = False
        elif key == "UNIQUE":
            reader.index += 1
            if reader.word() == "KEY":
                raise _Unrecognised
        elif key == "DEFAULT":
            reader.index += 1
            _default(reader)
        elif key == "REFERENCES":
            _references(reader)
        elif key == _AUTO_INCREMENT[family]:
            reader.index += 1
        elif key == "COMMENT" and family == "mysql":
            reader.index += 1
            if reader.take()[0] != "string":
                raise _Unrecognised
        else:
            return ColumnDef(name=name, type=column_type, nullable=nullable)


def _default(reader: _Reader) -> None:
    kind, text = reader.take()
    if kind in ("number", "string"):
        return
    if kind == "word" and text.upper() in _DEFAULT_WORDS:
        return
    if kind == "word" and text.upper() == "NOW" and reader.accept("(", ")"):
        return
    raise _Unrecognised
