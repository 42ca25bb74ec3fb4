"""What the text before sqlglot says: version comments and the leading word.

The leading word decides early whether a statement is a no-op, procedural
code, dynamic SQL or something sqlglot is known to misread.
"""

from __future__ import annotations

import re

_VERSION_SCAN = re.compile(
    r"""(?P<skip>'(?:[^'\\]|\\.)*(?:'|\Z)|"(?:[^"\\]|\\.)*(?:"|\Z)|`[^`]*(?:`|\Z)|(?:--|\#)[^\n]*)
    |(?P<open>/\*M?!\d*)
    |(?P<close>\*/)
    |(?P<comment>/\*.*?(?:\*/|\Z))""",
    re.S | re.X,
)


def unwrap_version_comments(sql: str) -> str:
    """Replace MySQL ``/*!NNNNN ... */`` and ``/*M!NNNNNN ... */`` by their content.

    The server executes what these comments hold, so the check must see it.
    Strings, quoted identifiers and ordinary comments are left alone.
    """
    if "/*!" not in sql and "/*M!" not in sql:
        return sql
    parts: list[str] = []
    position = 0
    depth = 0
    for match in _VERSION_SCAN.finditer(sql):
        kind = match.lastgroup
        if kind == "open":
            parts.append(sql[position : match.start()])
            parts.append(" ")
            position = match.end()
            depth += 1
        elif kind == "close" and depth:
            parts.append(sql[position : match.start()])
            parts.append(" ")
            position = match.end()
            depth -= 1
    parts.append(sql[position:])
    return "".join(parts)


LEADING_JUNK = re.compile(r"(?:\s+|--[^\r\n]*|\#[^\r\n]*|/\*.*?(?:\*/|\Z))*", re.S)
FIRST_WORD = re.compile(r"[A-Za-z_]+")
DML_MODIFIERS = re.compile(r"(?:\s+(?:LOW_PRIORITY|QUICK|IGNORE)\b)+", re.I)
ROUTINE = re.compile(
    r"""CREATE\s+(?:OR\s+REPLACE\s+)?
    (?:DEFINER\s*=\s*(?:`[^`]*`|'[^']*'|"[^"]*"|[^\s@`'"]+)
       (?:\s*@\s*(?:`[^`]*`|'[^']*'|"[^"]*"|[^\s`'"]+))?\s+)?
    (?:(?:AGGREGATE|CONSTRAINT)\s+)?
    (?:TRIGGER|PROCEDURE|FUNCTION|EVENT)\b""",
    re.I | re.X,
)

#: Statements that touch no table's data (session state, transactions, admin).
NO_OP_WORDS = frozenset(
    {
        "SET",
        "USE",
        "START",
        "COMMIT",
        "ROLLBACK",
        "SAVEPOINT",
        "RELEASE",
        "END",
        "ABORT",
        "FLUSH",
        "SHOW",
        "DESCRIBE",
        "DESC",
        "EXPLAIN",
        "LOCK",
        "UNLOCK",
        "XA",
        "DEALLOCATE",
        "GRANT",
        "REVOKE",
        "KILL",
        "HANDLER",
        "CHECKSUM",
        "CHECK",
        "PRAGMA",
        "VACUUM",
        "LISTEN",
        "NOTIFY",
        "UNLISTEN",
        "RESET",
        "DISCARD",
        "CHECKPOINT",
        "REINDEX",
        "DECLARE",
        "FETCH",
        "CLOSE",
        "MOVE",
        "DELIMITER",
        "SOURCE",
        "INSTALL",
        "UNINSTALL",
        "HELP",
        "CACHE",
        "PURGE",
        "STOP",
        "OPTIMIZE",
        "REPAIR",
        "ANALYZE",
        "CLUSTER",
        "REFRESH",
        "SECURITY",
        "ATTACH",
        "DETACH",
        "SHUTDOWN",
        "BINLOG",
    }
)
BEGIN_TRANSACTION_WORDS = frozenset(
    ["", "WORK", "TRANSACTION", "DEFERRED", "IMMEDIATE", "EXCLUSIVE", "ISOLATION", "READ"]
)


def skip_space(sql: str, position: int) -> int:
    """The position after the whitespace and comments that start at ``position``."""
    match = LEADING_JUNK.match(sql, position)
    return match.end() if match else position
