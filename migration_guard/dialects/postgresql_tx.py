"""PostgreSQL facts for a guarded run inside a transaction: which statements refuse a
transaction block, and a table's whole definition for the proof of a rollback.

PostgreSQL runs DDL inside transactions, so a failed migration is rolled back by the
server. What it cannot roll back is what ran outside one: the statements listed in
:data:`OUTSIDE_TRANSACTION` refuse a transaction block ("cannot run inside a
transaction block") and run only in autocommit mode (Alembic's ``autocommit_block()``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from migration_guard.dialects.base import sha256_text

#: Where a statement starts: the text's start or a ``;``, then blanks and comments.
_START = r"(?:\A|;)\s*(?:(?:--[^\n]*(?:\n|\Z)|/\*.*?\*/)\s*)*"
_NAME = r"(?:\"(?:[^\"]|\"\")+\"|[\w$.]+)"

#: Statement patterns (after :data:`_START`) and the name the guard reports.
OUTSIDE_TRANSACTION: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(_START + pattern, re.I | re.S), kind)
    for pattern, kind in (
        (r"CREATE\s+(?:UNIQUE\s+)?INDEX\s+CONCURRENTLY\b", "CREATE INDEX CONCURRENTLY"),
        (r"DROP\s+INDEX\s+CONCURRENTLY\b", "DROP INDEX CONCURRENTLY"),
        (
            r"REINDEX\b(?:\s*\([^)]*\bCONCURRENTLY\b[^)]*\)|(?:\s*\([^)]*\))?\s+"
            r"(?:INDEX|TABLE|SCHEMA|DATABASE|SYSTEM)\s+CONCURRENTLY\b)",
            "REINDEX ... CONCURRENTLY",
        ),
        (
            r"REINDEX\b(?:\s*\([^)]*\))?\s+(?:SCHEMA|DATABASE|SYSTEM)\b",
            "REINDEX SCHEMA/DATABASE/SYSTEM",
        ),
        (r"VACUUM\b", "VACUUM"),
        (r"ALTER\s+SYSTEM\b", "ALTER SYSTEM"),
        (r"CREATE\s+DATABASE\b", "CREATE DATABASE"),
        (r"DROP\s+DATABASE\b", "DROP DATABASE"),
        (r"(?:CREATE|DROP)\s+TABLESPACE\b", "CREATE/DROP TABLESPACE"),
        (
            r"ALTER\s+TABLE\b[^;]*\bDETACH\s+PARTITION\b[^;]*\bCONCURRENTLY\b",
            "ALTER TABLE ... DETACH PARTITION ... CONCURRENTLY",
        ),
    )
)
#: Before PostgreSQL 12, ``ALTER TYPE ... ADD VALUE`` refused a transaction block too.
_ADD_ENUM_VALUE = re.compile(_START + rf"ALTER\s+TYPE\s+{_NAME}\s+ADD\s+VALUE\b", re.I | re.S)
ADD_VALUE_IN_TRANSACTION = (12,)


def outside_transaction_only(sql: str, server_version: tuple[int, ...] | None) -> str | None:
    """The kind of the first statement of ``sql`` that refuses a transaction block on a
    server of ``server_version`` (None: assume the oldest supported, 11)."""
    for pattern, kind in OUTSIDE_TRANSACTION:
        if pattern.search(sql):
            return kind
    version = tuple(server_version or (11,))
    if version < ADD_VALUE_IN_TRANSACTION and _ADD_ENUM_VALUE.search(sql):
        return "ALTER TYPE ... ADD VALUE (before PostgreSQL 12)"
    return None


#: Everything of a table besides its rows and owner that a restore must give back.
DEFINITION_SQL = """
SELECT concat_ws(E'\\n--\\n',
  (SELECT concat_ws(' ', c.relkind::text, c.relpersistence::text, c.relrowsecurity::text,
          c.relforcerowsecurity::text, array_to_string(c.reloptions, ','))
     FROM pg_class c WHERE c.oid = t.oid),
  (SELECT string_agg(concat_ws(' ', a.attname::text, format_type(a.atttypid, a.atttypmod),
          a.attnotnull::text, a.attidentity::text, a.attgenerated::text,
          pg_get_expr(d.adbin, d.adrelid), co.collname::text), E'\\n' ORDER BY a.attnum)
     FROM pg_attribute a
     LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
     LEFT JOIN pg_collation co ON co.oid = a.attcollation
    WHERE a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped),
  (SELECT string_agg(concat_ws(' ', x.conname::text, pg_get_constraintdef(x.oid)), E'\\n'
          ORDER BY x.conname)
     FROM pg_constraint x WHERE x.conrelid = t.oid),
  (SELECT string_agg(pg_get_indexdef(i.indexrelid), E'\\n'
          ORDER BY pg_get_indexdef(i.indexrelid))
     FROM pg_index i WHERE i.indrelid = t.oid),
  (SELECT string_agg(concat_ws(' ', pg_get_triggerdef(g.oid), g.tgenabled::text), E'\\n'
          ORDER BY g.tgname)
     FROM pg_trigger g WHERE g.tgrelid = t.oid AND NOT g.tgisinternal),
  (SELECT string_agg(concat_ws(' ', p.polname::text, p.polcmd::text, p.polpermissive::text,
          p.polroles::text, pg_get_expr(p.polqual, p.polrelid),
          pg_get_expr(p.polwithcheck, p.polrelid)), E'\\n' ORDER BY p.polname)
     FROM pg_policy p WHERE p.polrelid = t.oid)
) FROM (SELECT CAST(:name AS regclass) AS oid) AS t
"""


def table_definitions(
    conn: Connection, tables: Sequence[str], quoted: dict[str, str]
) -> dict[str, str]:
    """SHA-256 of :data:`DEFINITION_SQL` per table; ``quoted`` maps each table to its
    schema-qualified, quoted name."""
    found: dict[str, str] = {}
    statement = sa.text(DEFINITION_SQL)
    for table in tables:
        text = conn.execute(statement, {"name": quoted[table]}).scalar()
        found[table] = sha256_text(str(text or ""))
    return found
