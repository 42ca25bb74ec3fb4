"""MySQL and MariaDB's migration lock: ``GET_LOCK`` on a connection of its own."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from migration_guard.dialects.base import HeldLock, sha256_text
from migration_guard.dialects.locks import lock_query_true

#: GET_LOCK names longer than this are refused by the server.
MYSQL_LOCK_NAME_LIMIT = 64


def mysql_lock_name(name: str, database: str) -> str:
    """The server-wide lock name for ``name`` in ``database``, at most 64 characters."""
    full = f"{name}:{database}"
    if len(full) <= MYSQL_LOCK_NAME_LIMIT:
        return full
    return f"{name[:20]}:{sha256_text(full)[:40]}"


class MySQLLock(HeldLock):
    """A held ``GET_LOCK``; released with ``RELEASE_LOCK`` and its connection closed."""

    def __init__(self, name: str, conn: Connection, engine: Engine) -> None:
        super().__init__(name, f"GET_LOCK('{name}')", conn)
        self._conn = conn
        self._engine = engine

    def _release(self) -> None:
        try:
            self._conn.execute(sa.text("SELECT RELEASE_LOCK(:name)"), {"name": self.name})
        except sa.exc.SQLAlchemyError:
            pass  # a lost connection has released the lock already
        finally:
            self._conn.close()
            self._engine.dispose()


def get_lock_still_held(lock: HeldLock) -> bool:
    """``IS_USED_LOCK(name) = CONNECTION_ID()`` on the lock's own connection; a lock
    whose connection is gone (``wait_timeout``, a proxy, ``KILL``) is not held."""
    conn = lock.connection
    if lock.released or conn is None:
        return False
    return lock_query_true(
        conn, "SELECT IS_USED_LOCK(:name) = CONNECTION_ID()", {"name": lock.name}
    )
