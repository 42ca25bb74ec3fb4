"""Dropping a column destroys its values in every row, and breaks code that still reads it.

Flagged for ``ALTER TABLE ... DROP [COLUMN]`` (MySQL accepts ``DROP`` without
the ``COLUMN`` keyword), for each column when one ALTER drops several, and for
Alembic's ``op.drop_column``. Dropping a column of a table created earlier in
the same file or revision is exempt.

Instead, use expand/contract: stop writing and reading the column in one
release, copy its values somewhere safe if they might be needed (an archive
table keyed by the primary key), and drop the column in a later release once a
verified backup exists.
"""

from __future__ import annotations

from collections.abc import Iterator

from migration_guard.analysis.model import Operation, OpKind
from migration_guard.analysis.rules import Rule, RuleContext, Violation, unit_of


def check(operation: Operation, context: RuleContext) -> Iterator[Violation]:
    if context.created_in_unit(operation.table, unit_of(operation)):
        return
    column = operation.column or "(unknown column)"
    yield Violation(
        f"dropping column {column} of {operation.table or '(unknown table)'} "
        "deletes its values in every row",
        operation.table,
    )


RULE = Rule(
    id="drop-column",
    summary="Dropping a column destroys its values in every row.",
    description=__doc__ or "",
    hint=(
        "Expand/contract: stop using the column first, archive its values, and drop it in "
        "a later release after a verified backup."
    ),
    kinds=frozenset({OpKind.DROP_COLUMN}),
    check=check,
)
