"""PostgreSQL row digests: what a backup's table ``checksum`` is, by method.

``text-v1`` hashes every row's text form; ``record-v2`` hashes the columns as
stored where that is exact and by their text elsewhere (:func:`digest_kind`),
about half of the server's work. A backup's manifest names its method, and a
restore measures by it (:mod:`migration_guard.dialects.digests`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

#: The row digest methods (a backup's manifest names the one it was measured with).
#: ``text-v1``: the hash of every row's text form. ``record-v2``: the columns hashed
#: as they are stored (:func:`record_digest_sql`), about half the server's work.
TEXT_DIGEST = "text-v1"
RECORD_DIGEST = "record-v2"
#: ``hash_record_extended``, and ``extract`` giving an exact ``numeric``, exist from
#: PostgreSQL 14 on.
RECORD_DIGEST_SINCE = 140000

#: A table's row count and content checksum in one pass, without sorting: the sum
#: (an exact numeric) of a 64-bit hash of every row's text, ``hashtextextended``
#: (the hash PostgreSQL keeps stable across versions for hash partitioning; about
#: twice as fast as md5). A sum does not depend on the order of the rows, which
#: VACUUM and restores change, counts every duplicate, holds no table in memory
#: (``string_agg`` stops at 1 GB) and lets the server scan in parallel workers.
#: Two different row sets agree only if their hash sums collide (about 2**-64 for
#: damage that is not crafted; the archive's own authentication covers crafted
#: changes). The ``text-v1`` method.
ROW_DIGEST_SQL = "SELECT count(*), coalesce(sum(hashtextextended(t::text, 0)), 0) FROM {table} AS t"

#: Types whose stored value ``hash_record_extended`` hashes exactly: equal hashes
#: only for equal values (up to 64-bit collisions), and equal values only for the
#: same stored content. Each is hashed natively (``int8`` and the timestamps need a
#: second field, see :func:`column_fields`; the text types under
#: ``COLLATE "C"`` hash their bytes whatever the column's collation).
NATIVE_TYPES = frozenset({"int2", "int4", "oid", "bool", "char", "date", "uuid", "bytea"})
TEXT_TYPES = frozenset({"text", "varchar", "name"})
SPLIT_TYPES = frozenset({"int8", "timestamp", "timestamptz"})
#: The most fields one ``ROW(...)`` gets; more are hashed in groups (a record
#: holds at most 1664 fields).
ROW_FIELDS = 1000
#: The settings every column hashed by its text is printed under, pinned while
#: ``record-v2`` measures: the same rows then give the same digest whatever the
#: database's, role's or client's defaults (a restore into a new database does not
#: carry ``ALTER DATABASE ... SET``). ``text-v1`` stays unpinned, as it was recorded.
PINNED_SETTINGS = (
    ("TimeZone", "UTC"),
    ("DateStyle", "ISO, MDY"),
    ("IntervalStyle", "postgres"),
    ("extra_float_digits", "1"),
    ("lc_monetary", "C"),
    ("bytea_output", "hex"),
)


def digest_kind(type_name: str, builtin: bool, type_type: str, text_cast: bool) -> str:
    """How ``record-v2`` hashes a column of type ``type_name``: ``native`` (as
    stored), ``int8`` (as stored, plus its upper half), ``timestamp``/``timestamptz``
    (as stored, plus its epoch), ``text`` (its bytes), ``io`` (its output function's text: ``CAST AS
    text``), ``record`` (its text inside a one-field record, for types whose cast
    to text is a function of its own (``bpchar`` drops trailing blanks) and for
    domains). Only base types of ``pg_catalog`` (``builtin``, ``type_type`` ``b``)
    are hashed natively: enums hash by OID, numeric, floats, json(b), intervals
    and ranges hash equal values of different text alike, so they go by text."""
    if builtin and type_type == "b":
        if type_name in NATIVE_TYPES:
            return "native"
        if type_name in SPLIT_TYPES:
            return type_name
        if type_name in TEXT_TYPES:
            return "text"
    if type_type == "d" or text_cast:
        return "record"
    return "io"


def column_fields(column: str, kind: str) -> list[str]:
    """The ``ROW`` fields of the quoted ``column`` of a :func:`digest_kind`.

    ``hash_record_extended`` hashes an ``int8`` folded to 32 bits (``hashint8`` xors
    its halves, the upper one inverted for a negative value); the upper half as an
    ``int4`` field of its own makes the pair exact. A timestamp is an ``int8`` of
    microseconds hashed the same way, and a second timestamp field would be folded
    too (a value and its upper half inverted would collide), so a timestamp adds
    its epoch, an exact ``numeric``, the same in every time zone. ``numeric`` hashes
    every infinity as 0, so the timestamp's own field stays: it tells ``infinity``,
    ``-infinity`` and NULL apart. A NULL column hashes 0 in every field, which no
    value's hash is (but by a 2**-64 chance).
    """
    if kind == "native":
        return [column]
    if kind == "int8":
        return [column, f"CAST({column} >> 32 AS int4)"]
    if kind in ("timestamp", "timestamptz"):
        return [column, f"extract(epoch FROM {column})"]
    if kind == "text":
        return [f'{column} COLLATE "C"']
    if kind == "io":
        return [f'CAST({column} AS text) COLLATE "C"']
    if kind == "record":
        return [f'CAST(ROW({column}) AS text) COLLATE "C"']
    raise ValueError(f"unknown column kind {kind!r}")


def record_digest_sql(table: str, columns: Sequence[tuple[str, str]]) -> str:
    """The ``record-v2`` count and digest of the quoted ``table`` whose columns, in
    order, are ``columns`` (name, :func:`digest_kind`).

    Each row's columns go into one record, hashed by ``hash_record_extended``;
    that combines the fields' hashes linearly (``h = 31 * h + field``), so a sum
    over rows would not see values swapped between rows: each row's hash passes
    through ``hashtextextended`` of its decimal text first (one call, keeps the
    parallel plan; ``hashint8extended(h, h)`` would compute the record twice).
    """
    fields = [field for name, kind in columns for field in column_fields(f"t.{_quote(name)}", kind)]
    row = _row(fields)
    return (
        "SELECT count(*), coalesce(sum(hashtextextended("
        f'CAST(hash_record_extended({row}, 0) AS text) COLLATE "C", 0)), 0) FROM {table} AS t'
    )


def _row(fields: Sequence[str]) -> str:
    """``ROW(...)`` of ``fields``; past :data:`ROW_FIELDS`, a row of each group's hash
    in decimal text (a record of anonymous records has no hash function, and a
    group's hash as ``int8`` would be folded to 32 bits)."""
    if len(fields) <= ROW_FIELDS:
        return f"ROW({', '.join(fields)})"
    groups = [fields[i : i + ROW_FIELDS] for i in range(0, len(fields), ROW_FIELDS)]
    return _row(
        [f'CAST(hash_record_extended({_row(group)}, 0) AS text) COLLATE "C"' for group in groups]
    )


@contextlib.contextmanager
def pinned_settings(conn: Connection) -> Iterator[None]:
    """:data:`PINNED_SETTINGS` in force on ``conn`` for the body, and what was in force
    before put back after it (the caller's own transaction, a migration's included,
    sees its settings unchanged).

    Transaction-local (``set_config(..., true)``): if the body fails, the rollback the
    failure brings undoes them too. Outside a transaction block they do not take,
    and a measurement may then differ from one taken pinned: a false mismatch,
    never a false match.
    """
    names = [name for name, _ in PINNED_SETTINGS]
    saved = conn.execute(
        sa.text("SELECT current_setting(n) FROM unnest(CAST(:names AS text[])) AS n"),
        {"names": names},
    ).scalars()
    before = list(zip(names, (str(value) for value in saved), strict=True))
    _set_local(conn, PINNED_SETTINGS)
    yield
    _set_local(conn, before)


def _set_local(conn: Connection, settings: Sequence[tuple[str, str]]) -> None:
    conn.execute(
        sa.text(
            "SELECT set_config(n, v, true) "
            "FROM unnest(CAST(:names AS text[]), CAST(:values AS text[])) AS s(n, v)"
        ),
        {"names": [name for name, _ in settings], "values": [value for _, value in settings]},
    ).all()


def digest_columns(conn: Connection, tables: Sequence[str]) -> dict[str, list[tuple[str, str]]]:
    """Each of the quoted, schema-qualified ``tables``: its columns in order, as
    (name, :func:`digest_kind`), read from the catalog in one query for all."""
    if not tables:
        return {}
    rows = conn.execute(
        sa.text(
            "SELECT r.name, a.attname, ty.typname, "
            "ty.typnamespace = CAST('pg_catalog' AS regnamespace), ty.typtype, "
            "EXISTS (SELECT 1 FROM pg_cast k WHERE k.castsource = a.atttypid "
            "AND k.casttarget = CAST('text' AS regtype)) "
            "FROM unnest(CAST(:names AS text[])) WITH ORDINALITY AS r(name, i) "
            "JOIN pg_attribute a ON a.attrelid = CAST(r.name AS regclass) "
            "JOIN pg_type ty ON ty.oid = a.atttypid "
            "WHERE a.attnum > 0 AND NOT a.attisdropped ORDER BY r.i, a.attnum"
        ),
        {"names": list(tables)},
    )
    found: dict[str, list[tuple[str, str]]] = {table: [] for table in tables}
    for table, column, type_name, builtin, type_type, text_cast in rows:
        kind = digest_kind(str(type_name), bool(builtin), str(type_type), bool(text_cast))
        found[str(table)].append((str(column), kind))
    return found


def _quote(name: str) -> str:
    from migration_guard.dialects.postgresql import quote_postgresql_identifier

    return quote_postgresql_identifier(name)
