"""Truncating a table deletes every row in it; TRUNCATE cannot be rolled back in MySQL.

``TRUNCATE [TABLE]`` is flagged for every table it names. Truncating a table
created earlier in the same file or revision is exempt: it holds no production
data yet.

Instead, copy the rows to an archive table first
(``CREATE TABLE t_archive AS SELECT * FROM t``), or delete only the rows that
are really obsolete with a bounded ``DELETE ... WHERE``; for rows the
application should stop seeing, prefer a soft delete.
"""

from __future__ import annotations

from collections.abc import Iterator

from migration_guard.analysis.model import Operation, OpKind
from migration_guard.analysis.rules import Rule, RuleContext, Violation, unit_of


def check(operation: Operation, context: RuleContext) -> Iterator[Violation]:
    if context.created_in_unit(operation.table, unit_of(operation)):
        return
    yield Violation(
        f"TRUNCATE {operation.table or '(unknown table)'} deletes all its rows",
        operation.table,
    )


RULE = Rule(
    id="truncate-table",
    summary="Truncating a table deletes all of its rows.",
    description=__doc__ or "",
    hint=(
        "Copy the rows to an archive table first, or delete only obsolete rows with a "
        "bounded WHERE; prefer soft delete."
    ),
    kinds=frozenset({OpKind.TRUNCATE_TABLE}),
    check=check,
)
