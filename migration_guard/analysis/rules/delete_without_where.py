"""A DELETE without a WHERE clause, or with one that is always true, deletes every row.

Flagged for ``DELETE FROM t`` with no ``WHERE`` and for tautological
conditions such as ``WHERE 1=1``, ``WHERE TRUE`` or ``WHERE 'a' = 'a'``. A
data migration that empties a table is almost always a mistake; when it is not,
``TRUNCATE`` or ``DROP`` say so more honestly (and are checked by their own
rules).

Instead, delete only the rows that are really obsolete with a precise
``WHERE``, in bounded batches, after copying them to an archive table; or mark
them with a soft delete (``UPDATE t SET deleted_at = now() WHERE ...``).
"""

from __future__ import annotations

from collections.abc import Iterator

from migration_guard.analysis.model import Operation, OpKind
from migration_guard.analysis.rules import Rule, RuleContext, Violation


def check(operation: Operation, context: RuleContext) -> Iterator[Violation]:
    table = operation.table or "(unknown table)"
    if operation.has_where is False:
        yield Violation(f"DELETE from {table} without WHERE deletes every row", operation.table)
    elif operation.where_is_tautology:
        yield Violation(
            f"DELETE from {table} with an always-true WHERE deletes every row",
            operation.table,
        )


RULE = Rule(
    id="delete-without-where",
    summary="DELETE without a (real) WHERE clause deletes every row.",
    description=__doc__ or "",
    hint=(
        "Delete only obsolete rows with a precise WHERE, in batches, after archiving them; "
        "or use a soft delete."
    ),
    kinds=frozenset({OpKind.DELETE}),
    check=check,
)
