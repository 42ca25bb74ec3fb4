"""Dropping a database (MySQL) or schema (PostgreSQL) destroys every table in it at once.

``DROP DATABASE`` and ``DROP SCHEMA`` are always an error, whatever the
protected-tables configuration says: the statement reaches tables the
configuration cannot see, and a migration has no business removing a whole
database.

Instead, drop the individual tables that are really obsolete (each one is then
checked by ``drop-table``), or have an operator drop the database by hand after
a verified backup, outside the migration chain.
"""

from __future__ import annotations

from collections.abc import Iterator

from migration_guard.analysis.model import Operation, OpKind, Severity
from migration_guard.analysis.rules import Rule, RuleContext, Violation


def check(operation: Operation, context: RuleContext) -> Iterator[Violation]:
    name = operation.table.name if operation.table else "(unknown)"
    yield Violation(
        f"DROP DATABASE/SCHEMA {name} deletes every table in it",
        operation.table,
        Severity.ERROR,
    )


RULE = Rule(
    id="drop-database",
    summary="Dropping a database or schema destroys every table in it.",
    description=__doc__ or "",
    hint=(
        "Drop only the obsolete tables, one by one, or let an operator drop the database "
        "by hand after a verified backup, outside the migrations."
    ),
    kinds=frozenset({OpKind.DROP_DATABASE}),
    check=check,
)
