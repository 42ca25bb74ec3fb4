"""Which sqlglot dialect family reads a dialect name, without importing sqlglot.

The family decides quoting and type spellings; MariaDB reads like MySQL. The
names themselves come from :mod:`migration_guard.config`, the one list of
dialects.
"""

from __future__ import annotations

from migration_guard.config import DIALECT_ALIASES, DIALECTS, Dialect

#: sqlglot's names of the families, each once (``mysql``, ``postgres``, ``sqlite``).
FAMILIES = tuple(dict.fromkeys(dialect.sqlglot_name for dialect in Dialect))


def sqlglot_family(dialect: str) -> str | None:
    """sqlglot's name for ``dialect`` (any spelling config accepts), or None if unknown."""
    name = dialect.strip().lower()
    name = DIALECT_ALIASES.get(name, name)
    return Dialect(name).sqlglot_name if name in DIALECTS else None
