"""Changing a column's type can truncate, round or reject existing values, and rewrites the table.

Flagged for MySQL's ``MODIFY`` and ``CHANGE`` (they restate the whole column
definition), PostgreSQL's ``ALTER COLUMN ... [SET DATA] TYPE`` and Alembic's
``op.alter_column(type_=...)``.

When the previous type is known, from an earlier ``CREATE TABLE`` or
``ADD COLUMN`` in the same check, or from Alembic's ``existing_type=``, a
change that provably keeps every possible value is not a finding. Restating
the same type is not a finding either. The provable widenings are:

==========================  ==================================================  ==========
From                        To                                                  Dialects
==========================  ==================================================  ==========
integer type                integer type whose range contains the old range     all
                            (``TINYINT`` -> ``SMALLINT`` -> ``MEDIUMINT`` ->
                            ``INT`` -> ``BIGINT``; unsigned to unsigned; an
                            unsigned type to a strictly larger signed one;
                            never signed to unsigned)
integer type                ``DECIMAL(p,s)`` with ``p-s`` >= the integer's      all
                            digits (3/5/8/10/19, unsigned 3/5/8/10/20)
integer type                ``DOUBLE`` (up to ``INT``), ``FLOAT``/``REAL``      all
                            (up to ``SMALLINT``): exact in the mantissa
``DECIMAL(p,s)``            ``DECIMAL(p2,s2)`` with ``p2-s2 >= p-s`` and        all
                            ``s2 >= s`` (``NUMERIC`` is the same type;
                            ``DECIMAL`` alone is ``(10,0)`` in MySQL and
                            unbounded in PostgreSQL)
``FLOAT``/``REAL``          ``DOUBLE``/``DOUBLE PRECISION``                     all
``CHAR(n)``                 ``CHAR(m)``, ``VARCHAR(m)`` with ``m >= n``          all
``VARCHAR(n)``              ``VARCHAR(m)`` with ``m >= n``                       all
``CHAR``/``VARCHAR(n)``     ``TEXT`` when ``4n <= 65535`` (utf8mb4 worst        mysql
                            case), ``MEDIUMTEXT``, ``LONGTEXT``
``TINYTEXT``                ``TEXT`` -> ``MEDIUMTEXT`` -> ``LONGTEXT``, or      mysql
                            ``VARCHAR(m >= 255)``
``CHAR``/``VARCHAR``        ``TEXT``, ``VARCHAR`` without a length              postgresql
``BINARY(n)``/              ``VARBINARY(m >= n)``, ``BLOB`` family by byte      mysql
``VARBINARY(n)``            size (``TINYBLOB`` 255 ... ``LONGBLOB``)
``TINYBLOB`` ...            a larger ``BLOB`` type                              mysql
binary types                ``BYTEA``                                           postgresql
``DATE``                    ``DATETIME``; ``TIMESTAMP`` (not in MySQL, whose    all
                            ``TIMESTAMP`` stops in 2038)
``DATETIME(p)``,            the same type with fractional precision ``>= p``    all
``TIMESTAMP(p)``,
``TIME(p)``
==========================  ==================================================  ==========

A change of character set or collation written into the type, and any change
of an ``ENUM``/``SET`` value list, is never a widening. Everything else,
including every change whose previous type is unknown, is a finding: the
database may truncate strings, round numbers, fail half-way on values that no
longer fit, or (MySQL without strict mode) silently store different values.

Instead, use expand/contract: add a new column with the new type, backfill it
in batches, verify, switch reads and writes, and drop the old column in a later
release. With Alembic, state ``existing_type=`` so a widening is recognised.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator

from migration_guard.analysis.coltypes import INTEGER_BITS, CanonicalType, canonical_type
from migration_guard.analysis.model import ColumnType, Operation, OpKind
from migration_guard.analysis.rules import Rule, RuleContext, Violation
from migration_guard.config import MYSQL_FAMILY

#: Byte capacity of MySQL's TEXT and BLOB families.
_MYSQL_LOB_BYTES = {
    "TINYTEXT": 255,
    "TEXT": 65_535,
    "MEDIUMTEXT": 16_777_215,
    "LONGTEXT": 4_294_967_295,
    "TINYBLOB": 255,
    "BLOB": 65_535,
    "MEDIUMBLOB": 16_777_215,
    "LONGBLOB": 4_294_967_295,
}
_TEXTUAL = {"CHAR", "VARCHAR", "TINYTEXT", "TEXT", "MEDIUMTEXT", "LONGTEXT"}
_BINARY = {"BINARY", "VARBINARY", "TINYBLOB", "BLOB", "MEDIUMBLOB", "LONGBLOB", "BYTEA"}
_FRACTIONAL_TEMPORAL = {"DATETIME", "TIMESTAMP", "TIME"}
#: Types fully described by name, arguments and signedness; for any other type
#: (ENUM, SET, arrays...) two spellings are only the same type if their text is.
_MODELLED = (
    set(INTEGER_BITS)
    | _TEXTUAL
    | _BINARY
    | _FRACTIONAL_TEMPORAL
    | {"DECIMAL", "REAL", "DOUBLE", "DATE", "BOOLEAN", "JSON", "UUID", "YEAR"}
)
#: utf8mb4 stores a character in at most four bytes.
_MAX_BYTES_PER_CHAR = 4
_UNBOUNDED = math.inf


def _integer_range(type_: CanonicalType) -> tuple[int, int]:
    bits = INTEGER_BITS[type_.name]
    if type_.unsigned:
        return 0, 2**bits - 1
    return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1


def _decimal_shape(type_: CanonicalType, dialect: str) -> tuple[float, float]:
    """(integer digits, scale) of a DECIMAL; infinite for PostgreSQL's bare NUMERIC."""
    if not type_.args:
        return (10, 0) if dialect in MYSQL_FAMILY else (_UNBOUNDED, _UNBOUNDED)
    precision = type_.args[0]
    scale = type_.args[1] if len(type_.args) > 1 else 0
    return precision - scale, scale


def _holds(type_: CanonicalType, dialect: str) -> tuple[float, float]:
    """(most characters, most bytes) a textual or binary value of ``type_`` can have."""
    mysql = dialect in MYSQL_FAMILY
    if type_.name in {"CHAR", "BINARY"}:
        length = type_.args[0] if type_.args else 1
        if type_.name == "CHAR" and not type_.args and not mysql:
            return _UNBOUNDED, _UNBOUNDED  # PostgreSQL bpchar without length
        return length, length * (_MAX_BYTES_PER_CHAR if type_.name == "CHAR" else 1)
    if type_.name in {"VARCHAR", "VARBINARY"}:
        if not type_.args:
            return _UNBOUNDED, _UNBOUNDED
        length = type_.args[0]
        return length, length * (_MAX_BYTES_PER_CHAR if type_.name == "VARCHAR" else 1)
    if mysql and type_.name in _MYSQL_LOB_BYTES:
        size = _MYSQL_LOB_BYTES[type_.name]
        return size, size
    return _UNBOUNDED, _UNBOUNDED


def _capacity(type_: CanonicalType, dialect: str) -> tuple[float, float]:
    """(characters, bytes) up to which any value fits into ``type_``."""
    if type_.name in {"CHAR", "VARCHAR", "BINARY", "VARBINARY"}:
        if not type_.args:
            # A bare CHAR/BINARY is one character wide (PostgreSQL's bare bpchar is not,
            # but the two cannot be told apart here, so assume the narrower one).
            if type_.name in {"CHAR", "BINARY"}:
                return 1, _UNBOUNDED
            return _UNBOUNDED, _UNBOUNDED
        return type_.args[0], _UNBOUNDED
    if dialect in MYSQL_FAMILY and type_.name in _MYSQL_LOB_BYTES:
        return _UNBOUNDED, _MYSQL_LOB_BYTES[type_.name]
    return _UNBOUNDED, _UNBOUNDED


def _fits(old: CanonicalType, new: CanonicalType, dialect: str) -> bool:
    most_chars, most_bytes = _holds(old, dialect)
    cap_chars, cap_bytes = _capacity(new, dialect)
    return most_chars <= cap_chars and most_bytes <= cap_bytes


def _string_widening(old: CanonicalType, new: CanonicalType, dialect: str) -> bool:
    mysql = dialect in MYSQL_FAMILY
    if old.name in _TEXTUAL and new.name in _TEXTUAL:
        # CHAR pads and strips trailing spaces: only CHAR may become CHAR.
        if new.name == "CHAR" and old.name != "CHAR":
            return False
        if not mysql and new.name not in {"CHAR", "VARCHAR", "TEXT"}:
            return False
        return _fits(old, new, dialect)
    if old.name in _BINARY and new.name in _BINARY:
        if new.name == "BINARY" or (new.name == "BYTEA") == mysql:
            return False
        return _fits(old, new, dialect)
    return False


def _fractional_digits(type_: CanonicalType, dialect: str) -> int:
    if type_.args:
        return type_.args[0]
    return 0 if dialect in MYSQL_FAMILY else 6


def _canonical_text(column_type: ColumnType) -> str:
    return re.sub(r"\s+", "", (column_type.text or str(column_type)).upper())


def _texts_conflict(old: ColumnType, new: ColumnType) -> bool:
    """A differing character set or collation in the written types is a conversion."""
    if not old.text or not new.text:
        return False
    return _encoding(old) != _encoding(new)


def _encoding(column_type: ColumnType) -> tuple[str | None, str | None]:
    text = _canonical_text(column_type)
    charset = re.search(r"(?:CHARACTERSET|CHARSET)=?([A-Z0-9_]+)", text)
    collation = re.search(r"COLLATE=?([A-Z0-9_]+)", text)
    return (
        charset.group(1) if charset else None,
        collation.group(1) if collation else None,
    )


def is_widening(old_type: ColumnType, new_type: ColumnType, dialect: str) -> bool:
    """Whether every value of ``old_type`` survives unchanged in ``new_type``."""
    if _texts_conflict(old_type, new_type):
        return False
    old, new = canonical_type(old_type, dialect), canonical_type(new_type, dialect)
    if old == new:
        return old.name in _MODELLED or _canonical_text(old_type) == _canonical_text(new_type)
    if old.name in INTEGER_BITS:
        low, high = _integer_range(old)
        if new.name in INTEGER_BITS:
            new_low, new_high = _integer_range(new)
            return new_low <= low and high <= new_high
        if new.name == "DECIMAL" and not new.unsigned:
            digits, _ = _decimal_shape(new, dialect)
            return len(str(max(abs(low), high))) <= digits
        if new.name == "DOUBLE":
            return max(abs(low), high) <= 2**53
        if new.name == "REAL":
            return max(abs(low), high) <= 2**24
        return False
    if old.name == "DECIMAL" and new.name == "DECIMAL":
        if new.unsigned and not old.unsigned:
            return False
        old_digits, old_scale = _decimal_shape(old, dialect)
        new_digits, new_scale = _decimal_shape(new, dialect)
        return new_digits >= old_digits and new_scale >= old_scale
    if old.name == "REAL" and new.name == "DOUBLE":
        return True
    if old.name == "DATE":
        # MySQL's TIMESTAMP only reaches 1970-2038; DATE spans 1000-9999.
        return new.name == "DATETIME" or (new.name == "TIMESTAMP" and dialect not in MYSQL_FAMILY)
    if old.name in _FRACTIONAL_TEMPORAL and new.name == old.name:
        return _fractional_digits(new, dialect) >= _fractional_digits(old, dialect)
    return _string_widening(old, new, dialect)


def previous_type(operation: Operation, context: RuleContext) -> ColumnType | None:
    """The column's type before ``operation``: stated by the migration, else remembered."""
    if operation.old_type is not None:
        return operation.old_type
    return context.known_type(operation.table, operation.column) or context.known_type(
        operation.table, operation.new_name
    )


def check(operation: Operation, context: RuleContext) -> Iterator[Violation]:
    column = operation.column or "(unknown column)"
    table = operation.table or "(unknown table)"
    new = operation.new_type
    old = previous_type(operation, context)
    if new is not None and old is not None:
        if is_widening(old, new, context.dialect):
            return
        yield Violation(
            f"changing {table}.{column} from {old} to {new} may truncate, round or "
            "reject existing values",
            operation.table,
        )
        return
    if new is None:
        yield Violation(
            f"changing the definition of {table}.{column} may lose data (new type unknown)",
            operation.table,
        )
        return
    yield Violation(
        f"changing {table}.{column} to {new} may truncate, round or reject existing values "
        "(previous type unknown; state it, e.g. existing_type=, to allow a widening)",
        operation.table,
    )


RULE = Rule(
    id="alter-column-type",
    summary="Changing a column's type can truncate, round or reject existing values.",
    description=__doc__ or "",
    hint=(
        "Expand/contract: add a column with the new type, backfill and verify, switch, "
        "then drop the old column later; state existing_type= so widenings pass."
    ),
    kinds=frozenset({OpKind.ALTER_COLUMN_TYPE}),
    check=check,
)
