"""The migration lock: one guarded run per database at a time.

Alembic has no lock of its own, so two deploys that start ``upgrade`` together
would both apply the same revisions. The lock is per database and lives in the
database's own terms (``GET_LOCK`` on MySQL/MariaDB, ``pg_advisory_lock`` on
PostgreSQL, an ``flock``-ed file next to a SQLite database), held on a dedicated
connection (or file descriptor) for the whole run. The server or the kernel frees
it when the holder dies, so a killed run never leaves it behind.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

    from migration_guard.dialects.base import HeldLock

#: The lock's name; SQLite uses it in the lock file's name (``app.db.migration-guard.lock``).
LOCK_NAME = "migration-guard"
DEFAULT_LOCK_TIMEOUT = 60.0


def acquire(url: URL, *, timeout: float = DEFAULT_LOCK_TIMEOUT, name: str = LOCK_NAME) -> HeldLock:
    """Take the migration lock of the database at ``url``, waiting up to ``timeout`` s.

    Raises :class:`~migration_guard.errors.LockTimeout` naming the holder.
    """
    from migration_guard.dialects import get_dialect_ops

    return get_dialect_ops(url.get_backend_name()).acquire_lock(url, name, timeout)
