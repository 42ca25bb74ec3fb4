"""Renaming a table breaks every running copy of the application that still uses the old name.

Flagged for ``ALTER TABLE ... RENAME [TO]``, MySQL's ``RENAME TABLE a TO b, c
TO d`` (each pair) and Alembic's ``op.rename_table``. During a rolling deploy
the old code keeps writing to a table that no longer exists, and writes fail or
land nowhere.

Instead, use expand/contract: create the new table (or a view with the new
name over the old table), write to both, backfill, switch reads, and drop the
old name in a later release.
"""

from __future__ import annotations

from collections.abc import Iterator

from migration_guard.analysis.model import Operation, OpKind
from migration_guard.analysis.rules import Rule, RuleContext, Violation


def check(operation: Operation, context: RuleContext) -> Iterator[Violation]:
    target = f" to {operation.new_name}" if operation.new_name else ""
    yield Violation(
        f"renaming table {operation.table or '(unknown table)'}{target} breaks code "
        "that still uses the old name",
        operation.table,
    )


RULE = Rule(
    id="rename-table",
    summary="Renaming a table breaks code that still uses the old name.",
    description=__doc__ or "",
    hint=(
        "Expand/contract: add the new table (or a view with the new name), dual-write and "
        "backfill, switch reads, then drop the old name in a later release."
    ),
    kinds=frozenset({OpKind.RENAME_TABLE}),
    check=check,
)
