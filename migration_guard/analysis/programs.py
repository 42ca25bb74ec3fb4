"""The statements inside stored programs, each with its own position.

A ``CREATE PROCEDURE``/``FUNCTION``/``TRIGGER``/``EVENT`` statement, or a
MariaDB ``BEGIN NOT ATOMIC ... END`` block, holds statements that run later (or,
for the block, right there). :func:`read_program` finds the body and cuts it
into the statements it runs, through ``BEGIN``/``END``, ``IF``/``ELSEIF``/
``ELSE``, ``CASE``/``WHEN``, ``WHILE``, ``LOOP``, ``REPEAT``/``UNTIL``, labels
and ``DECLARE ... HANDLER`` bodies. Conditions are not evaluated: every branch
counts. Each statement keeps the line and column it was written at.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from migration_guard.analysis.dynamic_values import matching_paren
from migration_guard.analysis.malformed import breaks_before
from migration_guard.analysis.model import Statement
from migration_guard.analysis.tokens import Token, tokenize

__all__ = [
    "SPLIT_DIALECT",
    "BodyStatement",
    "Program",
    "program_name",
    "read_program",
    "visible_sql",
]

_PROGRAM_KINDS = ("PROCEDURE", "FUNCTION", "TRIGGER", "EVENT")
#: Words that may start a statement of a body written without BEGIN ... END.
_STATEMENT_WORDS = frozenset(
    [
        "ALTER",
        "CALL",
        "CREATE",
        "DELETE",
        "DROP",
        "EXECUTE",
        "IF",
        "INSERT",
        "LOOP",
        "PREPARE",
        "RENAME",
        "REPEAT",
        "REPLACE",
        "RETURN",
        "SELECT",
        "SET",
        "TRUNCATE",
        "UPDATE",
        "WHILE",
        "CASE",
        "LOAD",
        "WITH",
    ]
)
#: Statements of a body that touch no data: dropped from the analysis.
_FLOW_ONLY = frozenset(
    [
        "LEAVE",
        "ITERATE",
        "OPEN",
        "CLOSE",
        "FETCH",
        "RETURN",
        "SIGNAL",
        "RESIGNAL",
        "GET",
        "UNTIL",
        "END",
    ]
)
_HANDLER_CONDITIONS = frozenset(["SQLSTATE", "VALUE", "SQLWARNING", "SQLEXCEPTION", "NOT", "FOUND"])
_CREATE_WORDS = frozenset(["OR", "REPLACE", "AGGREGATE", "TEMP", "TEMPORARY"])
#: The splitter's name of each tokenizer family.
SPLIT_DIALECT = {"mysql": "mysql", "postgres": "postgresql", "sqlite": "sqlite"}
_VERSION_MARKERS = re.compile(r"/\*M?!\d{0,6}|\*/")


@dataclass(frozen=True)
class BodyStatement:
    """One statement of a body; ``conditional`` when a branch or loop holds it."""

    statement: Statement
    conditional: bool


@dataclass(frozen=True)
class Program:
    """A stored program: ``kind`` (PROCEDURE, ..., or BLOCK), its name and its body."""

    kind: str
    name: str
    body: tuple[BodyStatement, ...]


def _skip_definer(tokens: Sequence[Token], index: int) -> int:
    while index < len(tokens) and tokens[index].up in _CREATE_WORDS:
        index += 1
    if index < len(tokens) and tokens[index].up == "DEFINER":
        index += 2  # DEFINER =
        while index < len(tokens) and (
            tokens[index].kind in ("word", "ident", "string", "var")
            or tokens[index].text in ("@", "(", ")")
        ):
            if tokens[index].up in ("SQL", *_PROGRAM_KINDS):
                break
            index += 1
    while index < len(tokens) and tokens[index].up in ("SQL", "SECURITY", "DEFINER", "INVOKER"):
        index += 1
    return index


def program_name(tokens: Sequence[Token], index: int) -> tuple[str, int]:
    """The name at ``index`` as written (``db.name`` gives ``name``), and the next index."""
    while index < len(tokens) and tokens[index].up in ("IF", "NOT", "EXISTS"):
        index += 1
    name = ""
    while index < len(tokens) and tokens[index].is_name:
        name = tokens[index].text
        index += 1
        if index < len(tokens) and tokens[index].text == "." and tokens[index].kind == "op":
            index += 1
            continue
        break
    return name, index


def _body_start(kind: str, tokens: Sequence[Token], index: int) -> int | None:
    """The index of the first token of the routine body, or None if there is none."""
    if kind == "EVENT":
        return next((i + 1 for i in range(index, len(tokens)) if tokens[i].up == "DO"), None)
    if kind == "TRIGGER":
        rows = next((i for i in range(index, len(tokens) - 1) if tokens[i].up == "EACH"), None)
        position = index if rows is None else rows + 2
        single = rows is not None  # MySQL: FOR EACH ROW <one statement>
        for i in range(position, len(tokens)):
            word = tokens[i].up
            if word == "BEGIN" or (single and word in _STATEMENT_WORDS - {"EXECUTE"}):
                return i
            single = single and word != "WHEN"  # SQLite: WHEN <condition> BEGIN
        return None
    if index < len(tokens) and tokens[index].text == "(":
        index = matching_paren(tokens, index) + 1
        if index == 0:
            return None
    if any(
        token.kind == "string" and tokens[i - 1].up == "AS"
        for i, token in enumerate(tokens[index:], start=index)
    ):
        return None  # PostgreSQL: the body is a string, in SQL or another language
    for i in range(index, len(tokens)):
        token = tokens[i]
        word = token.up
        if word in _STATEMENT_WORDS - {"SET"} or word == "BEGIN":
            return i
        if word == "SET" and tokens[i - 1].up != "CHARACTER":
            return i
        labelled = token.is_name and i + 2 < len(tokens) and tokens[i + 1].text == ":"
        if labelled and tokens[i + 2].up in ("BEGIN", "LOOP", "WHILE", "REPEAT"):
            return i
    return None


def visible_sql(sql: str) -> str:
    """``sql`` with the markers of MySQL version comments blanked: the server runs their text.

    Offsets stay those of ``sql``, so positions found in the result are positions in ``sql``.
    """
    if "/*!" in sql or "/*M!" in sql:
        return _VERSION_MARKERS.sub(lambda match: " " * len(match.group()), sql)
    return sql


def read_program(statement: Statement, family: str) -> Program | None:
    """The stored program ``statement`` creates or runs, or None when it is none."""
    sql = visible_sql(statement.sql)
    tokens = tokenize(sql, family)
    if len(tokens) < 2:
        return None
    if tokens[0].up == "BEGIN" and tokens[1].up == "NOT":
        return Program("BLOCK", "", tuple(_body(statement, sql, tokens[0].start, family)))
    if tokens[0].up != "CREATE":
        return None
    index = _skip_definer(tokens, 1)
    if index >= len(tokens) or tokens[index].up not in _PROGRAM_KINDS:
        return None
    kind = tokens[index].up
    name, index = program_name(tokens, index + 1)
    start = _body_start(kind, tokens, index)
    if start is None or start >= len(tokens) or not name:
        return None
    return Program(kind, name, tuple(_body(statement, sql, tokens[start].start, family)))


def _body(statement: Statement, sql: str, offset: int, family: str) -> list[BodyStatement]:
    """Cut the body that starts at ``offset`` of ``sql`` into its statements."""
    # Imported here: the splitter is only needed for bodies.
    from migration_guard.analysis.splitter import split_sql

    breaks, newline = breaks_before(sql, offset)
    line = statement.line + breaks
    indent = offset - newline - 1 if newline >= 0 else statement.column - 1 + offset
    text = " " * indent + sql[offset:]
    body: list[BodyStatement] = []
    depth = 0
    for piece in split_sql(
        text, file=statement.file, dialect=SPLIT_DIALECT.get(family, "mysql"), first_line=line
    ):
        stripped, depth, conditional = _strip_flow(piece.sql, family, depth)
        if stripped is None:
            continue
        cut = len(piece.sql) - len(stripped)
        lines, last = breaks_before(piece.sql, cut)
        column = cut - last if lines else piece.column + cut
        body.append(
            BodyStatement(
                Statement(
                    sql=stripped,
                    file=statement.file,
                    line=piece.line + lines,
                    column=column,
                    unit=statement.unit,
                ),
                conditional,
            )
        )
    return body


def _strip_flow(sql: str, family: str, depth: int) -> tuple[str | None, int, bool]:
    """Remove the control-flow words in front of a body statement.

    Returns the statement (None when nothing but control flow is left), the
    new nesting depth of conditional blocks and whether the statement is
    inside one.
    """
    tokens = tokenize(sql, family)
    index = 0
    conditional = depth > 0
    while index < len(tokens):
        token = tokens[index]
        word = token.up
        if token.is_name and index + 1 < len(tokens) and tokens[index + 1].text == ":":
            index += 2  # a label
        elif word == "BEGIN":
            index += 1
            while index < len(tokens) and tokens[index].up in ("NOT", "ATOMIC"):
                index += 1
        elif word in ("IF", "ELSEIF", "WHEN", "WHILE", "CASE"):
            if word in ("IF", "WHILE") or word == "CASE":
                depth += 1
            closing = "DO" if word == "WHILE" else "THEN"
            found = _find_top_level(tokens, index + 1, closing)
            if found is None:
                return sql[token.start :], depth, True
            index = found + 1
            conditional = True
        elif word in ("ELSE", "LOOP", "REPEAT"):
            if word != "ELSE":
                depth += 1
            index += 1
            conditional = True
        elif word == "DECLARE" and any(t.up == "HANDLER" for t in tokens[index : index + 4]):
            index = _after_handler(tokens, index)
            conditional = True
        elif word in _FLOW_ONLY:
            if word in ("END", "UNTIL"):
                closes = [t.up for t in tokens[index + 1 : index + 3]]
                if any(kind in ("IF", "CASE", "WHILE", "LOOP", "REPEAT") for kind in closes) or (
                    word == "UNTIL"
                ):
                    depth = max(0, depth - 1)
            return None, depth, conditional
        else:
            return sql[token.start :], depth, conditional
    return None, depth, conditional


def _find_top_level(tokens: Sequence[Token], index: int, word: str) -> int | None:
    """The ``word`` that ends a condition, past nested parentheses and CASE expressions."""
    parens = 0
    cases = 0
    for position in range(index, len(tokens)):
        token = tokens[position]
        if token.kind == "op" and token.text in "()":
            parens += 1 if token.text == "(" else -1
        elif parens == 0:
            if token.up == "CASE":
                cases += 1
            elif token.up == "END" and cases:
                cases -= 1
            elif token.up == word and cases == 0:
                return position
    return None


def _after_handler(tokens: Sequence[Token], index: int) -> int:
    """The index after ``DECLARE ... HANDLER FOR condition[, condition...]``."""
    while index < len(tokens) and tokens[index].up != "FOR":
        index += 1
    index += 1
    while index < len(tokens):
        token = tokens[index]
        if (
            token.up in _HANDLER_CONDITIONS
            or token.kind in ("string", "number")
            or (token.kind == "op" and token.text == ",")
        ):
            index += 1
        elif (
            token.is_name
            and (tokens[index - 1].text == "," or tokens[index - 1].up == "FOR")
            and token.up not in _STATEMENT_WORDS | {"BEGIN"}
        ):
            index += 1  # a named condition
        else:
            break
    return index
