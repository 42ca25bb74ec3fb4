"""What the safety backup of a run covers, from the plan's statements parsed once.

``touched`` (the default scope) backs up the tables the plan's statements touch, the
protected tables and the version table: enough to restore the state from before the
run without copying the whole database. A statement whose target cannot be known
widens the scope to everything.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

from migration_guard.analysis.analyzer import operations_of
from migration_guard.analysis.model import Operation, OpKind, Statement
from migration_guard.config import ProtectedTables

_QUOTES = re.compile("[`'\"\\[]")


def parsed_plan(
    statements: Iterable[Statement], dialect: str
) -> list[tuple[Statement, list[Operation]]]:
    """Each statement of the plan with its operations, parsed once for the backup scope,
    the run's planned changes and the statement interceptor."""
    return [(statement, operations_of(statement, dialect)) for statement in statements]


def plan_text(sql: str) -> str:
    """``sql`` as the offline plan renders it: Alembic writes each tab of generated DDL as
    four spaces. Only outside quotes is that sure to change nothing but the spacing, so
    a text with a quote keeps its tabs (and is parsed again when it runs)."""
    text = sql.strip()
    if "\t" in text and not _QUOTES.search(text):
        return text.replace("\t", "    ")
    return text


class TextParses:
    """Parses by statement text (:func:`plan_text`), for the statement interceptor: the
    plan's (``known``, :func:`parses_by_text`), then those of the statements run so far
    that the plan did not know (e.g. Alembic's version-table statements with their
    parameters as ``NULL``). A parse depends on the text and the dialect only."""

    def __init__(self) -> None:
        self._seen: dict[str, list[Operation]] = {}

    def get(self, sql: str, known: Mapping[str, list[Operation]]) -> list[Operation] | None:
        text = plan_text(sql)
        found = known.get(text)
        return found if found is not None else self._seen.get(text)

    def remember(self, statement: Statement, operations: list[Operation]) -> None:
        """Keep the parse of a statement that ran, unless it was split into pieces."""
        if operations and all(operation.statement is statement for operation in operations):
            self._seen[plan_text(statement.sql)] = operations


def parses_by_text(
    parsed: Iterable[tuple[Statement, list[Operation]]],
) -> dict[str, list[Operation]]:
    """The plan's operations by :func:`plan_text` of their statement, for the statement
    interceptor: a statement that runs with exactly that text is not parsed again (a
    parse depends on the text and the dialect only). Statements judged from an Alembic
    operation object, or parsed into pieces, are left out."""
    known: dict[str, list[Operation]] = {}
    for statement, operations in parsed:
        if statement.known_operations or not operations:
            continue
        if all(operation.statement is statement for operation in operations):
            known.setdefault(plan_text(statement.sql), operations)
    return known


def backup_scope(
    operations: Iterable[Operation],
    live: Sequence[str],
    *,
    full: bool,
    protected: ProtectedTables | None,
    version_table: str,
) -> list[str]:
    """The live tables (``live``, as the database spells them) the safety backup takes
    for a plan of ``operations`` (``protected`` None: only those the operations touch, and
    the version table)."""
    by_lower = {name.lower(): name for name in live}
    if full or (protected is not None and protected.protects_everything):
        return list(live)
    wanted: dict[str, None] = {}
    for operation in operations:
        if operation.kind is OpKind.UNANALYZABLE:
            # What it touches cannot be known: cover everything.
            return list(live)
        if operation.table is not None:
            wanted.setdefault(operation.table.name.lower(), None)
        if operation.new_name:
            wanted.setdefault(operation.new_name.lower(), None)
    for name in live:
        if protected is not None and protected.is_protected(name):
            wanted.setdefault(name.lower(), None)
    wanted.setdefault(version_table.lower(), None)
    return [by_lower[name] for name in wanted if name in by_lower]
