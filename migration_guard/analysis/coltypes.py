"""The one column-type normaliser of the analysis: spellings to :class:`ColumnType`.

The rules compare column types by the names sqlglot gives them, so both ways
of reading a type end up here: the full parser hands over the name sqlglot
parsed (:func:`sqlglot_type_name`), and the quick path looks the user's
spelling up in :data:`TYPE_SPELLINGS`, which lists what sqlglot makes of each
spelling in each family. ``tests/unit/test_quick.py`` checks every entry
against the full parser, so a sqlglot release that reads a spelling
differently shows up there. No sqlglot import: the quick path loads this.
"""

from __future__ import annotations

from collections.abc import Sequence

from migration_guard.analysis.families import FAMILIES
from migration_guard.analysis.model import ColumnType

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
    return ColumnType(
        name=name,
        args=tuple(args),
        unsigned=unsigned,
        text=f"{text} UNSIGNED" if unsigned else text,
    )


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
    # sqlglot reads MySQL's plain TIMESTAMP as TIMESTAMPTZ (it converts to UTC),
    # but an explicit WITHOUT TIME ZONE as TIMESTAMPNTZ (since sqlglot 30.31).
    ("TIMESTAMP", "WITHOUT", "TIME", "ZONE"): TypeSpelling("TIMESTAMP", mysql="TIMESTAMPNTZ"),
}
#: First word -> the spellings it starts, longest first (``TIMESTAMP WITH TIME ZONE``
#: before ``TIMESTAMP``), as sqlglot reads the longest one.
SPELLINGS_BY_FIRST_WORD: dict[str, list[tuple[str, ...]]] = {}
for _words in sorted(TYPE_SPELLINGS, key=len, reverse=True):
    SPELLINGS_BY_FIRST_WORD.setdefault(_words[0], []).append(_words)
