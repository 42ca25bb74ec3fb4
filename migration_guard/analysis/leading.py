"""Which statements need :class:`~migration_guard.analysis.runtime.Runtime`: a cheap test.

Most statements of a migration are plain: they run as written. Only those that
set or read variables, run dynamic SQL, or create, call or open stored programs
need the runtime (:mod:`.runtime`), which this test keeps out of the process
until a statement needs it.
"""

from __future__ import annotations

import re

from migration_guard.analysis.lexical import might_name_program
from migration_guard.analysis.model import Statement

__all__ = ["handled_keyword", "is_plain"]

#: Whitespace and comments before the first word, each in exactly one way: a line
#: comment runs to its line's end and a block comment to its first ``*/``, so a
#: statement that matches nothing fails in linear time (``(?:\s+|--.*)*`` before a
#: word that then fails would try every way to split a run of blanks: exponential).
TRIVIA = r"(?:\s|--[^\n]*(?:\n|\Z)|\#[^\n]*(?:\n|\Z)|/\*(?:[^*]|\*(?!/))*\*/)*"
#: The statements that need more than the parser: only these are tokenized by the runtime.
_HANDLED = re.compile(
    TRIVIA
    + r"""
    (SET|SELECT|PREPARE|EXECUTE|CALL|BEGIN(?=\s+NOT\b)|DROP(?=\s+PROCEDURE\b)|CREATE)\b""",
    re.DOTALL | re.IGNORECASE | re.VERBOSE,
)
#: First characters after which ``_HANDLED`` cannot match: ASCII letters that start
#: none of its words (an ASCII letter matches only itself, in either case) and are
#: neither a blank nor the start of a comment.
_NEVER_FIRST = frozenset(
    letter
    for letter in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    if letter.upper() not in "SPECBD"
)
#: After ``CREATE``: only a stored program is handled.
_CREATES_PROGRAM = re.compile(
    r"\s.{0,400}?\b(?:PROCEDURE|FUNCTION|TRIGGER|EVENT)\b", re.DOTALL | re.IGNORECASE
)
_PROGRAM_KINDS = ("PROCEDURE", "FUNCTION", "TRIGGER", "EVENT")
#: How far after ``CREATE`` a program kind may start to count (see _CREATES_PROGRAM).
_PROGRAM_WINDOW = 1 + 400 + len("PROCEDURE") + 1


def handled_keyword(sql: str) -> str:
    """The leading keyword (upper-case) of a statement the runtime handles, or ``""``.

    ``CREATE`` counts only when a program kind follows within 400 characters;
    a plain test for the words comes first, so that the thousands of ``CREATE
    TABLE``/``INDEX`` statements of a migration never run the lazy scan.
    """
    if sql[:1] in _NEVER_FIRST:  # UPDATE, INSERT, ALTER, TRUNCATE...: no pattern needed
        return ""
    match = _HANDLED.match(sql)
    if match is None:
        return ""
    word = match.group(1).upper()
    if word == "CREATE":
        end = match.end(1)
        if not might_name_program(sql[end : end + _PROGRAM_WINDOW], _PROGRAM_KINDS):
            return ""
        if _CREATES_PROGRAM.match(sql, end) is None:
            return ""
    return word


def is_plain(statement: Statement) -> bool:
    """Whether ``statement`` runs as written: no variable, no comment that may hide a
    version comment, nothing the runtime handles (or its operations are known)."""
    if statement.known_operations:
        return True
    sql = statement.sql
    return not ("@" in sql or "/*" in sql or handled_keyword(sql))
