"""Which sqlglot dialect family reads a dialect name, without importing sqlglot.

The family decides quoting and type spellings; MariaDB reads like MySQL. The
names themselves come from :mod:`migration_guard.config`, the one list of
dialects.
"""

from __future__ import annotations

from dataclasses import dataclass

from migration_guard.config import DIALECT_ALIASES, DIALECTS, Dialect

#: sqlglot's names of the families, each once (``mysql``, ``postgres``, ``sqlite``).
FAMILIES = tuple(dict.fromkeys(dialect.sqlglot_name for dialect in Dialect))


def sqlglot_family(dialect: str) -> str | None:
    """sqlglot's name for ``dialect`` (any spelling config accepts), or None if unknown."""
    name = dialect.strip().lower()
    name = DIALECT_ALIASES.get(name, name)
    return Dialect(name).sqlglot_name if name in DIALECTS else None


@dataclass(frozen=True)
class SqlFamily:
    """What the analysis reads differently from one dialect family to another.

    Each difference is named here once, so the parser and the quick path ask
    "does this family do X" instead of comparing dialect names.
    """

    name: str
    #: MySQL runs what ``/*!NNNNN ... */`` comments hold.
    executes_version_comments: bool = False
    #: ``DELETE``/``UPDATE`` may carry ``LOW_PRIORITY``, ``QUICK``, ``IGNORE``.
    has_dml_modifiers: bool = False
    #: MySQL's ``DO expr`` evaluates expressions; PostgreSQL's ``DO`` runs a code block.
    do_evaluates_expressions: bool = False
    #: MySQL's ``PREPARE s FROM 'sql'``; elsewhere ``PREPARE s AS sql``.
    prepares_from_string: bool = False
    #: MySQL's ``DELETE FROM t1, t2 USING ...`` deletes from the FROM tables.
    deletes_from_using_sources: bool = False
    #: Numeric types may be ``UNSIGNED``.
    has_unsigned_types: bool = False
    #: Columns may carry ``COMMENT 'text'``.
    has_column_comments: bool = False
    #: The column keyword for an auto-incremented key, if any.
    auto_increment: str | None = None
    #: The characters that quote names.
    name_quotes: tuple[str, ...] = ('"',)


_MYSQL = SqlFamily(
    "mysql",
    executes_version_comments=True,
    has_dml_modifiers=True,
    do_evaluates_expressions=True,
    prepares_from_string=True,
    deletes_from_using_sources=True,
    has_unsigned_types=True,
    has_column_comments=True,
    auto_increment="AUTO_INCREMENT",
    name_quotes=("`",),
)
_FAMILY_TRAITS = {
    "mysql": _MYSQL,
    "postgres": SqlFamily("postgres"),
    "sqlite": SqlFamily("sqlite", auto_increment="AUTOINCREMENT", name_quotes=('"', "`")),
}
#: sqlglot's generic dialect, for a dialect name nobody knows.
_GENERIC = SqlFamily("")


def family_traits(family: str) -> SqlFamily:
    """The traits of a sqlglot family name (generic ones for an unknown name)."""
    return _FAMILY_TRAITS.get(family, _GENERIC)
