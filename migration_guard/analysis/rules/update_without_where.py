"""An UPDATE without a WHERE clause, or with one that is always true, overwrites every row.

Flagged for ``UPDATE t SET ...`` with no ``WHERE`` and for tautological
conditions such as ``WHERE 1=1``. The previous values are gone once the
statement commits; there is no undo.

Instead, restrict the update with a precise ``WHERE`` (often
``WHERE new_col IS NULL`` for a backfill), run it in bounded batches, and keep
the old values until the change is verified: write to a new column
(expand/contract) rather than overwriting the old one in place.
"""

from __future__ import annotations

from collections.abc import Iterator

from migration_guard.analysis.model import Operation, OpKind
from migration_guard.analysis.rules import Rule, RuleContext, Violation


def check(operation: Operation, context: RuleContext) -> Iterator[Violation]:
    table = operation.table or "(unknown table)"
    if operation.has_where is False:
        yield Violation(f"UPDATE of {table} without WHERE overwrites every row", operation.table)
    elif operation.where_is_tautology:
        yield Violation(
            f"UPDATE of {table} with an always-true WHERE overwrites every row",
            operation.table,
        )


RULE = Rule(
    id="update-without-where",
    summary="UPDATE without a (real) WHERE clause overwrites every row.",
    description=__doc__ or "",
    hint=(
        "Restrict the update with a precise WHERE, batch it, and write to a new column "
        "(expand/contract) instead of overwriting values in place."
    ),
    kinds=frozenset({OpKind.UPDATE}),
    check=check,
)
