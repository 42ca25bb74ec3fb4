"""The migration lock: one guarded run per database at a time.

Alembic has no lock of its own, so two deploys that start ``upgrade`` together
would both apply the same revisions. The lock is per database and lives in the
database's own terms (``GET_LOCK`` on MySQL/MariaDB, ``pg_advisory_lock`` on
PostgreSQL, an ``flock``-ed file next to a SQLite database), held on a dedicated
connection (or file descriptor) for the whole run. The server or the kernel frees
it when the holder dies, so a killed run never leaves it behind.

The lock can also be lost while its holder lives on (a ``wait_timeout``, a proxy, a
failover or a ``KILL`` ends its connection). A guarded run therefore asks the database
whether it still holds the lock (:func:`still_held`) after each revision, before it
commits, and before it restores; the run record carries the holder and a heartbeat.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from migration_guard.errors import MigrationGuardError

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

    from migration_guard.dialects.base import HeldLock

#: The lock's name; SQLite uses it in the lock file's name (``app.db.migration-guard.lock``).
LOCK_NAME = "migration-guard"
DEFAULT_LOCK_TIMEOUT = 60.0


class LockLost(MigrationGuardError):
    """The migration lock was taken away mid-run (its connection ended): the run stops
    before it commits."""


def acquire(url: URL, *, timeout: float = DEFAULT_LOCK_TIMEOUT, name: str = LOCK_NAME) -> HeldLock:
    """Take the migration lock of the database at ``url``, waiting up to ``timeout`` s.

    Raises :class:`~migration_guard.errors.LockTimeout` naming the holder.
    """
    from migration_guard.dialects import get_dialect_ops

    return get_dialect_ops(url.get_backend_name()).acquire_lock(url, name, timeout)


def still_held(url: URL, lock: HeldLock) -> bool:
    """Whether ``lock`` is still held by this process (asked of the database itself:
    ``IS_USED_LOCK`` on MySQL/MariaDB, ``pg_locks`` on PostgreSQL, the lock file's
    owner on SQLite)."""
    from migration_guard.dialects import get_dialect_ops

    return get_dialect_ops(url.get_backend_name()).lock_is_held(lock)


def retake(url: URL, name: str = LOCK_NAME) -> HeldLock | None:
    """Take the lock again without waiting, or None when another run holds it now."""
    from migration_guard.errors import LockTimeout

    try:
        return acquire(url, timeout=0, name=name)
    except LockTimeout:
        return None
