"""What one string sent to the server really runs, for the statement interceptor.

A string can hold more than one statement (``SELECT 1; DROP TABLE customers`` through a
multi-statement connection), a statement can run another one (``EXPLAIN ANALYZE
DELETE ...``, MariaDB's ``ANALYZE DELETE ...``) and MariaDB runs compound blocks
(``BEGIN NOT ATOMIC ... END``, ``IF ... THEN ... END IF``) outside stored programs.
:func:`runtime_statements` splits the string with the static check's one splitter and
peels these wrappers off, so that every statement that runs is judged by itself.

:func:`is_read_only` is the interceptor's fast path: it only answers True for a string
that is entirely one statement that changes neither data nor schema.
"""

from __future__ import annotations

import re
from dataclasses import replace

from migration_guard.analysis.model import Statement

__all__ = ["is_read_only", "runs", "runtime_statements"]

#: One statement that never changes data or schema (``EXPLAIN``/``ANALYZE`` are not
#: here: ``EXPLAIN ANALYZE`` runs its statement; ``BEGIN NOT ATOMIC`` starts a block).
_READ_ONLY = re.compile(
    r"\s*(?:SELECT|SHOW|PRAGMA|SET|BEGIN(?!\s+NOT\b)|COMMIT|ROLLBACK|SAVEPOINT|RELEASE|"
    r"DESCRIBE|DESC|USE|START\s+TRANSACTION|CHECKSUM)\b",
    re.IGNORECASE,
)
_FROM = re.compile(r"\bFROM\b", re.IGNORECASE)
_SELECT_INTO = re.compile(r"\bINTO\s+(?!@)\S", re.IGNORECASE)

_RUNNABLE = r"(?=\(|(?:SELECT|INSERT|UPDATE|DELETE|REPLACE|WITH|MERGE|VALUES)\b)"
#: Prefixes that run the statement after them: PostgreSQL/MySQL ``EXPLAIN ANALYZE``,
#: ``EXPLAIN (ANALYZE, ...)`` and MariaDB ``ANALYZE [FORMAT=JSON]``.
_RUNS_NEXT = re.compile(
    r"\s*(?:EXPLAIN\s+(?:ANALYZE\b(?:\s+VERBOSE\b)?(?:\s+FORMAT\s*=\s*\w+)?"
    r"|\([^)]*\bANALYZE\b[^)]*\))"
    r"|ANALYZE(?:\s+FORMAT\s*=\s*\w+)?\s+" + _RUNNABLE + r")\s*",
    re.IGNORECASE,
)
#: Compound-statement syntax in front of a statement inside a MariaDB block.
_CONTROL = re.compile(
    r"\s*(?:\w+\s*:\s*(?=(?:BEGIN|LOOP|WHILE|REPEAT|FOR)\b)"
    r"|BEGIN\s+NOT\s+ATOMIC\b"
    r"|BEGIN\s+(?!(?:WORK|TRANSACTION|DEFERRED|IMMEDIATE|EXCLUSIVE|ISOLATION|READ|NOT)\b)(?=\S)"
    r"|(?:ELSE)?IF\b.*?\bTHEN\b"
    r"|ELSE\b"
    r"|CASE\b.*?\bWHEN\b.*?\bTHEN\b"
    r"|WHEN\b.*?\bTHEN\b"
    r"|(?:WHILE|FOR)\b.*?\bDO\b"
    r"|LOOP\b|REPEAT\b)\s*",
    re.IGNORECASE | re.DOTALL,
)
#: Pieces of a block that are no statement of their own.
_NOT_A_STATEMENT = re.compile(
    r"\s*(?:END(?:\s+(?:IF|WHILE|LOOP|REPEAT|CASE|FOR|\w+))?|UNTIL\b.*|"
    r"DECLARE\b(?!.*\bHANDLER\b).*|ITERATE\s+\w+|LEAVE\s+\w+)\s*$",
    re.IGNORECASE | re.DOTALL,
)


def is_read_only(sql: str) -> bool:
    """Whether ``sql`` is one statement that changes neither data nor schema.

    A string with a ``;`` anywhere but at its end is never read-only here: it may hold
    a second statement (the slow path then splits it).
    """
    if ";" in sql.rstrip().rstrip(";"):
        return False
    if not _READ_ONLY.match(sql):
        return False
    return not _SELECT_INTO.search(_FROM.split(sql, 1)[0])


def runs(sql: str) -> str | None:
    """The statement ``sql`` runs once its wrappers are peeled off (``EXPLAIN ANALYZE``,
    compound-block syntax); None when it is block syntax only (``END IF``)."""
    text = sql
    while True:
        peeled = _peel(text)
        if peeled == text:
            break
        text = peeled
    if not text.strip() or _NOT_A_STATEMENT.match(text):
        return None
    return text


def _peel(text: str) -> str:
    for pattern in (_CONTROL, _RUNS_NEXT):
        found = pattern.match(text)
        if found is not None and found.end() > 0:
            return text[found.end() :]
    return text


def runtime_statements(sql: str, *, dialect: str, file: str, unit: str) -> list[Statement]:
    """Every statement ``sql`` runs, each peeled of its wrappers (see :func:`runs`)."""
    from migration_guard.analysis.splitter import split_sql

    try:
        pieces = list(split_sql(sql, file=file, dialect=dialect, unit=unit))
    except Exception:  # the splitter is fuzzed never to raise; keep the text whole if it does
        pieces = [Statement(sql=sql, file=file, line=1, unit=unit)]
    statements: list[Statement] = []
    for piece in pieces:
        text = runs(piece.sql)
        if text is None:
            continue
        statements.append(piece if text == piece.sql else replace(piece, sql=text))
    return statements
