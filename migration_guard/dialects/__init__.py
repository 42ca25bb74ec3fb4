"""Per-database facts in one place: quoting, listing, checksums, schema objects.

Look them up by SQLAlchemy dialect name with :func:`get_dialect_ops`.
"""

from __future__ import annotations

import importlib

from migration_guard.dialects.base import DialectOps, TableStats
from migration_guard.errors import UnknownNameError

__all__ = ["DIALECT_OPS", "DialectOps", "TableStats", "get_dialect_ops"]

#: SQLAlchemy dialect name -> ``module:Class``; modules load on first use.
DIALECT_OPS: dict[str, str] = {
    "mysql": "migration_guard.dialects.mysql:MySQLDialectOps",
    "mariadb": "migration_guard.dialects.mysql:MariaDBDialectOps",
    "sqlite": "migration_guard.dialects.sqlite:SQLiteDialectOps",
    "postgresql": "migration_guard.dialects.postgresql:PostgreSQLDialectOps",
}

_instances: dict[str, DialectOps] = {}


def get_dialect_ops(dialect_name: str) -> DialectOps:
    """The :class:`DialectOps` for a SQLAlchemy dialect name (``mysql``, ``sqlite``...).

    A driver suffix is ignored (``mysql+pymysql`` -> ``mysql``).
    """
    name = dialect_name.split("+", 1)[0].lower()
    ops = _instances.get(name)
    if ops is not None:
        return ops
    reference = DIALECT_OPS.get(name)
    if reference is None:
        raise UnknownNameError("dialect", name, DIALECT_OPS)
    module_name, _, class_name = reference.partition(":")
    ops_class: type[DialectOps] = getattr(importlib.import_module(module_name), class_name)
    ops = ops_class()
    _instances[name] = ops
    return ops
