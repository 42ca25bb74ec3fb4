"""The texts a dynamic-SQL expression can have, when the file alone tells them.

MySQL migrations often build the statement they run at run time::

    SET @s = (SELECT IF(<condition>, 'ALTER TABLE t DROP COLUMN c', 'SELECT 1'));
    PREPARE stmt FROM @s;

The condition cannot be known before the migration runs, but every text the
statement can have is written in the file. :func:`evaluate` returns all of
them: string literals, adjacent literals, ``CONCAT``/``CONCAT_WS`` of
literals, every branch of ``IF``, ``IFNULL``, ``COALESCE``, ``NULLIF`` and
``CASE`` (conditions are never evaluated), ``(SELECT <expression> ...)``, and
variables whose values are known. Anything else (a column value, a function
result, a variable set outside the file) makes the value partly
:attr:`Values.unknown`, with the reason: that part stays ``unanalyzable``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import product

from migration_guard.analysis.tokens import Token, string_value

__all__ = ["MAX_ALTERNATIVES", "Literal", "Values", "evaluate", "matching_paren"]

#: More alternatives than this (``CONCAT`` of many ``IF``\ s) count as unknown.
MAX_ALTERNATIVES = 64
#: A text longer than this (``SET @a = CONCAT(@a, @a)`` again and again) counts as unknown.
MAX_TEXT = 1_000_000


@dataclass(frozen=True)
class Literal:
    """One text the expression can have.

    ``start`` is the offset of its first literal in the statement being read;
    once :meth:`Values.placed`, ``line`` and ``column`` say where that literal
    is written and ``anchor`` is the first line of its statement.
    """

    text: str
    start: int
    line: int = 0
    column: int = 0
    anchor: int = 0


@dataclass(frozen=True)
class Values:
    """Every known text of an expression, and why the rest (if any) is unknown."""

    literals: tuple[Literal, ...] = ()
    unknown: str | None = None

    def placed(self, place: Callable[[int], tuple[int, int, int]]) -> Values:
        """The same values, each literal not yet placed given its position by ``place``."""
        literals = tuple(
            literal if literal.line else Literal(literal.text, literal.start, *place(literal.start))
            for literal in self.literals
        )
        return Values(literals, self.unknown)

    def __or__(self, other: Values) -> Values:
        literals = tuple(dict.fromkeys(self.literals + other.literals))
        if len(literals) > MAX_ALTERNATIVES:
            return Values(unknown="it has too many alternatives to follow")
        return Values(literals, self.unknown or other.unknown)


#: How a name (``@v`` or a local variable) is looked up: None when never set.
Lookup = Callable[[str], "Values | None"]

_SELECT_LIST_END = frozenset(["FROM", "WHERE", "INTO", "LIMIT", "GROUP", "ORDER", "HAVING"])
_ALTERNATIVE_FUNCTIONS = frozenset(["IF", "IFNULL", "COALESCE", "NVL", "NULLIF"])


def matching_paren(tokens: Sequence[Token], index: int) -> int:
    """The index of the ``)`` closing the ``(`` at ``index``; -1 when it is never closed."""
    depth = 0
    for position in range(index, len(tokens)):
        token = tokens[position]
        if token.kind != "op":
            continue
        if token.text == "(":
            depth += 1
        elif token.text == ")":
            depth -= 1
            if depth == 0:
                return position
    return -1


def _split_arguments(tokens: Sequence[Token]) -> list[Sequence[Token]]:
    parts: list[Sequence[Token]] = []
    depth = 0
    begin = 0
    for position, token in enumerate(tokens):
        if token.kind != "op":
            continue
        if token.text == "(":
            depth += 1
        elif token.text == ")":
            depth -= 1
        elif token.text == "," and depth == 0:
            parts.append(tokens[begin:position])
            begin = position + 1
    parts.append(tokens[begin:])
    return parts


def _describe(tokens: Sequence[Token], sql: str) -> str:
    text = " ".join(sql[tokens[0].start : tokens[-1].end].split()) if tokens else "nothing"
    return text if len(text) <= 60 else text[:57] + "..."


def evaluate(tokens: Sequence[Token], sql: str, lookup: Lookup, depth: int = 0) -> Values:
    """Every text the expression ``tokens`` (read from ``sql``) can have."""
    if depth > 32:
        return Values(unknown="it is nested too deeply to follow")
    if not tokens:
        return Values(unknown="the expression is empty")
    first, last = tokens[0], tokens[-1]
    if first.kind == "op" and first.text == "(" and matching_paren(tokens, 0) == len(tokens) - 1:
        inner = tokens[1:-1]
        if inner and inner[0].up == "SELECT":
            return _select(inner[1:], sql, lookup, depth)
        return evaluate(inner, sql, lookup, depth + 1)
    if all(token.kind == "string" for token in tokens[first.kind == "word" :]) and (
        first.kind == "string" or (first.text.startswith("_") and len(tokens) > 1)
    ):
        strings = [token for token in tokens if token.kind == "string"]
        if all(token.text[:1] in "'\"nN" for token in strings):
            text = "".join(string_value(token.text) for token in strings)
            return Values((Literal(text, strings[0].start),))
    if len(tokens) == 1 and first.up == "NULL":
        return Values()
    if len(tokens) == 1 and (first.kind == "var" or first.is_name):
        known = lookup(first.text.lower())
        if known is not None:
            return known
        if first.kind == "var":
            return Values(unknown=f"{first.text} is not set in this file")
        return Values(unknown=f"`{first.text}` is only known at run time")
    if first.up == "CASE" and last.up == "END":
        return _case(tokens[1:-1], sql, lookup, depth)
    if (
        first.kind in ("word", "ident")
        and len(tokens) > 2
        and tokens[1].text == "("
        and matching_paren(tokens, 1) == len(tokens) - 1
    ):
        return _function(first.text.upper(), tokens[2:-1], sql, lookup, depth)
    return Values(unknown=f"`{_describe(tokens, sql)}` is only known at run time")


def _select(tokens: Sequence[Token], sql: str, lookup: Lookup, depth: int) -> Values:
    """``(SELECT expression [FROM ...])``: one of the expression's values (or no row)."""
    depth_of_parens = 0
    end = len(tokens)
    for position, token in enumerate(tokens):
        if token.kind == "op" and token.text in "()":
            depth_of_parens += 1 if token.text == "(" else -1
        elif depth_of_parens == 0 and token.up in _SELECT_LIST_END:
            end = position
            break
    columns = _split_arguments(tokens[:end])
    if len(columns) != 1:
        return Values(unknown="the subquery returns more than one column")
    return evaluate(columns[0], sql, lookup, depth + 1)


def _function(
    name: str, arguments: Sequence[Token], sql: str, lookup: Lookup, depth: int
) -> Values:
    parts = _split_arguments(arguments)
    if name in _ALTERNATIVE_FUNCTIONS:
        branches = parts[1:] if name == "IF" else parts[:1] if name == "NULLIF" else parts
        result = Values()
        for branch in branches:
            result = result | evaluate(branch, sql, lookup, depth + 1)
        return result
    if name in ("CONCAT", "CONCAT_WS"):
        values = [evaluate(part, sql, lookup, depth + 1) for part in parts]
        unknown = next((value.unknown for value in values if value.unknown), None)
        if unknown is not None:
            return Values(unknown=unknown)
        if name == "CONCAT_WS":
            separators, values = values[0], values[1:]
        count = 1
        length = 0
        for value in values:
            count *= len(value.literals)
            length += max((len(literal.text) for literal in value.literals), default=0)
        if count > MAX_ALTERNATIVES:
            return Values(unknown="it has too many alternatives to follow")
        if length > MAX_TEXT:
            return Values(unknown="it is too long to follow")
        combined: list[Literal] = []
        for combination in product(*(value.literals for value in values)):
            first = combination[0] if combination else Literal("", 0)
            for separator in separators.literals if name == "CONCAT_WS" else (None,):
                joiner = separator.text if separator is not None else ""
                text = joiner.join(literal.text for literal in combination)
                combined.append(Literal(text, first.start, first.line, first.column, first.anchor))
        return Values(tuple(dict.fromkeys(combined)))
    return Values(unknown=f"it uses the result of {name}(), only known at run time")


def _case(tokens: Sequence[Token], sql: str, lookup: Lookup, depth: int) -> Values:
    """Every ``THEN`` and the ``ELSE`` of a ``CASE`` (no ``ELSE``: NULL, no statement)."""
    result = Values()
    nesting = 0
    parens = 0
    branch_start: int | None = None
    for position, token in enumerate(tokens):
        if token.kind == "op" and token.text in "()":
            parens += 1 if token.text == "(" else -1
            continue
        if parens:
            continue
        word = token.up
        if word == "CASE":
            nesting += 1
        elif word == "END" and nesting:
            nesting -= 1
        elif nesting == 0 and word in ("WHEN", "ELSE", "THEN"):
            if branch_start is not None:
                result = result | evaluate(tokens[branch_start:position], sql, lookup, depth + 1)
                branch_start = None
            if word in ("THEN", "ELSE"):
                branch_start = position + 1
    if branch_start is not None:
        result = result | evaluate(tokens[branch_start:], sql, lookup, depth + 1)
    return result
