"""The lexical pieces of SQL that the splitter scans for, per dialect family.

Quoted forms and comments as regular-expression sources (each ends at its
closing character or, when unterminated, at the end of the text), MySQL
version comments, and the header of a ``CREATE TRIGGER/PROCEDURE/FUNCTION/
EVENT`` whose body is a ``BEGIN ... END`` block.
"""

from __future__ import annotations

import functools
import re
from typing import Final

__all__ = [
    "holds_no_sql",
    "is_escape_string",
    "is_version_comment",
    "might_name_program",
    "needs_full_scan",
    "opens_compound",
    "strip_version_comments",
]

# --- lexical pieces -----------------------------------------------------------------------
# Each quoted form ends at its closing quote or, when unterminated, at the end of the text.
MYSQL_SINGLE: Final = r"'(?:[^'\\]+|\\.?|'')*'?"
MYSQL_DOUBLE: Final = r'"(?:[^"\\]+|\\.?|"")*"?'
STANDARD_SINGLE: Final = r"'(?:[^']+|'')*'?"
STANDARD_DOUBLE: Final = r'"(?:[^"]+|"")*"?'
BACKTICK: Final = r"`(?:[^`]+|``)*`?"
SQLITE_BRACKET: Final = r"\[[^\]]*\]?"
# PostgreSQL E'...' strings (backslash escapes), recognised from their quote by
# is_escape_string: only when the E is not the tail of a longer word.
POSTGRES_ESCAPE_BODY: Final = re.compile(r"'(?:[^'\\]+|\\.?|'')*'?", re.DOTALL)
_WORD_CHARACTER: Final = re.compile(r"[\w$]")
# ``$$`` or ``$tag$``; ``$1`` is a parameter and ``a$b`` an identifier, not a quote.
POSTGRES_DOLLAR: Final = r"(?<![\w$])\$(?:[^\W\d]\w*)?\$"

# MySQL wants a blank or control character (or the end) after ``--``.
MYSQL_LINE_COMMENT: Final = r"(?:--(?=[\x00-\x20]|\Z)|\#)[^\n]*"
STANDARD_LINE_COMMENT: Final = r"--[^\n]*"
POSTGRES_LINE_COMMENT: Final = r"--[^\r\n]*"
BLOCK_COMMENT: Final = r"/\*.*?(?:\*/|\Z)"
MYSQL_PLAIN_BLOCK_COMMENT: Final = r"/\*(?!M?!).*?(?:\*/|\Z)"

#: Blanks, then a statement on one line up to its ``;`` that holds none of the
#: characters that may start a quote, a comment or a delimiter in any family, except
#: single-quoted strings without a backslash: the common case, which the full scan
#: (the splitter's ``_skip_trivia`` and ``_Splitter._statement``) would read the same way (such a
#: string ends at its next quote in every family, and ``''`` inside it reads as two
#: strings that end where the one does). The statement starts with neither a blank
#: nor a ``-``, so the blanks before it can be read in one way only; the strings
#: unroll the loop, so a line that fails to match costs linear time.
_ONE_LINE_PLAIN: Final = r"[^'\"`#$\[/;\-\r\n]*"
SIMPLE_STATEMENT: Final = re.compile(
    rf"\s*([^\s'\"`#$\[/;\-]{_ONE_LINE_PLAIN}(?:'[^'\\\r\n]*'{_ONE_LINE_PLAIN})*);"
)

# --- stored-program headers ---------------------------------------------------------------
_HEADER_WINDOW: Final = 600


#: The patterns below are compiled on first use: most checks never need them, and
#: compiling costs more than a short check's other work.
@functools.cache
def _header_patterns() -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str]]:
    """(comments, version markers, compound header) of a stored-program header."""
    account = r"""(?:`(?:[^`]|``)*`|'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.|"")*"|[\w.$%-]+)"""
    return (
        re.compile(rf"{MYSQL_PLAIN_BLOCK_COMMENT}|--[^\r\n]*|\#[^\r\n]*", re.DOTALL),
        re.compile(r"/\*M?!\d{0,6}|\*/"),
        re.compile(
            rf"""
            \s*CREATE\s+
            (?:OR\s+REPLACE\s+)?
            (?:DEFINER\s*=\s*(?:CURRENT_USER(?:\s*\(\s*\))?|{account}(?:\s*@\s*{account})?)\s+)?
            (?:SQL\s+SECURITY\s+\w+\s+)?
            (?:(?:AGGREGATE|TEMP|TEMPORARY|CONSTRAINT)\s+)?
            (?:TRIGGER|PROCEDURE|FUNCTION|EVENT|PACKAGE)(?![\w$])
            """,
            re.IGNORECASE | re.VERBOSE | re.DOTALL,
        ),
    )


_HEADER_KINDS: Final = ("TRIGGER", "PROCEDURE", "FUNCTION", "EVENT", "PACKAGE")


def might_name_program(text: str, kinds: tuple[str, ...]) -> bool:
    """False only when none of ``kinds`` (upper-case words) can be read in ``text``
    case-insensitively: a cheap test before a pattern that needs one of them.

    Outside ASCII, case folding has surprises (the Kelvin sign reads as K), so
    such text always may.
    """
    if not text.isascii():
        return True
    upper = text.upper()
    return any(kind in upper for kind in kinds)


# --- version comments ---------------------------------------------------------------------
@functools.cache
def _version_comment_scan() -> re.Pattern[str]:
    return re.compile(
        rf"{MYSQL_SINGLE}|{MYSQL_DOUBLE}|{BACKTICK}"
        rf"|/\*(M?!)\d{{0,6}}(.*?)(?:\*/|\Z)|{BLOCK_COMMENT}|{MYSQL_LINE_COMMENT}",
        re.DOTALL,
    )


@functools.cache
def _only_trivia() -> re.Pattern[str]:
    return re.compile(rf"(?:\s+|{MYSQL_LINE_COMMENT}|{BLOCK_COMMENT})*", re.DOTALL)


def strip_version_comments(sql: str) -> str:
    """Unwrap MySQL/MariaDB version comments so their SQL can be parsed.

    ``/*!40101 SET NAMES utf8 */`` becomes `` SET NAMES utf8 `` and
    ``/*M!100100 X */`` becomes `` X ``; ``/*!*/`` becomes a blank. Strings,
    quoted identifiers and ordinary comments are left exactly as they are.
    """
    if "/*!" not in sql and "/*M!" not in sql:
        return sql

    def unwrap(match: re.Match[str]) -> str:
        if match.group(1) is None:
            return match.group(0)
        return f" {match.group(2).strip()} "

    return _version_comment_scan().sub(unwrap, sql)


#: ``CREATE`` and the word after it, when that word is plain ASCII letters.
_CREATE_WORD: Final = re.compile(r"CREATE(?:\s+([A-Za-z]+)(?![\w$]))?", re.IGNORECASE)
#: The words that may follow ``CREATE`` in a stored program's header.
_HEADER_WORDS: Final = frozenset(
    ("OR", "DEFINER", "SQL", "AGGREGATE", "TEMP", "TEMPORARY", "CONSTRAINT", *_HEADER_KINDS)
)


def opens_compound(text: str, start: int) -> bool:
    """Whether the statement at ``start`` creates a stored program with a block body."""
    first = text[start]
    if first not in "cC/":
        return False
    if first != "/":
        # Without a comment before it, a header starts with CREATE and one of its
        # words, exactly as written (removing comments only turns them into blanks):
        # COMMENT ON, CREATE TABLE or CREATE INDEX never needs the window below.
        create = _CREATE_WORD.match(text, start)
        if create is None:
            return False
        word = create.group(1)
        if word is not None and word.isascii() and word.upper() not in _HEADER_WORDS:
            return False
    head = text[start : start + _HEADER_WINDOW]
    if not might_name_program(head, _HEADER_KINDS):
        return False  # the common CREATE TABLE / INDEX / COMMENT, without the regexes
    comments, version_markers, compound_header = _header_patterns()
    head = version_markers.sub(" ", comments.sub(" ", head))
    return compound_header.match(head) is not None


def needs_full_scan(text: str, start: int, *, mysql: bool) -> bool:
    """Whether the statement at ``start``, though :data:`SIMPLE_STATEMENT` matches it,
    may be a MySQL ``DELIMITER`` command or the header of a stored program's body."""
    first = text[start]
    if first in "dD":
        return mysql and text[start : start + 9].upper() == "DELIMITER"
    return first in "cC" and opens_compound(text, start)


def holds_no_sql(sql: str) -> bool:
    """Whether a statement is made of empty version comments (``/*!*/``) only."""
    unwrapped = strip_version_comments(sql)
    trivia = _only_trivia().match(unwrapped)
    return trivia is not None and trivia.end() == len(unwrapped)


def is_escape_string(text: str, quote: int) -> bool:
    """Whether the quote at ``quote`` opens a PostgreSQL ``E'...'`` string."""
    return (
        text[quote] == "'"
        and quote > 0
        and text[quote - 1] in "eE"
        and (quote == 1 or _WORD_CHARACTER.match(text, quote - 2) is None)
    )


def is_version_comment(text: str, pos: int) -> bool:
    """Whether the block comment at ``pos`` is a MySQL/MariaDB version comment."""
    return text.startswith("/*!", pos) or text.startswith("/*M!", pos)
