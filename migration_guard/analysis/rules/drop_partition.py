"""Dropping or truncating a partition deletes every row stored in it.

Flagged for MySQL's ``ALTER TABLE ... DROP PARTITION p`` and
``ALTER TABLE ... TRUNCATE PARTITION p`` (each statement once, naming the
partitions). The rows disappear without any DELETE trigger firing and cannot
be rolled back.

Instead, move the partition's rows out first with
``ALTER TABLE t EXCHANGE PARTITION p WITH TABLE t_archive_p`` (the archive
table then holds them), verify, and drop the now empty partition.
"""

from __future__ import annotations

from collections.abc import Iterator

from migration_guard.analysis.model import Operation, OpKind
from migration_guard.analysis.rules import Rule, RuleContext, Violation


def check(operation: Operation, context: RuleContext) -> Iterator[Violation]:
    verb = "truncating" if operation.kind is OpKind.TRUNCATE_PARTITION else "dropping"
    names = ", ".join(operation.partitions) or "(unknown partition)"
    plural = "s" if len(operation.partitions) > 1 else ""
    yield Violation(
        f"{verb} partition{plural} {names} of {operation.table or '(unknown table)'} "
        "deletes every row stored in it",
        operation.table,
    )


RULE = Rule(
    id="drop-partition",
    summary="Dropping or truncating a partition deletes its rows.",
    description=__doc__ or "",
    hint=(
        "Move the rows out first with EXCHANGE PARTITION into an archive table, verify, "
        "then drop the empty partition."
    ),
    kinds=frozenset({OpKind.DROP_PARTITION, OpKind.TRUNCATE_PARTITION}),
    check=check,
)
