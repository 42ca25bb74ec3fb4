"""Just-in-time backups: a table the safety backup does not hold is backed up just
before the run first changes it, so that a restore stays complete.

On a database whose DDL runs inside the migration's transaction (PostgreSQL) a backup
taken mid-run can wait for that very transaction's locks (``pg_dump`` takes a share
lock on every table it dumps; an ``ALTER TABLE`` earlier in the transaction holds an
exclusive one until the commit): the run would wait for itself forever. The guard
asks the database first and fails the statement with the fix instead; the tables the
plan touches are backed up before the run there, so only tables the plan could not
see (SQL built at run time, foreign-key actions) come here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from migration_guard.errors import BackupError

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from migration_guard.alembic.session import GuardSession


def jit_backup(session: GuardSession, table: str) -> None:
    """Back up ``table`` now, before the statement that changes it runs."""
    from migration_guard.backup import create
    from migration_guard.backup.manifest import ROW_DIGEST_METHOD

    assert session.ops is not None
    if session.ops.transactional_ddl and session.connection is not None:
        with session._connection() as conn:
            held = session.ops.locks_a_backup_waits_for(conn, session.connection)
            if held and table not in session.pre_stats:
                # The statement will not run; the rollback of what ran before it is
                # proven against this measurement.
                _measure(session, conn, table)
        if held:
            session._save_record("migrating")
            raise BackupError(
                f"cannot back up {table} just in time: the migration's open transaction "
                f"holds an exclusive lock on {', '.join(held)}, which the backup would wait "
                "for until the run ends. Back those tables up before the run "
                '(backup_scope = "full" in [tool.migration_guard.upgrade]), or change '
                f"{table} in a revision of its own with transaction_per_migration=True"
            )
    manifest = create(
        session.config,
        url=session.url,
        type="tables",
        tables=[table],
        labels=session._labels("just-in-time", table=table),
        # Its stats stand in for the pre-run measurement of this table, which
        # the restore proof compares by CHECKSUM TABLE.
        server_checksums=True,
        on_event=session.on_event,
    )
    session.backups.append({"id": manifest.id, "tables": [table], "kind": "just-in-time"})
    entry = manifest.tables.get(table)
    if entry is not None and table not in session.pre_stats:
        session.pre_stats[table] = {
            "rows": entry.rows,
            "checksum": entry.checksum,
            "ddl_sha256": entry.ddl_sha256,
            "size": entry.size,
        }
        digest = manifest.extra.get(ROW_DIGEST_METHOD)
        if digest is not None:  # the recovery measures the table by the backup's method
            session.pre_stats[table]["digest"] = digest
        with session._connection() as conn:  # before the statement that changes it
            for name, definition in session.ops.table_definitions(conn, [table]).items():
                session.pre_stats[name]["definition_sha256"] = definition
    session.result.jit_backups.append({"id": manifest.id, "table": table})
    session._save_record("migrating")


def _measure(session: GuardSession, conn: Connection, table: str) -> None:
    """Record ``table``'s measurement from before the run (it has not changed yet)."""
    from migration_guard.alembic.records import measured

    assert session.ops is not None
    session.pre_stats.update(measured(session.ops, conn, [table]))
