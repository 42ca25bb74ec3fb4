"""Per-database facts in one place: quoting, listing, checksums, locks, schema objects.

Look them up by SQLAlchemy dialect name with :func:`get_dialect_ops`. Support
for another database registers a :class:`DialectOps` subclass under the
``migration_guard.dialects`` entry-point group.
"""

from __future__ import annotations

from functools import cache

from migration_guard.dialects.base import DialectOps, TableStats
from migration_guard.registry import Registry

__all__ = ["DIALECT_OPS", "DialectOps", "TableStats", "get_dialect_ops"]

#: SQLAlchemy dialect name -> its :class:`DialectOps` class; modules load on first use.
DIALECT_OPS: Registry[type[DialectOps]] = Registry(
    "migration_guard.dialects",
    "dialect",
    {
        "mysql": "migration_guard.dialects.mysql:MySQLDialectOps",
        "mariadb": "migration_guard.dialects.mysql:MariaDBDialectOps",
        "sqlite": "migration_guard.dialects.sqlite:SQLiteDialectOps",
        "postgresql": "migration_guard.dialects.postgresql:PostgreSQLDialectOps",
    },
)


@cache
def _instance(name: str) -> DialectOps:
    return DIALECT_OPS.get(name)()


def get_dialect_ops(dialect_name: str) -> DialectOps:
    """The :class:`DialectOps` for a SQLAlchemy dialect name (``mysql``, ``sqlite``...).

    A driver suffix is ignored (``mysql+pymysql`` -> ``mysql``); an unknown name
    raises :class:`~migration_guard.errors.UnknownNameError` listing the known ones.
    """
    return _instance(dialect_name.split("+", 1)[0].lower())
