"""The one column-type normaliser of the analysis: spellings to :class:`ColumnType`.

Operations carry column types by the names sqlglot gives them, so both ways
of reading a type end up here: the full parser hands over the name sqlglot
parsed (:func:`sqlglot_type_name`), and the quick path looks the user's
spelling up in :data:`TYPE_SPELLINGS`, which lists what sqlglot makes of each
spelling in each family. The rules then compare types through
:func:`canonical_type`, which folds the remaining spellings (aliases, serials,
MySQL's BOOLEAN...) into one name per type. ``tests/unit/test_quick.py`` checks every entry
against the full parser, so a sqlglot release that reads a spelling
differently shows up there. No sqlglot import: the quick path loads this.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from migration_guard.analysis.families import FAMILIES
from migration_guard.analysis.model import ColumnType
from migration_guard.config import MYSQL_FAMILY

#: sqlglot spells MySQL's unsigned types with a leading U.
_UNSIGNED_TYPES = {
    "UBIGINT": "BIGINT",
    "UINT": "INT",
    "UMEDIUMINT": "MEDIUMINT",
    "USMALLINT": "SMALLINT",
    "UTINYINT": "TINYINT",
    "UDECIMAL": "DECIMAL",
    "UDOUBLE": "DOUBLE",
}


def sqlglot_type_name(name: str, user_defined_kind: object = None) -> tuple[str, bool]:
    """(type name, unsigned) for the name of a sqlglot ``DataType.Type``."""
    if name in _UNSIGNED_TYPES:
        return _UNSIGNED_TYPES[name], True
    if name == "USERDEFINED":
        return str(user_defined_kind or "USER-DEFINED").upper(), False
    return name, False


def column_type(
    name: str, params: Sequence[str], args: Sequence[int], *, unsigned: bool
) -> ColumnType:
    """A column type; ``params`` as written (for the text), ``args`` the numeric ones."""
    text = f"{name}({', '.join(params)})" if params else name
    # name, args, unsigned, text (positional: the quick path makes one per column)
    return ColumnType(name, tuple(args), unsigned, f"{text} UNSIGNED" if unsigned else text)


class TypeSpelling:
    """How sqlglot names one type spelling, and which parameters it may carry."""

    __slots__ = ("max_args", "names", "unsigned")

    def __init__(
        self, name: str, max_args: int = 0, *, unsigned: bool = False, **per_family: str | None
    ) -> None:
        self.names = {family: per_family.get(family, name) for family in FAMILIES}
        self.max_args = max_args
        self.unsigned = unsigned


TYPE_SPELLINGS: dict[tuple[str, ...], TypeSpelling] = {
    ("INT",): TypeSpelling("INT", 1, unsigned=True),
    ("INTEGER",): TypeSpelling("INT", 1, unsigned=True),
    ("INT4",): TypeSpelling("INT", 1, unsigned=True),
    ("BIGINT",): TypeSpelling("BIGINT", 1, unsigned=True),
    ("INT8",): TypeSpelling("BIGINT", 1, mysql=None, sqlite=None),
    ("SMALLINT",): TypeSpelling("SMALLINT", 1, unsigned=True),
    ("INT2",): TypeSpelling("SMALLINT", 1),
    ("TINYINT",): TypeSpelling("TINYINT", 1, unsigned=True),
    ("MEDIUMINT",): TypeSpelling("MEDIUMINT", 1, unsigned=True),
    ("SERIAL",): TypeSpelling("SERIAL"),
    ("BIGSERIAL",): TypeSpelling("BIGSERIAL", mysql=None),
    ("SMALLSERIAL",): TypeSpelling("SMALLSERIAL", mysql=None),
    ("NUMERIC",): TypeSpelling("DECIMAL", 2, unsigned=True),
    ("DECIMAL",): TypeSpelling("DECIMAL", 2, unsigned=True),
    ("REAL",): TypeSpelling("FLOAT", sqlite="DOUBLE"),
    ("FLOAT",): TypeSpelling("DOUBLE", 1, mysql="FLOAT"),
    ("FLOAT4",): TypeSpelling("FLOAT"),
    ("FLOAT8",): TypeSpelling("DOUBLE"),
    ("DOUBLE",): TypeSpelling("DOUBLE", 2, unsigned=True),
    ("DOUBLE", "PRECISION"): TypeSpelling("DOUBLE"),
    ("BOOLEAN",): TypeSpelling("BOOLEAN"),
    ("BOOL",): TypeSpelling("BOOLEAN"),
    ("VARCHAR",): TypeSpelling("VARCHAR", 1),
    ("CHARACTER", "VARYING"): TypeSpelling("VARCHAR", 1),
    ("CHAR",): TypeSpelling("CHAR", 1),
    ("CHARACTER",): TypeSpelling("CHAR", 1),
    ("TEXT",): TypeSpelling("TEXT"),
    ("TINYTEXT",): TypeSpelling("TINYTEXT"),
    ("MEDIUMTEXT",): TypeSpelling("MEDIUMTEXT"),
    ("LONGTEXT",): TypeSpelling("LONGTEXT"),
    ("BLOB",): TypeSpelling("BLOB", postgres="VARBINARY", sqlite="VARBINARY"),
    ("LONGBLOB",): TypeSpelling("LONGBLOB"),
    ("BYTEA",): TypeSpelling("VARBINARY"),
    ("BINARY",): TypeSpelling("BINARY", 1),
    ("VARBINARY",): TypeSpelling("VARBINARY", 1),
    ("BIT",): TypeSpelling("BIT", 1),
    ("UUID",): TypeSpelling("UUID"),
    ("JSON",): TypeSpelling("JSON"),
    ("JSONB",): TypeSpelling("JSONB"),
    ("DATE",): TypeSpelling("DATE"),
    ("YEAR",): TypeSpelling("YEAR", 1),
    ("DATETIME",): TypeSpelling("DATETIME", 1),
    ("TIME",): TypeSpelling("TIME", 1),
    ("TIMETZ",): TypeSpelling("TIMETZ", 1),
    ("TIME", "WITH", "TIME", "ZONE"): TypeSpelling("TIMETZ"),
    ("TIME", "WITHOUT", "TIME", "ZONE"): TypeSpelling("TIME"),
    ("TIMESTAMP",): TypeSpelling("TIMESTAMP", 1, mysql="TIMESTAMPTZ"),
    ("TIMESTAMPTZ",): TypeSpelling("TIMESTAMPTZ", 1),
    ("TIMESTAMP", "WITH", "TIME", "ZONE"): TypeSpelling("TIMESTAMPTZ"),
    # sqlglot reads MySQL's plain TIMESTAMP as TIMESTAMPTZ (it converts to UTC); an
    # explicit WITHOUT TIME ZONE is TIMESTAMP up to 30.30 and TIMESTAMPNTZ since 30.31.
    # The versions we accept disagree, so the quick path leaves that one to the parser.
    ("TIMESTAMP", "WITHOUT", "TIME", "ZONE"): TypeSpelling("TIMESTAMP", mysql=None),
}
#: First word -> the spellings it starts, longest first (``TIMESTAMP WITH TIME ZONE``
#: before ``TIMESTAMP``), as sqlglot reads the longest one.
SPELLINGS_BY_FIRST_WORD: dict[str, list[tuple[str, ...]]] = {}
for _words in sorted(TYPE_SPELLINGS, key=len, reverse=True):
    SPELLINGS_BY_FIRST_WORD.setdefault(_words[0], []).append(_words)


# --------------------------------------------------------------------------- canonical types
#
# The rules compare an old and a new type across every spelling a user, sqlglot
# or the quick path may produce: the canonical type below is what they compare.

#: Integer types -> their width in bits.
INTEGER_BITS = {"TINYINT": 8, "SMALLINT": 16, "MEDIUMINT": 24, "INT": 32, "BIGINT": 64}
_ALIASES = {
    "INTEGER": "INT",
    "INT4": "INT",
    "INT2": "SMALLINT",
    "INT8": "BIGINT",
    "INT1": "TINYINT",
    "INT3": "MEDIUMINT",
    "MIDDLEINT": "MEDIUMINT",
    "SERIAL4": "INT",
    "SERIAL2": "SMALLINT",
    "SMALLSERIAL": "SMALLINT",
    "SERIAL8": "BIGINT",
    "BIGSERIAL": "BIGINT",
    "NUMERIC": "DECIMAL",
    "DEC": "DECIMAL",
    "FIXED": "DECIMAL",
    "NUMBER": "DECIMAL",
    "FLOAT4": "REAL",
    "FLOAT8": "DOUBLE",
    "DOUBLE PRECISION": "DOUBLE",
    "CHARACTER": "CHAR",
    "NCHAR": "CHAR",
    "NATIONAL CHAR": "CHAR",
    "NATIONAL CHARACTER": "CHAR",
    "BPCHAR": "CHAR",
    "CHARACTER VARYING": "VARCHAR",
    "CHAR VARYING": "VARCHAR",
    "NVARCHAR": "VARCHAR",
    "NATIONAL VARCHAR": "VARCHAR",
    "VARCHAR2": "VARCHAR",
    "BYTEA": "BYTEA",
    "TIMESTAMP WITHOUT TIME ZONE": "TIMESTAMP",
    "TIMESTAMPNTZ": "TIMESTAMP",
    "TIME WITHOUT TIME ZONE": "TIME",
    "BOOL": "BOOLEAN",
}


@dataclass(frozen=True)
class CanonicalType:
    """A type as the rules compare it: one name per type, whatever the spelling."""

    name: str
    args: tuple[int, ...]
    unsigned: bool


def canonical_type(column_type: ColumnType, dialect: str) -> CanonicalType:
    """Canonical name, arguments and signedness, whatever spelling produced them."""
    raw = (column_type.name or column_type.text).upper().strip()
    args = tuple(column_type.args)
    match = re.search(r"\(([\d\s,]*)\)", raw)
    if match:
        if not args:
            args = tuple(int(part) for part in re.findall(r"\d+", match.group(1)))
        raw = raw[: match.start()] + raw[match.end() :]
    words = raw.split()
    unsigned = column_type.unsigned or "UNSIGNED" in words
    words = [word for word in words if word not in {"UNSIGNED", "SIGNED", "ZEROFILL"}]
    name = " ".join(words)
    if name in _UNSIGNED_TYPES:
        name, unsigned = _UNSIGNED_TYPES[name], True
    if name in {"SERIAL", "SERIAL4"} and dialect in MYSQL_FAMILY:
        name, unsigned = "BIGINT", True
    elif name == "SERIAL":
        name = "INT"
    name = _ALIASES.get(name, name)
    if name == "BOOLEAN" and dialect in MYSQL_FAMILY:
        name, args = "TINYINT", ()
    if name == "FLOAT" and args:
        # FLOAT(p) is single precision up to 24 bits of mantissa, double above.
        name, args = ("REAL" if args[0] <= 24 else "DOUBLE"), ()
    elif name == "FLOAT":
        name = "REAL" if dialect in MYSQL_FAMILY else "DOUBLE"
    elif name == "REAL" and dialect in MYSQL_FAMILY:
        name = "DOUBLE"
    if name in INTEGER_BITS:
        args = ()  # MySQL display width, no effect on the range
    return CanonicalType(name, args, unsigned)
