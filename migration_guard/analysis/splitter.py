"""Split SQL text into statements that remember where they were written.

The splitter is a single forward pass. A compiled regular expression skips
ordinary text at C speed and stops at the next *significant* piece of text (a
quote, a comment, a delimiter, and inside stored-program bodies a handful of
block keywords); Python code only runs for those pieces. Strings, quoted
identifiers and comments are consumed whole, so a delimiter inside them never
splits. Every pattern either consumes up to its closing character or up to the
end of the input, so no input makes the scan backtrack: the cost is linear in
the size of the text. The common statement (one line, no comment, no quote
but single-quoted strings without a backslash) is read in one match that ends
it where the scan would (``lexical.SIMPLE_STATEMENT``). What the input leaves
open at its end (a quote, a comment, a body, a statement under a custom
``DELIMITER``) ends the final statement and is reported as an ``unanalyzable``
statement where it opened (:mod:`.malformed`), as is text that a comment hides
after a bare CR.

What the splitter understands:

* ``;`` and the MySQL client's ``DELIMITER`` command (mysql/mariadb only, at the
  start of a line, case-insensitive);
* ``BEGIN ... END`` bodies of ``CREATE TRIGGER/PROCEDURE/FUNCTION/EVENT`` written
  without ``DELIMITER`` (SQLite triggers, MySQL bodies sent through a driver,
  PostgreSQL ``BEGIN ATOMIC``), including nested ``CASE``, ``IF``, ``LOOP``,
  ``WHILE`` and ``REPEAT`` blocks;
* quoting rules per dialect: backslash escapes in MySQL strings, ``E'...'`` and
  ``$tag$...$tag$`` in PostgreSQL, backticks, SQLite ``[brackets]``;
* comments per dialect: ``-- `` (MySQL needs a blank after the dashes), ``#``
  (MySQL), ``/* */`` (nested in PostgreSQL); a ``--`` comment ends at CR or LF
  in PostgreSQL, at LF only in MySQL/MariaDB and SQLite, as in their servers;
* line numbers that count CR, LF and CRLF as one line break each. MySQL version comments
  (``/*!40101 ... */``, ``/*M!100100 ... */``) hold SQL, so they count as part of
  the statement; :func:`strip_version_comments` unwraps them for the parser.
"""

from __future__ import annotations

import re
from functools import cache, lru_cache
from typing import Final

from migration_guard.analysis.lexical import (
    BACKTICK,
    BLOCK_COMMENT,
    MYSQL_DOUBLE,
    MYSQL_LINE_COMMENT,
    MYSQL_PLAIN_BLOCK_COMMENT,
    MYSQL_SINGLE,
    POSTGRES_DOLLAR,
    POSTGRES_ESCAPE_BODY,
    POSTGRES_LINE_COMMENT,
    SIMPLE_STATEMENT,
    SQLITE_BRACKET,
    STANDARD_DOUBLE,
    STANDARD_LINE_COMMENT,
    STANDARD_SINGLE,
    holds_no_sql,
    is_escape_string,
    is_version_comment,
    needs_full_scan,
    opens_compound,
    strip_version_comments,
)
from migration_guard.analysis.malformed import (
    BARE_DELIMITER,
    BARE_DELIMITER_REASON,
    HIDDEN_REASON,
    OPEN_COMMENT_REASON,
    count_breaks,
    hidden_by_comment,
    last_break,
    left_open,
    malformed_statement,
    open_comment_in_trivia,
    postgres_comment_end,
)
from migration_guard.analysis.model import Statement
from migration_guard.config import DIALECT_ALIASES, DIALECTS, Dialect
from migration_guard.errors import UnknownNameError

__all__ = ["split_sql", "strip_version_comments"]

# Lexical families: MariaDB lexes like MySQL for everything the splitter cares about.
_MYSQL: Final = "mysql"
_POSTGRES: Final = "postgresql"
_SQLITE: Final = "sqlite"


# Words that open, close or separate blocks in stored-program bodies.
_BLOCK_WORDS: Final = "BEGIN|END|CASE|IF|LOOP|WHILE|REPEAT|THEN|ELSE|DO|ROW"

_FLAGS: Final = re.IGNORECASE | re.DOTALL

_SKIP_TRIVIA_SOURCES: Final = {
    _MYSQL: rf"(?:\s+|{MYSQL_LINE_COMMENT}|{MYSQL_PLAIN_BLOCK_COMMENT})*",
    _SQLITE: rf"(?:\s+|{STANDARD_LINE_COMMENT}|{BLOCK_COMMENT})*",
    # Block comments nest in PostgreSQL; _skip_trivia handles them.
    _POSTGRES: rf"(?:\s+|{POSTGRES_LINE_COMMENT})*",
}


@cache
def _skip_trivia_pattern(family: str) -> re.Pattern[str]:
    """Whitespace and comments between statements; compiled for the families met only."""
    return re.compile(_SKIP_TRIVIA_SOURCES[family], _FLAGS)


_NON_SPACE: Final = re.compile(r"\S")
_DELIMITER_LINE: Final = r"\n[ \t]*DELIMITER[ \t]+\S"
_DELIMITER_COMMAND: Final = re.compile(r"DELIMITER[ \t]+(\S+)[^\n]*", re.IGNORECASE)
_END_FOLLOWER: Final = re.compile(r"\s+(IF|CASE|LOOP|WHILE|REPEAT)(?![\w$])", re.IGNORECASE)
_LABEL_WORD: Final = re.compile(r"(?:[^\W\d][\w$]*|`(?:[^`]|``)*`)")
_LABEL_DEFINITION: Final = re.compile(r"(?:[^\W\d][\w$]*|`(?:[^`]|``)*`)[ \t]*:(?!=)")
_TRANSACTION_BEGIN: Final = re.compile(
    r"\s*(?:;|\Z|(?:TRANSACTION|WORK|DEFERRED|IMMEDIATE|EXCLUSIVE)(?![\w$]))", re.IGNORECASE
)


def split_sql(
    text: str,
    *,
    file: str = "<stdin>",
    dialect: str = "mysql",
    unit: str = "",
    first_line: int = 1,
) -> list[Statement]:
    """Split ``text`` into statements, each with the position of its first token.

    ``sql`` is the statement without its delimiter and without surrounding
    whitespace or comments (comments inside the statement stay). ``line`` and
    ``column`` are 1-based (a tab is one column) and point at the first token;
    ``first_line`` is the line ``text`` starts on in its file; CR, LF and CRLF
    each end a line. Statements that hold nothing but comments are dropped.
    Any text is accepted: unterminated strings or comments end the last
    statement instead of raising. Malformed input (see :mod:`.malformed`)
    adds, after the statements, one statement per problem that carries an
    ``unanalyzable`` operation and points at where the construct opened.

    Raises :class:`~migration_guard.errors.UnknownNameError` for a dialect not
    in :data:`migration_guard.config.DIALECTS`.
    """
    family = _family(dialect)
    return _Splitter(text, family, file, unit, first_line).run()


def _family(dialect: str) -> str:
    name = dialect.lower()
    name = DIALECT_ALIASES.get(name, name)
    if name not in DIALECTS:
        raise UnknownNameError("dialect", dialect, DIALECTS)
    return _MYSQL if Dialect(name).is_mysql_family else name


@lru_cache(maxsize=64)
def _scanner(family: str, delimiter: str, compound: bool) -> re.Pattern[str]:
    """The pattern that finds the next significant piece of a statement.

    Outside stored-program bodies the pattern is used with ``match``: it starts
    with a run of characters that can never begin anything significant, which
    the regex engine skips at C speed, and it always matches (a lone
    significant character that starts nothing is ``other``, the end of the text
    matches without a group). Inside bodies keywords matter too, so the pattern
    is a plain alternation used with ``search``.
    """
    if family == _MYSQL:
        quotes = f"{MYSQL_SINGLE}|{MYSQL_DOUBLE}|{BACKTICK}"
        significant = "'\"`#/;-"
    elif family == _SQLITE:
        quotes = f"{STANDARD_SINGLE}|{STANDARD_DOUBLE}|{BACKTICK}|{SQLITE_BRACKET}"
        significant = "'\"`[/;-"
    else:
        # E'...' strings are recognised from their quote (see _statement).
        quotes = f"{STANDARD_SINGLE}|{STANDARD_DOUBLE}"
        significant = "'\"$/;-"
    parts = [f"(?P<quoted>{quotes})"]
    if family == _POSTGRES:
        parts += [
            f"(?P<dollar>{POSTGRES_DOLLAR})",
            f"(?P<line_comment>{POSTGRES_LINE_COMMENT})",
            r"(?P<nested_comment>/\*)",
        ]
    else:
        line_comment = MYSQL_LINE_COMMENT if family == _MYSQL else STANDARD_LINE_COMMENT
        parts += [
            f"(?P<line_comment>{line_comment})",
            f"(?P<block_comment>{BLOCK_COMMENT})",
        ]
    if family == _MYSQL:
        parts.append(rf"(?P<delimiter_command>{_DELIMITER_LINE})")
    parts.append(f"(?P<delimiter>(?-i:{re.escape(delimiter)}))")
    if compound:
        parts.append(rf"(?P<word>(?<![\w$@.])(?:{_BLOCK_WORDS})(?![\w$]))")
        return re.compile("|".join(parts), _FLAGS)
    if family == _MYSQL:
        # A newline is only significant when a DELIMITER command follows it.
        ordinary = "[^" + re.escape(significant + delimiter[0] + "\n") + "]+"
        plain = f"(?:{ordinary}|\n(?!{_DELIMITER_LINE[2:]}))*"
    else:
        plain = "[^" + re.escape(significant + delimiter[0]) + "]*"
    return re.compile(f"{plain}(?:{'|'.join(parts)}|(?P<other>.)|\\Z)", _FLAGS)


def _skip_postgres_comment(text: str, start: int) -> int:
    """End of the (possibly nested) PostgreSQL block comment opened at ``start``."""
    end = postgres_comment_end(text, start)
    return len(text) if end < 0 else end


def _skip_trivia(text: str, pos: int, family: str) -> int:
    """First position at or after ``pos`` that is neither whitespace nor a comment."""
    skip = _skip_trivia_pattern(family)
    while True:
        match = skip.match(text, pos)
        pos = match.end() if match else pos
        if family == _POSTGRES and text.startswith("/*", pos):
            pos = _skip_postgres_comment(text, pos)
            continue
        return pos


def _pop_through(stack: list[str], kinds: tuple[str, ...]) -> None:
    """Close the innermost open block of one of ``kinds`` and everything inside it."""
    for index in range(len(stack) - 1, -1, -1):
        if stack[index] in kinds:
            del stack[index:]
            return


class _Splitter:
    """One pass over one text; holds the line cursor between statements."""

    def __init__(self, text: str, family: str, file: str, unit: str, first_line: int) -> None:
        self.text = text
        self.family = family
        self.file = file
        self.unit = unit
        self.statements: list[Statement] = []
        self.first_line = first_line
        #: Malformed input found so far, as ``unanalyzable`` statements (see .malformed).
        self.problems: list[Statement] = []
        #: What the statement scanned last left open at the end of the text: (where, what).
        self.left_open: tuple[int, str] | None = None

    def run(self) -> list[Statement]:
        text = self.text
        family = self.family
        length = len(text)
        is_mysql = family == _MYSQL
        skip = _skip_trivia_pattern(family)
        statements = self.statements
        file, unit = self.file, self.unit
        # Line cursor: positions are asked for in increasing order, so counting the
        # line breaks since the previous position keeps the whole pass linear.
        cursor, line, line_start = 0, self.first_line, 0
        has_cr = "\r" in text
        delimiter = ";"
        pos = 0
        while True:
            simple = SIMPLE_STATEMENT.match(text, pos) if delimiter == ";" else None
            # The fast path: blanks, then a statement without a comment, a quote or a line
            # break up to its ``;``, unless it may be a DELIMITER command or a program.
            if simple is not None and (
                text[simple.start(1)] not in "cCdD"
                or not needs_full_scan(text, simple.start(1), mysql=is_mysql)
            ):
                start, pos = simple.span(1)
                sql = text[start:pos].rstrip()
                pos += 1
                if has_cr:
                    newlines = count_breaks(text, cursor, start, has_cr)
                    if newlines:
                        line += newlines
                        line_start = last_break(text, cursor, start, has_cr) + 1
                else:  # count_breaks and last_break without a CR, inline
                    newlines = text.count("\n", cursor, start)
                    if newlines:
                        line += newlines
                        line_start = text.rfind("\n", cursor, start) + 1
                cursor = start + len(sql) - 1
                statements.append(Statement(sql, file, line, start - line_start + 1, unit, line))
                continue
            start = skip.match(text, pos).end()  # type: ignore[union-attr]
            if family == _POSTGRES and text.startswith("/*", start):
                start = _skip_trivia(text, start, family)
            if start >= length:
                opened = open_comment_in_trivia(text, pos, family)
                if opened >= 0:
                    self._malformed(opened, opened, OPEN_COMMENT_REASON)
                break
            if is_mysql and text[start] in "dD" and self._at_line_start(start):
                command = _DELIMITER_COMMAND.match(text, start)
                if command is not None:
                    delimiter = _unquote_delimiter(command.group(1))
                    pos = command.end()
                    continue
                bare = BARE_DELIMITER.match(text, start)
                if bare is not None:
                    self._malformed(start, start, BARE_DELIMITER_REASON)
                    pos = bare.end()
                    continue
            if text.startswith(delimiter, start):
                pos = start + len(delimiter)
                continue
            self.left_open = None
            end, pos = self._statement(start, delimiter)
            if self.left_open is not None:
                self._malformed(self.left_open[0], start, self.left_open[1])
            sql = text[start:end].rstrip()
            if sql.startswith("/*") and holds_no_sql(sql):
                continue
            last = start + len(sql) - 1
            newlines = count_breaks(text, cursor, start, has_cr)
            if newlines:
                line += newlines
                line_start = last_break(text, cursor, start, has_cr) + 1
            column = start - line_start + 1
            first = line
            newlines = count_breaks(text, start, last, has_cr)
            if newlines:
                line += newlines
                line_start = last_break(text, start, last, has_cr) + 1
            cursor = last
            # Positional arguments: a call with keywords costs more, once per statement.
            statements.append(Statement(sql, file, first, column, unit, line))
        for hidden in hidden_by_comment(text, family):
            self._malformed(hidden, hidden, HIDDEN_REASON)
        return statements + self.problems

    def _malformed(self, pos: int, statement_start: int, reason: str) -> None:
        """Report malformed input at ``pos`` in the statement at ``statement_start``."""
        self.problems.append(
            malformed_statement(
                self.text,
                pos,
                statement_start,
                where=(self.file, self.unit, self.first_line),
                reason=reason,
                family=self.family,
            )
        )

    def _at_line_start(self, pos: int) -> bool:
        text = self.text
        while pos > 0 and text[pos - 1] in " \t":
            pos -= 1
        return pos == 0 or text[pos - 1] == "\n"

    def _statement(self, start: int, delimiter: str) -> tuple[int, int]:
        """Scan the statement whose first token is at ``start``.

        Returns where its text ends and where scanning goes on.
        """
        text = self.text
        family = self.family
        length = len(text)
        compound = delimiter == ";" and opens_compound(text, start)
        scanner = _scanner(family, delimiter, compound)
        find = scanner.search if compound else scanner.match
        keeps_version_comments = family == _MYSQL
        is_postgres = family == _POSTGRES
        blocks: list[str] = []
        # End of the last token after which a body statement may begin (-1: none yet).
        boundary = -1
        # Start of the comments that so far end the statement (-1: none).
        trailing_comment = -1
        last_end = start
        pos = start
        end = resume = length
        while True:
            match = find(text, pos)
            if match is None:
                break
            kind = match.lastgroup
            if kind is None:  # the end of the text
                break
            match_start, pos = match.span(kind)
            if kind == "delimiter":
                if blocks:
                    boundary = pos
                    trailing_comment = -1
                    last_end = pos
                    continue
                end, resume = match_start, pos
                break
            if kind == "nested_comment":
                pos = _skip_postgres_comment(text, match_start)
            if kind in ("line_comment", "nested_comment") or (
                kind == "block_comment"
                and not (keeps_version_comments and is_version_comment(text, match_start))
            ):
                # Comments only count as statement text when something follows them.
                if trailing_comment < 0 or _NON_SPACE.search(text, last_end, match_start):
                    trailing_comment = match_start
                last_end = pos
                if pos >= length:
                    self._note_open(kind, match_start)
                continue
            if kind == "quoted":
                if is_postgres and is_escape_string(text, match_start):
                    pos = POSTGRES_ESCAPE_BODY.match(text, match_start).end()  # type: ignore[union-attr]
            elif kind == "dollar":
                tag = match.group(kind)
                close = text.find(tag, pos)
                pos = length if close < 0 else close + len(tag)
            elif kind == "delimiter_command":
                end = resume = match_start
                break
            elif kind == "word":
                pos, boundary = self._block_word(match, blocks, boundary)
            if pos >= length:
                self._note_open(kind, match_start)
            trailing_comment = -1
            last_end = pos
        if end == length and self.left_open is None:
            if blocks:
                self.left_open = (start, f"the input ends inside an open {blocks[-1]} block")
            elif delimiter != ";":
                self.left_open = (
                    start,
                    f"the input ends inside a statement that the active DELIMITER "
                    f"{delimiter} never closes",
                )
        if trailing_comment >= 0 and not _NON_SPACE.search(text, last_end, end):
            end = trailing_comment
        return end, resume

    def _note_open(self, kind: str, start: int) -> None:
        """Remember the piece of ``kind`` at ``start`` if the end of the text left it open."""
        escapes = self.family == _MYSQL or (
            self.family == _POSTGRES and is_escape_string(self.text, start)
        )
        what = left_open(self.text, kind, start, escapes)
        if what is not None:
            self.left_open = (start, what)

    def _block_word(
        self, match: re.Match[str], blocks: list[str], boundary: int
    ) -> tuple[int, int]:
        """Track block nesting for one keyword; return (scan position, boundary)."""
        text = self.text
        word = match.group("word").upper()
        word_end = match.end("word")
        if word == "END":
            follower = _END_FOLLOWER.match(text, word_end)
            if follower is not None:
                kind = follower.group(1).upper()
                if kind in blocks:
                    _pop_through(blocks, (kind,))
                return follower.end(), boundary
            # A bare END closes a CASE expression anywhere, but a BEGIN block only
            # where a block can end: MySQL allows ``end`` as a column name.
            if blocks and (blocks[-1] == "CASE" or self._ends_block(word_end)):
                _pop_through(blocks, ("BEGIN", "CASE"))
            return word_end, boundary
        if word == "BEGIN":
            if not _TRANSACTION_BEGIN.match(text, word_end):
                blocks.append("BEGIN")
            return word_end, word_end
        if word == "CASE":
            blocks.append("CASE")
            return word_end, boundary
        if word in ("LOOP", "WHILE"):
            blocks.append(word)
            return word_end, word_end if word == "LOOP" else boundary
        if word in ("IF", "REPEAT"):
            # IF() and REPEAT() are also functions; only a statement opens a block.
            if boundary >= 0 and self._at_statement_start(boundary, match.start("word")):
                blocks.append(word)
                return word_end, word_end if word == "REPEAT" else boundary
            return word_end, boundary
        # THEN, ELSE, DO, ROW (FOR EACH ROW): a body statement may follow.
        return word_end, word_end

    def _ends_block(self, pos: int) -> bool:
        """Whether an END at ``pos`` is followed by ``[label] ;`` or the end of the text."""
        text = self.text
        after = _skip_trivia(text, pos, self.family)
        if after >= len(text) or text[after] == ";":
            return True
        label = _LABEL_WORD.match(text, after)
        if label is None:
            return False
        after = _skip_trivia(text, label.end(), self.family)
        return after >= len(text) or text[after] == ";"

    def _at_statement_start(self, boundary: int, pos: int) -> bool:
        """Whether only comments and an optional ``label:`` separate ``boundary`` and ``pos``."""
        text = self.text
        after = _skip_trivia(text, boundary, self.family)
        if after == pos:
            return True
        label = _LABEL_DEFINITION.match(text, after, pos)
        return label is not None and _skip_trivia(text, label.end(), self.family) == pos


def _unquote_delimiter(raw: str) -> str:
    if len(raw) > 2 and raw[0] == raw[-1] and raw[0] in "'\"`":
        return raw[1:-1]
    return raw
