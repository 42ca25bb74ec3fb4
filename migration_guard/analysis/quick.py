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

from migration_guard.analysis.model import Operation, OpKind, Statement, TableRef

__all__ = ["quick_operations"]

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_TABLE = rf"(?:(?P<schema>{_NAME})\.)?(?P<table>{_NAME})"
# Strings without backslashes or doubled quotes read the same in every dialect.
_LITERAL = r"(?:-?\d+(?:\.\d+)?|'[^'\\]*')"
_VALUE = rf"(?:{_LITERAL}|NULL)"
_ROW = rf"\(\s*{_VALUE}(?:\s*,\s*{_VALUE})*\s*\)"
_NAMES = rf"\(\s*{_NAME}(?:\s*,\s*{_NAME})*\s*\)"
_COMPARE = r"(?:=|<>|!=|<=|>=|<|>)"
_KEYED_WHERE = rf"WHERE\s+(?P<key>{_NAME})\s*{_COMPARE}\s*{_LITERAL}"

_PATTERNS: dict[str, re.Pattern[str]] = {
    "INSERT": re.compile(
        rf"INSERT\s+INTO\s+{_TABLE}\s*(?:{_NAMES}\s*)?VALUES\s*{_ROW}(?:\s*,\s*{_ROW})*",
        re.I,
    ),
    "COMMENT": re.compile(rf"COMMENT\s+ON\s+TABLE\s+{_TABLE}\s+IS\s+'[^'\\]*'", re.I),
    "CREATE": re.compile(
        rf"CREATE\s+(?:UNIQUE\s+)?INDEX\s+(?:CONCURRENTLY\s+)?(?P<index>{_NAME})"
        rf"\s+ON\s+{_TABLE}\s*{_NAMES}",
        re.I,
    ),
    "DROP": re.compile(rf"DROP\s+INDEX\s+(?:IF\s+EXISTS\s+)?(?P<index>{_NAME})", re.I),
    "UPDATE": re.compile(
        rf"UPDATE\s+{_TABLE}\s+SET\s+(?P<set>{_NAME})\s*=\s*{_LITERAL}\s+{_KEYED_WHERE}", re.I
    ),
    "DELETE": re.compile(rf"DELETE\s+FROM\s+{_TABLE}\s+{_KEYED_WHERE}", re.I),
    "ALTER": re.compile(
        rf"ALTER\s+TABLE\s+{_TABLE}\s+RENAME\s+COLUMN\s+(?P<old>{_NAME})\s+TO\s+(?P<new>{_NAME})",
        re.I,
    ),
}
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
    pattern = _PATTERNS.get(first.group(1).upper())
    if pattern is None:
        return None
    start = first.start(1)
    match = pattern.match(sql, start)
    if match is None or _TRAILING.fullmatch(sql, match.end()) is None:
        return None
    groups = match.groupdict()
    if any(value and value.upper() in _RESERVED for value in groups.values()):
        return None
    name = groups.get("table")
    table = TableRef(name=name, schema=groups.get("schema")) if name else None
    if pattern is _PATTERNS["INSERT"]:
        return [Operation(OpKind.INSERT, statement, table)]
    if pattern is _PATTERNS["COMMENT"] or pattern is _PATTERNS["CREATE"]:
        return [Operation(OpKind.OTHER_DDL, statement, table)]
    if pattern is _PATTERNS["DROP"]:
        return [Operation(OpKind.OTHER_DDL, statement)]
    if pattern is _PATTERNS["UPDATE"]:
        return [Operation(OpKind.UPDATE, statement, table, has_where=True)]
    if pattern is _PATTERNS["DELETE"]:
        return [Operation(OpKind.DELETE, statement, table, has_where=True)]
    return [
        Operation(
            OpKind.RENAME_COLUMN, statement, table, column=groups["old"], new_name=groups["new"]
        )
    ]
