"""Backup backends: a registry fed by the ``migration_guard.backends`` entry points."""

from __future__ import annotations

from migration_guard.backup.backends.base import Backend, DumpResult, TableStats
from migration_guard.config import MYSQL_FAMILY, Dialect
from migration_guard.errors import UsageError
from migration_guard.registry import Registry

__all__ = [
    "BACKENDS",
    "Backend",
    "DumpResult",
    "TableStats",
    "default_backend",
    "get_backend",
]

BACKENDS = Registry[type[Backend]](
    "migration_guard.backends",
    "backend",
    {
        "sqlite": "migration_guard.backup.backends.sqlite:SQLiteBackend",
        "mysqldump": "migration_guard.backup.backends.mysqldump:MysqldumpBackend",
        "native": "migration_guard.backup.backends.native:NativeBackend",
        "binlog": "migration_guard.backup.backends.binlog:BinlogBackend",
        "pgdump": "migration_guard.backup.backends.pgdump:PgdumpBackend",
    },
)

#: Backends tried in order for a dialect; the first one whose tools exist wins.
DEFAULT_BACKENDS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(sorted(MYSQL_FAMILY), ("mysqldump", "native")),
    Dialect.SQLITE.value: ("sqlite",),
    Dialect.POSTGRESQL.value: ("pgdump",),
}


def get_backend(name: str) -> Backend:
    """A new instance of the backend called ``name`` (:class:`UnknownNameError` if none)."""
    return BACKENDS.get(name)()


def default_backend(dialect: str) -> str:
    """The backend to use for ``dialect`` when none was asked for.

    MySQL/MariaDB use ``mysqldump`` when a client binary is installed, else the
    pure-Python ``native`` backend; SQLite uses ``sqlite``; PostgreSQL ``pgdump``.
    """
    name = dialect.split("+", 1)[0].lower()
    candidates = DEFAULT_BACKENDS.get(name)
    if candidates is None:
        raise UsageError(
            f"no backup backend supports the {name!r} dialect; "
            f"supported dialects: {', '.join(sorted(DEFAULT_BACKENDS))}"
        )
    for candidate in candidates:
        if get_backend(candidate).available() is None:
            return candidate
    return candidates[-1]
