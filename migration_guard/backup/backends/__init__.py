"""Backup backends: a registry fed by the ``migration_guard.backends`` entry points."""

from __future__ import annotations

from migration_guard.backup.backends.base import Backend, DumpResult, TableStats
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
    },
)

#: Backends tried in order for a dialect; the first one whose tools exist wins.
DEFAULT_BACKENDS: dict[str, tuple[str, ...]] = {
    "mysql": ("mysqldump", "native"),
    "mariadb": ("mysqldump", "native"),
    "sqlite": ("sqlite",),
}


def get_backend(name: str) -> Backend:
    """A new instance of the backend called ``name`` (:class:`UnknownNameError` if none)."""
    return BACKENDS.get(name)()


def default_backend(dialect: str) -> str:
    """The backend to use for ``dialect`` when none was asked for.

    MySQL/MariaDB use ``mysqldump`` when a client binary is installed, else the
    pure-Python ``native`` backend; SQLite uses ``sqlite``.
    """
    name = dialect.split("+", 1)[0].lower()
    candidates = DEFAULT_BACKENDS.get(name)
    if candidates is None:
        if name == "postgresql":
            raise UsageError(
                "backups of PostgreSQL databases are not yet supported "
                "(a pg_dump backend is planned); use pg_dump directly for now"
            )
        raise UsageError(
            f"no backup backend supports the {name!r} dialect; "
            f"supported dialects: {', '.join(sorted(DEFAULT_BACKENDS))}"
        )
    for candidate in candidates:
        if get_backend(candidate).available() is None:
            return candidate
    return candidates[-1]
