"""Writes to protected tables that reach the driver without passing the interceptor.

A raw DBAPI cursor (``op.get_bind().connection.cursor()``, SQLite's ``executescript``)
sends SQL below SQLAlchemy, where no Python hook sees it. Where the driver can ask
before every statement it prepares (SQLite's authorizer, through
:meth:`~migration_guard.dialects.base.DialectOps.guard_raw_writes`), the connections of
a guarded run refuse a delete, update, drop or alter of a protected table unless it is
the statement the interceptor has just judged. Elsewhere only the protection inside the
database (``migration-guard protect install``) stops such a statement.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from migration_guard.config import ProtectedTables

__all__ = ["RawWriteGuard"]


class RawWriteGuard:
    """Watches the driver connections of one guarded run."""

    def __init__(self, protected: ProtectedTables, on_refused: Callable[[str, str], None]) -> None:
        self.protected = protected
        self.on_refused = on_refused
        self._judged = threading.local()
        #: id -> (the driver connection, kept alive so that its id is not reused; undo)
        self._undo: dict[int, tuple[Any, Callable[[], None] | None]] = {}

    def watch(self, conn: Any) -> None:
        """Guard the driver connection under SQLAlchemy connection ``conn`` (once)."""
        try:
            dbapi_connection = conn.connection.dbapi_connection
        except Exception:  # a closed or invalidated connection has none
            return
        key = id(dbapi_connection)
        if key in self._undo:
            return
        from migration_guard.dialects import get_dialect_ops

        try:
            ops = get_dialect_ops(conn.dialect.name)
        except Exception:  # a database migration-guard has no facts for
            self._undo[key] = (dbapi_connection, None)
            return
        self._undo[key] = (dbapi_connection, ops.guard_raw_writes(dbapi_connection, self._refuse))

    def judged(self, value: bool) -> None:
        """Whether the statement now going to the driver on this thread was judged."""
        self._judged.value = value

    def close(self) -> None:
        """Remove every hook :meth:`watch` installed (idempotent)."""
        while self._undo:
            _key, (_connection, undo) = self._undo.popitem()
            if undo is not None:
                try:
                    undo()
                except Exception:  # a connection closed meanwhile keeps nothing
                    continue

    def _refuse(self, kind: str, table: str) -> bool:
        if getattr(self._judged, "value", False):
            return False
        if not self.protected.is_protected(table):
            return False
        self.on_refused(kind, table)
        return True
