"""Renaming a column breaks every running copy of the application that still uses the old name.

Flagged for ``ALTER TABLE ... RENAME COLUMN a TO b``, MySQL's
``CHANGE [COLUMN] old new type`` when the two names differ, and Alembic's
``op.alter_column(new_column_name=...)``.

Instead, use expand/contract: add the new column, write to both, backfill the
new one from the old, switch reads, and drop the old column in a later release.
"""

from __future__ import annotations

from collections.abc import Iterator

from migration_guard.analysis.model import Operation, OpKind
from migration_guard.analysis.rules import Rule, RuleContext, Violation


def check(operation: Operation, context: RuleContext) -> Iterator[Violation]:
    column = operation.column or "(unknown column)"
    target = f" to {operation.new_name}" if operation.new_name else ""
    yield Violation(
        f"renaming column {column}{target} of {operation.table or '(unknown table)'} "
        "breaks code that still uses the old name",
        operation.table,
    )


RULE = Rule(
    id="rename-column",
    summary="Renaming a column breaks code that still uses the old name.",
    description=__doc__ or "",
    hint=(
        "Expand/contract: add the new column, dual-write and backfill, switch reads, then "
        "drop the old column in a later release."
    ),
    kinds=frozenset({OpKind.RENAME_COLUMN}),
    check=check,
)
