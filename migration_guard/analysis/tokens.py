"""The one SQL tokenizer of the analysis, and the helpers that read its tokens.

Both the full parser's token fallback and the sqlglot-free quick path read
statements through :func:`tokenize`, so quoting, comments and string escapes
are understood the same way everywhere. It imports nothing heavy: the quick
path must start without sqlglot.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import NamedTuple

from migration_guard.analysis.model import TableRef

#: How the reason of an ``unanalyzable`` operation starts when the input itself is
#: malformed (an unterminated string, quoted name or comment, an unknown
#: ``DELIMITER`` state, text hidden by a comment): always an error.
MALFORMED_INPUT = "malformed input"


class Token(NamedTuple):
    """One token: ``kind`` is word, ident (quoted identifier), string, number, var or op."""

    kind: str  # word, ident (quoted identifier), string, number, var, op
    text: str  # unquoted for ident; as written otherwise
    start: int
    end: int

    @property
    def up(self) -> str:
        return self.text.upper() if self.kind == "word" else ""

    @property
    def is_name(self) -> bool:
        return self.kind in ("word", "ident")


_TOKEN_TAIL = r"""
 |(?P<number>\d+(?:\.\d*)?(?:[eE][+-]?\d+)?(?![\w$])|\.\d+(?:[eE][+-]?\d+)?)
 |(?P<word>[^\W\d][\w$]*|\d[\w$]*)
 |(?P<var>@@?[\w.$]*|\$\d+|:[A-Za-z_]\w*)
 |(?P<op><=>|<>|!=|<=|>=|::|:=|\|\||->>|->|.)
"""
#: Per-family token regexes, compiled on first use (a short check that the quick
#: path fully covers never needs the ones of the other families).
_TOKEN_SOURCES = {
    "mysql": (
        r"""(?P<ws>\s+)
 |(?P<comment>--(?=[\x00-\x20]|\Z)[^\n]*|\#[^\n]*|/\*.*?(?:\*/|\Z))
 |(?P<string>[xXbBnN]?'(?:[^'\\]|\\.|'')*(?:'|\Z)|"(?:[^"\\]|\\.|"")*(?:"|\Z))
 |(?P<ident>`(?:[^`]|``)*(?:`|\Z))"""
        + _TOKEN_TAIL,
        re.S | re.X,
    ),
    "postgres": (
        r"""(?P<ws>\s+)
 |(?P<comment>--[^\r\n]*|/\*.*?(?:\*/|\Z))
 |(?P<string>(?:[eE]'(?:[^'\\]|\\.|'')*|[bBxXnN]?'(?:[^']|'')*)(?:'|\Z)
    |\$(?P<tag>(?:[A-Za-z_]\w*)?)\$.*?(?:\$(?P=tag)\$|\Z))
 |(?P<ident>"(?:[^"]|"")*(?:"|\Z))"""
        + _TOKEN_TAIL,
        re.S | re.X,
    ),
    "sqlite": (
        r"""(?P<ws>\s+)
 |(?P<comment>--[^\n]*|/\*.*?(?:\*/|\Z))
 |(?P<string>[xX]?'(?:[^']|'')*(?:'|\Z))
 |(?P<ident>"(?:[^"]|"")*(?:"|\Z)|`(?:[^`]|``)*(?:`|\Z)|\[[^\]]*(?:\]|\Z))"""
        + _TOKEN_TAIL,
        re.S | re.X,
    ),
}


@functools.cache
def _token_pattern(family: str) -> re.Pattern[str]:
    source, flags = _TOKEN_SOURCES[family]
    return re.compile(source, flags)


def tokenize(sql: str, family: str) -> list[Token]:
    """Split ``sql`` into tokens, respecting the dialect's quoting. Never raises."""
    pattern = _token_pattern(family if family in _TOKEN_SOURCES else "postgres")
    tokens: list[Token] = []
    for match in pattern.finditer(sql):
        kind = match.lastgroup
        if kind in ("ws", "comment") or kind is None:
            continue
        text = match.group()
        if kind == "ident":
            text = _unquote_identifier(text)
        tokens.append(Token(kind, text, match.start(), match.end()))
    return tokens


#: Plain tokens, which every family and :func:`tokenize` read alike (see :func:`plain_tokens`).
_PLAIN_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_PLAIN_QUOTED = {"mysql": "`", "postgres": '"', "sqlite": '"`'}
_PLAIN_SOURCE = r"""\s*(?:
 (?P<word>[A-Za-z_][A-Za-z0-9_]*)(?![\w$'"`])
 |(?P<number>\d+(?:\.\d+)?)(?![\w$.])
 |(?P<string>'[^'\\]*(?:''[^'\\]*)*')
 |(?P<quoted>(?P<quote>[{quotes}]){name}(?P=quote))(?![{quotes}])
 |(?P<punct>[(),]|\.(?!\d)|-(?![->]))
 |(?P<other>.)
)"""


@functools.cache
def _plain_pattern(family: str) -> re.Pattern[str]:
    quotes = re.escape(_PLAIN_QUOTED.get(family, '"'))
    source = _PLAIN_SOURCE.format(quotes=quotes, name=_PLAIN_NAME)
    return re.compile(source, re.S | re.X)


def plain_tokens(sql: str, family: str) -> tuple[list[str], list[str], list[str]] | None:
    """``(kinds, texts, keys)`` of ``sql`` when it holds plain tokens only, else None.

    The fast path of the tokenizer for the quick path: plain names
    (``[A-Za-z_][A-Za-z0-9_]*``, or quoted the family's way), numbers without
    exponent, strings without backslashes, and ``( ) , . -``, separated by
    whitespace. Each reads the same in every family and exactly as
    :func:`tokenize` reads it; anything else (a comment, an operator, a
    variable, an escape, a prefixed string such as ``E'...'``) gives None.
    ``kinds`` are word, quoted, number, string, punct; ``texts`` the text
    (quoted names unquoted); ``keys`` the upper-cased word, the punctuation
    mark, or an empty string.
    """
    kinds: list[str] = []
    texts: list[str] = []
    keys: list[str] = []
    add_kind, add_text, add_key = kinds.append, texts.append, keys.append
    # findall gives every token's groups as one tuple, without a match object each.
    for word, number, string, quoted, _quote, punct, _other in _plain_pattern(family).findall(sql):
        if word:
            add_kind("word")
            add_text(word)
            add_key(word.upper())
        elif punct:
            add_kind("punct")
            add_text(punct)
            add_key(punct)
        elif number:
            add_kind("number")
            add_text(number)
            add_key("")
        elif string:
            add_kind("string")
            add_text(string)
            add_key("")
        elif quoted:
            add_kind("quoted")
            add_text(quoted[1:-1])
            add_key("")
        else:  # other: anything that is not a plain token
            return None
    return kinds, texts, keys


def comment_spans(sql: str, family: str) -> list[tuple[int, int]]:
    """``(start, end)`` of each comment in ``sql``, read by the rules of :func:`tokenize`."""
    pattern = _token_pattern(family if family in _TOKEN_SOURCES else "postgres")
    return [match.span() for match in pattern.finditer(sql) if match.lastgroup == "comment"]


def _unquote_identifier(text: str) -> str:
    opener = text[0]
    closer = "]" if opener == "[" else opener
    body = text[1:-1] if len(text) > 1 and text.endswith(closer) else text[1:]
    return body if opener == "[" else body.replace(closer * 2, closer)


def string_value(text: str) -> str:
    """The content of a string token (quotes removed, escapes resolved)."""
    if text.startswith("$"):
        tag_end = text.index("$", 1) + 1
        tag = text[:tag_end]
        body = text[tag_end:]
        return body[: -len(tag)] if body.endswith(tag) and len(body) >= len(tag) else body
    if text[:1] in "eExXbBnN" and text[1:2] in ("'", '"'):
        text = text[1:]
    quote = text[0]
    body = text[1:-1] if len(text) > 1 and text.endswith(quote) else text[1:]
    body = body.replace(quote * 2, quote)
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t", "0": "\0"}.get(m[1], m[1]), body)


def split_top_level(tokens: Sequence[Token]) -> list[list[Token]]:
    """Split on commas outside parentheses."""
    parts: list[list[Token]] = [[]]
    depth = 0
    for token in tokens:
        if token.kind == "op":
            if token.text == "(":
                depth += 1
            elif token.text == ")":
                depth = max(0, depth - 1)
            elif token.text == "," and depth == 0:
                parts.append([])
                continue
        parts[-1].append(token)
    return parts


def read_name(tokens: Sequence[Token], index: int) -> tuple[TableRef | None, int]:
    """Read ``a``, ``s.a`` or ``c.s.a`` starting at ``index``."""
    if index >= len(tokens) or not tokens[index].is_name:
        return None, index
    parts = [tokens[index].text]
    index += 1
    while (
        index + 1 < len(tokens)
        and tokens[index].kind == "op"
        and tokens[index].text == "."
        and tokens[index + 1].is_name
    ):
        parts.append(tokens[index + 1].text)
        index += 2
    schema = parts[-2] if len(parts) > 1 else None
    return TableRef(name=parts[-1], schema=schema), index


def skip_words(tokens: Sequence[Token], index: int, *words: str) -> int:
    while index < len(tokens) and tokens[index].up in words:
        index += 1
    return index


def words_at(tokens: Sequence[Token], index: int, *words: str) -> bool:
    """Whether the tokens from ``index`` are exactly ``words`` (upper-case)."""
    if index + len(words) > len(tokens):
        return False
    return all(tokens[index + offset].up == word for offset, word in enumerate(words))


def word_at(tokens: Sequence[Token], index: int) -> str:
    return tokens[index].up if index < len(tokens) else ""


_GUESS_AFTER = frozenset(["FROM", "TABLE", "INTO", "UPDATE", "JOIN", "TRUNCATE"])
_NOT_A_TABLE = frozenset(
    ["IF", "EXISTS", "NOT", "ONLY", "SELECT", "WHERE", "SET", "VALUES", "LATERAL", "TABLE"]
)


def guess_table(tokens: Sequence[Token], family: str = "", depth: int = 0) -> TableRef | None:
    """The first name after FROM/TABLE/INTO/UPDATE/JOIN, for UNANALYZABLE reports.

    Looks into string literals too (``EXECUTE 'DROP TABLE x'``) when the
    statement itself names no table.
    """
    found = _guess_table_in(tokens)
    if found is None and depth < 2:
        for token in tokens:
            if token.kind == "string" and len(token.text) > 8:
                inner = tokenize(string_value(token.text), family)
                found = guess_table(inner, family, depth + 1)
                if found is not None:
                    break
    return found


def _guess_table_in(tokens: Sequence[Token]) -> TableRef | None:
    for index, token in enumerate(tokens):
        if token.up not in _GUESS_AFTER:
            continue
        after = skip_words(tokens, index + 1, "IF", "NOT", "EXISTS", "ONLY", "TABLE")
        if after < len(tokens) and tokens[after].up not in _NOT_A_TABLE:
            table, _ = read_name(tokens, after)
            if table is not None:
                return table
    return None


def token_names(tokens: Sequence[Token]) -> tuple[str, ...]:
    return tuple(token.text for token in tokens if token.is_name)


def has_top_level_word(tokens: Sequence[Token], word: str) -> bool:
    depth = 0
    for token in tokens:
        if token.text == "(" and token.kind == "op":
            depth += 1
        elif token.text == ")" and token.kind == "op":
            depth = max(0, depth - 1)
        elif depth == 0 and token.up == word:
            return True
    return False
