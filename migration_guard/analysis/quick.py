"""Recognise the most common statement shapes without sqlglot.

Most of a large migration is ``INSERT ... VALUES``, ``CREATE INDEX``,
``COMMENT ON TABLE``, keyed ``UPDATE``/``DELETE`` and column renames, and
where findings are many, plain ``DROP TABLE``, ``TRUNCATE`` and ``DELETE``
without ``WHERE`` of one table. Parsing
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
from collections.abc import Callable

from migration_guard.analysis.coltypes import (
    SPELLINGS_BY_FIRST_WORD,
    TYPE_SPELLINGS,
    column_type,
)
from migration_guard.analysis.families import family_traits, sqlglot_family
from migration_guard.analysis.model import (
    ColumnDef,
    ColumnType,
    Operation,
    OpKind,
    Statement,
    TableRef,
    new_operation,
)
from migration_guard.analysis.tokens import plain_tokens

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

#: Compiled on first use: a short check should not pay for patterns it never needs.
#: ASCII matching (``_I``): case-insensitive matching of the whole Unicode range makes
#: Python's regex compiler expand every character class, several times the cost of a
#: check's other imports; and a statement with non-ASCII blanks, digits or letters
#: that only fold to ASCII ones (the Kelvin sign) then matches no pattern here, so it
#: goes to the full parser, the safe way.
_I = re.IGNORECASE | re.ASCII
_PATTERN_SOURCES: dict[str, tuple[str, int]] = {
    "INSERT": (
        rf"INSERT\s+INTO\s+{_TABLE}\s*(?:{_NAMES}\s*)?VALUES\s*{_ROW}(?:\s*,\s*{_ROW})*"
        rf"(?:\s+RETURNING\s+{_COLUMN}(?:\s*,\s*{_COLUMN})*)?",
        _I,
    ),
    "COMMENT": (rf"COMMENT\s+ON\s+TABLE\s+{_TABLE}\s+IS\s+'[^'\\]*'", _I),
    "CREATE": (
        rf"CREATE\s+(?:UNIQUE\s+)?INDEX\s+(?:CONCURRENTLY\s+)?(?P<index>{_NAME})"
        rf"\s+ON\s+{_TABLE}\s*{_NAMES}",
        _I,
    ),
    "DROP": (
        rf"DROP\s+(?:INDEX\s+(?:IF\s+EXISTS\s+)?(?P<index>{_NAME})"
        rf"|TABLE\s+(?P<if_exists>IF\s+EXISTS\s+)?{_TABLE}(?:\s+(?:CASCADE|RESTRICT))?)",
        _I,
    ),
    "TRUNCATE": (rf"TRUNCATE\s+(?:TABLE\s+)?{_TABLE}", _I),
    "UPDATE": (
        rf"UPDATE\s+{_TABLE}\s+SET\s+(?P<set>{_NAME})\s*=\s*{_LITERAL}\s+{_KEYED_WHERE}",
        _I,
    ),
    "DELETE": (rf"DELETE\s+FROM\s+{_TABLE}(?:\s+{_KEYED_WHERE})?", _I),
    "ALTER": (
        rf"ALTER\s+TABLE\s+{_TABLE}\s+RENAME\s+COLUMN\s+(?P<old>{_NAME})\s+TO\s+(?P<new>{_NAME})",
        _I,
    ),
}
_compiled_patterns: dict[str, re.Pattern[str]] = {}


def _pattern(word: str) -> re.Pattern[str] | None:
    pattern = _compiled_patterns.get(word)
    if pattern is None and word in _PATTERN_SOURCES:
        pattern = re.compile(*_PATTERN_SOURCES[word])
        _compiled_patterns[word] = pattern
    return pattern


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
#: sqlglot family per dialect name, as asked for (a check asks thousands of times).
_FAMILIES: dict[str, str | None] = {}


def quick_operations(statement: Statement, dialect: str) -> list[Operation] | None:
    """The operations of ``statement`` when it has one of the harmless shapes, else ``None``.

    ``None`` means "not recognised here", never "harmless": the caller must
    then run the full parser.
    """
    family = _FAMILIES.get(dialect)
    if family is None and dialect not in _FAMILIES:
        family = _FAMILIES[dialect] = sqlglot_family(dialect)
    if statement.known_operations or family is None:
        return None
    sql = statement.sql
    first = _FIRST_WORD.match(sql)
    if first is None:
        return None
    word = first.group(1).upper()
    pattern = _compiled_patterns.get(word) or _pattern(word)
    if pattern is None:
        return None
    match = pattern.match(sql, first.start(1))
    # A statement from the splitter ends where its pattern does (no blank, no ``;``).
    if match is None or (match.end() != len(sql) and _TRAILING.fullmatch(sql, match.end()) is None):
        if word in ("CREATE", "ALTER"):
            return _column_statement(statement, family, first)
        return None
    # Every capturing group is named: groups() holds the names' values, without a dict.
    for value in match.groups():  # a loop, not any(): this runs for most statements
        if value and value.upper() in _RESERVED:
            return None
    name = match["table"]  # every pattern has the table groups
    table = TableRef(name, match["schema"]) if name else None
    return _OPERATIONS[word](statement, table, match)


_Groups = re.Match[str]
#: Leading word -> the operations of a statement matching its pattern.
_OPERATIONS: dict[str, Callable[[Statement, TableRef | None, _Groups], list[Operation]]] = {
    "INSERT": lambda statement, table, groups: [new_operation(OpKind.INSERT, statement, table)],
    "COMMENT": lambda statement, table, groups: [new_operation(OpKind.OTHER_DDL, statement, table)],
    "CREATE": lambda statement, table, groups: [new_operation(OpKind.OTHER_DDL, statement, table)],
    "DROP": lambda statement, table, groups: [
        new_operation(
            OpKind.DROP_TABLE, statement, table, {"if_exists": groups["if_exists"] is not None}
        )
        if table is not None
        else new_operation(OpKind.OTHER_DDL, statement)
    ],
    "TRUNCATE": lambda statement, table, groups: [
        new_operation(OpKind.TRUNCATE_TABLE, statement, table)
    ],
    "UPDATE": lambda statement, table, groups: [
        new_operation(OpKind.UPDATE, statement, table, {"has_where": True})
    ],
    "DELETE": lambda statement, table, groups: [
        new_operation(OpKind.DELETE, statement, table, {"has_where": groups["key"] is not None})
    ],
    "ALTER": lambda statement, table, groups: [
        new_operation(
            OpKind.RENAME_COLUMN,
            statement,
            table,
            {"column": groups["old"], "new_name": groups["new"]},
        )
    ],
}


# --------------------------------------------------------------------------- column definitions
#
# ``CREATE TABLE t (c type ...)``, ``ALTER TABLE t ADD [COLUMN] c type ...`` and
# ``ALTER TABLE t ALTER [COLUMN] c [SET DATA] TYPE type``: the rules need the
# column types exactly as sqlglot normalises them, so the spellings come from
# ``coltypes.TYPE_SPELLINGS``, read off sqlglot for each dialect family
# (tests/unit/test_quick.py checks each one against the full parser). A
# spelling, argument count or constraint that is not listed there sends the
# statement to the full parser.

#: Words that start something other than a column definition, or that sqlglot
#: reads specially right after a column name (on top of ``_RESERVED``).
_NOT_A_COLUMN_WORDS = """
    FULLTEXT SPATIAL PERIOD EXCLUDE VECTOR LIKE INDEX KEY FIRST AFTER AUTO_INCREMENT
    AUTOINCREMENT COMMENT COLLATE GENERATED IDENTITY
    """
_NOT_A_COLUMN = _RESERVED | frozenset(_NOT_A_COLUMN_WORDS.split())


class _Unrecognised(Exception):
    """The statement leaves the recognised shapes: use the full parser."""


class _Reader:
    """A cursor over the tokens of one statement.

    ``keys`` holds what keywords are compared with: the upper-cased text of a
    word, the character of a punctuation mark, and an empty string otherwise;
    one more empty key after the last token lets a look past the end compare
    without a bounds test (no keyword is empty).
    """

    __slots__ = ("end", "index", "keys", "kinds", "texts")

    def __init__(self, kinds: list[str], texts: list[str], keys: list[str]) -> None:
        self.kinds = kinds
        self.texts = texts
        self.end = len(kinds)
        keys.append("")
        self.keys = keys
        self.index = 0

    def word(self) -> str:
        return self.keys[self.index]

    def take(self) -> tuple[str, str]:
        index = self.index
        if index >= self.end:
            raise _Unrecognised
        self.index = index + 1
        return self.kinds[index], self.texts[index]

    def accept(self, *words: str) -> bool:
        """Consume ``words`` (upper-case keywords or punctuation) if they come next."""
        index = self.index
        keys = self.keys
        if len(words) == 1:  # the common case (a comma, a parenthesis), without a slice
            if keys[index] == words[0]:
                self.index = index + 1
                return True
            return False
        end = index + len(words)
        if tuple(keys[index:end]) != words:
            return False
        self.index = end
        return True

    def expect(self, *words: str) -> None:
        if not self.accept(*words):
            raise _Unrecognised

    def name(self) -> str:
        index = self.index
        if index >= self.end:
            raise _Unrecognised
        self.index = index + 1
        kind = self.kinds[index]
        if kind == "quoted" or (kind == "word" and self.keys[index] not in _NOT_A_COLUMN):
            return self.texts[index]
        raise _Unrecognised

    def table(self) -> TableRef:
        first = self.name()
        if self.accept("."):
            return TableRef(self.name(), first)
        return TableRef(first)

    def names(self) -> None:
        """A parenthesised list of names."""
        self.expect("(")
        self.name()
        while self.accept(","):
            self.name()
        self.expect(")")

    def at_end(self) -> bool:
        return self.index == self.end


def _reader(sql: str, start: int, family: str) -> _Reader | None:
    """Read ``sql`` from ``start``; None if anything is not a plain token.

    Reads through the tokenizer's fast path for plain tokens
    (:func:`~migration_guard.analysis.tokens.plain_tokens`), which keeps only
    what every family reads alike: a comment, a variable, an operator, an
    escape or a quoted name with odd characters sends the statement to the
    full parser.
    """
    stop = len(sql.rstrip())
    if sql[stop - 1 : stop] == ";":
        stop = len(sql[: stop - 1].rstrip())
    tokens = plain_tokens(sql[start:stop], family)
    return None if tokens is None else _Reader(*tokens)


def _column_statement(
    statement: Statement, family: str, first: re.Match[str]
) -> list[Operation] | None:
    """``CREATE TABLE``, ``ADD COLUMN`` and ``ALTER COLUMN ... TYPE`` of plain columns."""
    reader = _reader(statement.sql, first.end(1), family)
    if reader is None:
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
    keys = reader.keys
    while True:
        key = keys[reader.index]
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
    return [new_operation(OpKind.CREATE_TABLE, statement, table, {"columns": tuple(columns)})]


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
            new_operation(
                OpKind.ALTER_COLUMN_TYPE, statement, table, {"column": column, "new_type": new_type}
            )
        ]
    operations: list[Operation] = []
    while True:
        reader.expect("ADD")
        reader.accept("COLUMN")
        added = _column(reader, family)
        operations.append(
            new_operation(
                OpKind.ADD_COLUMN,
                statement,
                table,
                {"column": added.name, "new_type": added.type, "columns": (added,)},
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
    keys, index = reader.keys, reader.index
    for words in SPELLINGS_BY_FIRST_WORD.get(keys[index], ()):
        if len(words) == 1 or tuple(keys[index : index + len(words)]) == words:
            spelling = TYPE_SPELLINGS[words]
            reader.index = index = index + len(words)
            break
    name = spelling.names[family] if spelling is not None else None
    if spelling is None or name is None:
        raise _Unrecognised
    digits: list[str] = []
    if keys[index] == "(":
        reader.index = index + 1
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
    unsigned = (
        spelling.unsigned and family_traits(family).has_unsigned_types and reader.accept("UNSIGNED")
    )
    key: tuple[str | bool, ...] = (name, *digits, unsigned)
    known = _TYPES.get(key)
    if known is None:
        known = column_type(name, digits, [int(value) for value in digits], unsigned=unsigned)
        if len(_TYPES) < _TYPES_KEPT:
            _TYPES[key] = known
    return known


#: Column types read so far, by (name, parameters as written, unsigned): a type is an
#: immutable value, and a migration spells the same few types over and over.
_TYPES: dict[tuple[str | bool, ...], ColumnType] = {}
_TYPES_KEPT = 4096


_DEFAULT_WORDS = frozenset(["NULL", "TRUE", "FALSE", "CURRENT_TIMESTAMP", "CURRENT_DATE"])


def _column(reader: _Reader, family: str) -> ColumnDef:
    traits = family_traits(family)
    name = reader.name()
    declared_type = _type(reader, family)
    nullable: bool | None = None
    keys = reader.keys
    while True:
        key = keys[reader.index]
        if key == "," or key == ")":  # the common end of a column, before the tests below
            return ColumnDef(name, declared_type, nullable)
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
        elif key and key == traits.auto_increment:
            reader.index += 1
        elif key == "COMMENT" and traits.has_column_comments:
            reader.index += 1
            if reader.take()[0] != "string":
                raise _Unrecognised
        else:
            return ColumnDef(name, declared_type, nullable)


def _default(reader: _Reader) -> None:
    if reader.accept("-"):
        if reader.take()[0] != "number":
            raise _Unrecognised
        return
    kind, text = reader.take()
    if kind in ("number", "string"):
        return
    if kind == "word" and text.upper() in _DEFAULT_WORDS:
        return
    if kind == "word" and text.upper() == "NOW" and reader.accept("(", ")"):
        return
    raise _Unrecognised
