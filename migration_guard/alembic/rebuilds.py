"""Table rebuilds (Alembic's batch mode) that fire no foreign-key action.

SQLite's batch mode copies a table into ``_alembic_tmp_<name>``, drops the old one and
renames the copy. With ``PRAGMA foreign_keys=ON`` the drop deletes every row of the
old table first, and each ``ON DELETE CASCADE``/``SET NULL`` fires: the child tables
lose their rows although the migration never asked for it. The offline plan does not
show the rebuild (Alembic renders batch operations as plain ``ALTER``), so the guard
acts when the copy is created, before the drop: the dialect switches the actions off
for the rest of the run (SQLite can only do that outside a transaction, so the open
one is committed first; a later failure is restored from the run's backups like any
other), and the foreign keys are checked once the run is over.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from migration_guard.alembic.intercept import BATCH_TEMP_PREFIX
from migration_guard.analysis.model import Operation, OpKind
from migration_guard.errors import MigrationGuardError

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from migration_guard.alembic.session import GuardSession
    from migration_guard.dialects.base import DialectOps


def is_rebuild_start(operation: Operation) -> bool:
    """Whether ``operation`` creates the copy of a table that batch mode rebuilds."""
    return (
        operation.kind is OpKind.CREATE_TABLE
        and operation.table is not None
        and operation.table.name.lower().startswith(BATCH_TEMP_PREFIX)
    )


def rebuild_aware(
    session: GuardSession, connection: Connection
) -> Callable[[Operation], list[str]]:
    """The interceptor's recording hook for ``session``: records each change and, at
    the start of a rebuild, keeps foreign-key actions from firing on ``connection``."""

    def record(operation: Operation) -> list[str]:
        if is_rebuild_start(operation) and not session.fk_suspended and session.ops:
            session.fk_suspended = session.ops.suspend_foreign_key_actions(connection)
        return session.changes.record(operation)

    return record


def check_after_rebuilds(ops: DialectOps, conn: Connection) -> None:
    """Fail the run when a row refers to no row any more (then it is restored)."""
    violations = ops.foreign_key_violations(conn)
    if violations:
        shown = "; ".join(violations[:5]) + ("; ..." if len(violations) > 5 else "")
        raise MigrationGuardError(
            f"after the table rebuild {len(violations)} row(s) break a foreign key "
            f"(foreign-key actions were off during the rebuild): {shown}"
        )
