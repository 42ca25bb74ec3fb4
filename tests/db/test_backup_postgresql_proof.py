# ruff: noqa: F811  (fixtures imported from test_backup_postgresql)
"""The restore's proof when the backend measures the rows it loaded.

Into an empty database the pgdump backend counts and digests every table after
pg_restore's data section, before its post-data section, and hands those
measures to the engine. Attacks: a row flipped in the stream must still be a
mismatch; a table the backend did not measure must be measured in full; the
measures must equal a full read of the finished database.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL

from migration_guard.backup.backends.base import RestoreOutcome
from migration_guard.backup.backends.pgdump import STREAM_FORMAT, PgdumpBackend
from migration_guard.backup.compare import compare_stats
from migration_guard.backup.manifest import ROW_DIGEST_METHOD, TableEntry
from migration_guard.backup.restoration import _restored_stats
from migration_guard.dialects.postgresql import PostgreSQLDialectOps
from migration_guard.dialects.postgresql_digest import RECORD_DIGEST
from tests.db.test_backup_postgresql import (  # noqa: F401  (fixtures)
    load_varied,
    new_database,
)

pytestmark = pytest.mark.postgresql


def test_a_flipped_row_is_caught_by_the_measures_the_backend_takes(
    postgres_url: str,
    new_database: Callable[[], URL],
    postgres_admin_engine: sa.Engine,
) -> None:
    load_varied(postgres_url)
    backend = PgdumpBackend()
    dumped = backend.dump(sa.make_url(postgres_url), io.BytesIO())
    expected = {
        name: TableEntry(rows=stats.rows, checksum=stats.checksum, ddl_sha256=stats.ddl_sha256)
        for name, stats in dumped.tables.items()
    }
    # The same number of rows, one of them different: only the digest can tell.
    engine = sa.create_engine(postgres_url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE customers SET name = name || 'x' WHERE id = 1")
    engine.dispose()
    flipped = io.BytesIO()
    backend.dump(sa.make_url(postgres_url), flipped)
    flipped.seek(0)

    target = new_database()
    with postgres_admin_engine.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{target.database}"')
    digest = dumped.extra[ROW_DIGEST_METHOD]
    assert digest == RECORD_DIGEST
    outcome = backend.digesting(digest).restore(target, flipped, stream_format=STREAM_FORMAT)
    assert set(outcome.measured) == set(expected)  # every table measured by the backend
    assert {stats.digest for stats in outcome.measured.values()} == {digest}

    ops = PostgreSQLDialectOps()
    engine = sa.create_engine(target, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            tables = list(expected)
            actual = _restored_stats(ops, conn, tables, expected, outcome, digest)
            mismatches = compare_stats(expected, actual, digest)
            assert len(mismatches) == 1 and mismatches[0].startswith("table customers: checksum")

            # A table the backend left out is counted and digested in full, not skipped.
            partial = RestoreOutcome(
                measured={k: v for k, v in outcome.measured.items() if k != "customers"}
            )
            again = _restored_stats(ops, conn, tables, expected, partial, digest)
            assert again["customers"].rows == expected["customers"].rows
            assert compare_stats(expected, again, digest) == mismatches

            # The measures equal a full read of the finished database (indexes built).
            fresh = ops.table_stats(conn, tables)
            assert {n: (s.rows, s.checksum, s.ddl_sha256) for n, s in actual.items()} == {
                n: (s.rows, s.checksum, s.ddl_sha256) for n, s in fresh.items()
            }
    finally:
        engine.dispose()
