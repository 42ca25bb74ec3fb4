"""Dropping a table destroys every row in it, and nothing in the migration can bring them back.

``DROP TABLE`` is flagged for every table it names, including multi-table drops
(``DROP TABLE a, b``) and schema-qualified names. Dropping a table that was
created earlier in the same file or revision is exempt (Atlas-style): it can
hold no production data yet.

Instead of dropping, rename the table to an archive name
(``ALTER TABLE orders RENAME TO orders_archived_2024``) or copy its rows to an
archive table, deploy, and drop it in a later release once a verified backup
exists and nothing reads it any more. For rows that are merely obsolete,
prefer a soft delete (a ``deleted_at`` column).
"""

from __future__ import annotations

from collections.abc import Iterator

from migration_guard.analysis.model import Operation, OpKind
from migration_guard.analysis.rules import Rule, RuleContext, Violation, unit_of


def check(operation: Operation, context: RuleContext) -> Iterator[Violation]:
    if context.created_in_unit(operation.table, unit_of(operation)):
        return
    yield Violation(
        f"DROP TABLE {operation.table or '(unknown table)'} deletes the table and all its rows",
        operation.table,
    )


RULE = Rule(
    id="drop-table",
    summary="Dropping a table destroys all of its rows.",
    description=__doc__ or "",
    hint=(
        "Rename it to an archive table (or copy its rows there) and drop it in a later "
        "release, after a verified backup; use soft delete for obsolete rows."
    ),
    kinds=frozenset({OpKind.DROP_TABLE}),
    check=check,
)
