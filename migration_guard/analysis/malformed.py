"""Line breaks and malformed input, for the splitter: fail closed on what the server would misread.

**Line breaks.** Line numbers count CR, LF and CRLF as one line break each, so
a finding points at the line an editor shows, whatever the file's line
endings. Comments follow the server: in PostgreSQL a ``--`` comment ends at CR
or LF (``scan.l``); in MySQL, MariaDB and SQLite a ``--`` or ``#`` comment runs
to the next LF only, so a bare CR does not end it (checked against MariaDB
10.11 and SQLite 3: ``SELECT 1 -- x\\rSELECT 2`` returns one row). Such a
comment silently hides whatever follows the CR on the same LF-line: the server
skips it, while editors and other tools show and may run it. That text is
reported as :func:`hidden_by_comment` findings.

**Malformed input.** A string, quoted identifier or comment that is still open
at the end of the input, a ``DELIMITER`` command without a delimiter, a
statement that the active custom ``DELIMITER`` never closes, or a
``BEGIN ... END`` body that is never closed, means the file is
not what its author thinks it is: the splitter reports each one as an
``unanalyzable`` error located where the construct opened (see
:data:`migration_guard.analysis.tokens.MALFORMED_INPUT`).
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Iterator
from typing import Final

from migration_guard.analysis.lexical import (
    MYSQL_LINE_COMMENT,
    POSTGRES_LINE_COMMENT,
    STANDARD_LINE_COMMENT,
)
from migration_guard.analysis.model import Operation, OpKind, Statement
from migration_guard.analysis.tokens import MALFORMED_INPUT, comment_spans, guess_table, tokenize

__all__ = [
    "BARE_DELIMITER",
    "BARE_DELIMITER_REASON",
    "HIDDEN_REASON",
    "OPEN_COMMENT_REASON",
    "count_breaks",
    "hidden_by_comment",
    "last_break",
    "left_open",
    "malformed_statement",
    "open_comment_in_trivia",
    "postgres_comment_end",
]

OPEN_COMMENT_REASON: Final = (
    "a /* comment opened here is never closed: the server reads the rest of the input "
    "as part of it; close it with */"
)
BARE_DELIMITER_REASON: Final = (
    "DELIMITER without a delimiter: the mysql client rejects it, so where the statements "
    "after it end is unknown; write e.g. DELIMITER ;"
)
HIDDEN_REASON: Final = (
    "text after a carriage return inside a -- or # comment: the server reads the comment "
    "up to the next line feed and skips this text, while editors and other tools show it "
    "and may run it; end the comment's line with a line feed (LF or CRLF)"
)


@functools.cache
def _closed_quotes() -> tuple[dict[str, re.Pattern[str]], dict[str, re.Pattern[str]]]:
    """A quoted piece at the end of the text is closed only when it matches these in full:
    (with backslash escapes, standard). Compiled on first use, as the patterns below:
    only malformed input needs them."""
    backslash = {
        "'": re.compile(r"'(?:[^'\\]|\\.|'')*'", re.DOTALL),
        '"': re.compile(r'"(?:[^"\\]|\\.|"")*"', re.DOTALL),
    }
    standard = {
        "'": re.compile(r"'(?:[^']|'')*'", re.DOTALL),
        '"': re.compile(r'"(?:[^"]|"")*"', re.DOTALL),
        "`": re.compile(r"`(?:[^`]|``)*`", re.DOTALL),
        "[": re.compile(r"\[[^\]]*\]", re.DOTALL),
    }
    return backslash, standard


_QUOTE_NAMES: Final = {
    "'": "string literal",
    '"': "double-quoted string or identifier",
    "`": "quoted identifier",
    "[": "bracketed identifier",
}
_CLOSERS: Final = {"[": "]"}
_DOLLAR_TAG: Final = re.compile(r"\$(?:[^\W\d]\w*)?\$")
_POSTGRES_COMMENT_MARK: Final = re.compile(r"/\*|\*/")
#: ``DELIMITER`` alone on its line: the mysql client rejects it, the state is unknown.
BARE_DELIMITER: Final = re.compile(r"DELIMITER[ \t]*(?=\r?\n|\Z)", re.IGNORECASE)
_TRIVIA_PIECE_SOURCES: Final = {
    "mysql": rf"\s+|{MYSQL_LINE_COMMENT}",
    "sqlite": rf"\s+|{STANDARD_LINE_COMMENT}",
    "postgresql": rf"\s+|{POSTGRES_LINE_COMMENT}",
}


@functools.cache
def _trivia_piece(family: str) -> re.Pattern[str]:
    return re.compile(_TRIVIA_PIECE_SOURCES[family])


_PREVIEW_LINE: Final = re.compile(r"[^\r\n]*")
_HIDDEN_TEXT: Final = re.compile(r"\r[^\S\n]*(?=[^\s])")


def count_breaks(text: str, start: int, end: int, has_cr: bool) -> int:
    """Line breaks (CR, LF or CRLF, one each) in ``text[start:end]``.

    ``start`` and ``end`` must not fall between the CR and the LF of a CRLF.
    """
    breaks = text.count("\n", start, end)
    if has_cr:
        breaks += text.count("\r", start, end) - text.count("\r\n", start, end)
    return breaks


def last_break(text: str, start: int, end: int, has_cr: bool) -> int:
    """Position of the last CR or LF in ``text[start:end]``, -1 if none."""
    newline = text.rfind("\n", start, end)
    return max(newline, text.rfind("\r", start, end)) if has_cr else newline


def breaks_before(text: str, end: int) -> tuple[int, int]:
    """(line breaks, position of the last one or -1) in ``text[:end]``, CR, LF and CRLF
    counting one each: what a line and column inside a statement are worked out from."""
    has_cr = "\r" in text
    return count_breaks(text, 0, end, has_cr), last_break(text, 0, end, has_cr)


def left_open(text: str, kind: str, start: int, backslash_escapes: bool) -> str | None:
    """Why the splitter's piece of ``kind`` at ``start``, which reaches the end of ``text``,
    is malformed; None when it is properly closed there.

    ``kind`` is the splitter's group name (quoted, dollar, nested_comment,
    block_comment); ``backslash_escapes`` tells whether a backslash escapes a
    quote in this string (MySQL, PostgreSQL ``E'...'``).
    """
    if kind == "quoted":
        opener = text[start]
        backslash, standard = _closed_quotes()
        closed = backslash if backslash_escapes else {}
        pattern = closed.get(opener) or standard.get(opener)
        if pattern is None or pattern.fullmatch(text, start) is not None:
            return None
        what = _QUOTE_NAMES.get(opener, "quoted text")
        return (
            f"a {what} opened here is never closed: the server reads the rest of the input "
            f"as part of it; close it with {_CLOSERS.get(opener, opener)}"
        )
    if kind == "dollar":
        tag = _DOLLAR_TAG.match(text, start)
        if tag is not None and text.find(tag.group(), tag.end()) >= 0:
            return None
        shown = tag.group() if tag is not None else "$$"
        return (
            f"a dollar-quoted string opened here is never closed: the server reads the rest "
            f"of the input as part of it; close it with {shown}"
        )
    if kind == "nested_comment":
        return OPEN_COMMENT_REASON if postgres_comment_end(text, start) < 0 else None
    if kind == "block_comment":
        return None if block_comment_closed(text, start, len(text)) else OPEN_COMMENT_REASON
    return None


def postgres_comment_end(text: str, start: int) -> int:
    """End of the (possibly nested) PostgreSQL block comment at ``start``; -1 if never closed."""
    depth = 0
    for mark in _POSTGRES_COMMENT_MARK.finditer(text, start):
        if mark.group() == "/*":
            depth += 1
        else:
            depth -= 1
            if depth == 0:
                return mark.end()
    return -1


def block_comment_closed(text: str, start: int, end: int) -> bool:
    """Whether the ``/* ... */`` comment ``text[start:end]`` is closed (``/*/`` is not)."""
    return end - start >= 4 and text.startswith("*/", end - 2)


def open_comment_in_trivia(text: str, pos: int, family: str) -> int:
    """Where a block comment opens that the whitespace and comments from ``pos`` never close.

    Returns -1 when every comment from ``pos`` to the end of the text is closed.
    """
    piece = _trivia_piece(family)
    length = len(text)
    while pos < length:
        match = piece.match(text, pos)
        if match is not None and match.end() > pos:
            pos = match.end()
            continue
        if not text.startswith("/*", pos):
            return -1
        if family == "postgresql":
            end = postgres_comment_end(text, pos)
            if end < 0:
                return pos
        else:
            close = text.find("*/", pos + 2)
            if close < 0:
                return pos
            end = close + 2
        pos = end
    return -1


def hidden_by_comment(text: str, family: str) -> Iterator[int]:
    """Where text starts that a line comment hides after a bare CR, for each such comment.

    Only MySQL/MariaDB and SQLite comments do (PostgreSQL ends them at the CR).
    The comments are found with the shared tokenizer's rules, so quotes and
    block comments are respected.
    """
    if family == "postgresql" or "\r" not in text:
        return
    for start, end in _line_comments(text, family):
        hidden = _HIDDEN_TEXT.search(text, start, end)
        if hidden is not None:
            yield hidden.end()


def _line_comments(text: str, family: str) -> Iterator[tuple[int, int]]:
    for start, end in comment_spans(text, "mysql" if family == "mysql" else "sqlite"):
        if not text.startswith("/*", start):
            yield start, end


def malformed_statement(
    text: str,
    pos: int,
    statement_start: int,
    *,
    where: tuple[str, str, int],
    reason: str,
    family: str,
) -> Statement:
    """An ``unanalyzable`` statement at ``pos`` (line/column computed here), for the analyzer.

    ``where`` is the file, unit and first line of ``text``; the table is guessed
    from the statement that starts at ``statement_start``.
    """
    file, unit, first_line = where
    has_cr = "\r" in text
    line = first_line + count_breaks(text, 0, pos, has_cr)
    column = pos - (last_break(text, 0, pos, has_cr) + 1) + 1
    shown = _PREVIEW_LINE.match(text, pos)
    sql = shown.group() if shown is not None else ""
    statement = Statement(sql=sql, file=file, line=line, column=column, unit=unit, end_line=line)
    token_family = "postgres" if family == "postgresql" else family
    context = text[statement_start : max(pos, statement_start) + 2000]
    table = guess_table(tokenize(context, token_family), token_family)
    operation = Operation(
        OpKind.UNANALYZABLE,
        statement,
        table=table,
        reason=f"{MALFORMED_INPUT} at line {line}, column {column}: {reason}",
    )
    return dataclasses.replace(statement, known_operations=(operation,))
