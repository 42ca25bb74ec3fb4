"""What the safety backup of a run covers.

``touched`` (the default scope) backs up the tables the plan's statements touch, the
protected tables and the version table: enough to restore the state from before the
run without copying the whole database. A statement whose target cannot be known
widens the scope to everything.
"""

from __future__ import annotations

from collections.abc import Sequence

from migration_guard.analysis.analyzer import operations_of
from migration_guard.analysis.model import OpKind, Statement
from migration_guard.config import ProtectedTables


def backup_scope(
    statements: Sequence[Statement],
    live: Sequence[str],
    dialect: str,
    *,
    full: bool,
    protected: ProtectedTables | None,
    version_table: str,
) -> list[str]:
    """The live tables (``live``, as the database spells them) the safety backup takes
    (``protected`` None: only those the statements touch, and the version table)."""
    by_lower = {name.lower(): name for name in live}
    if full or (protected is not None and protected.protects_everything):
        return list(live)
    wanted: dict[str, None] = {}
    for statement in statements:
        for operation in operations_of(statement, dialect):
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
