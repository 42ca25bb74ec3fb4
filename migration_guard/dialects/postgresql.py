"""PostgreSQL facts, enough for listing and checksums; backups follow in a later issue."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine

from migration_guard.dialects import postgresql_database, postgresql_tx
from migration_guard.dialects.base import (
    DialectOps,
    HeldLock,
    TableStats,
    connect_engine,
    connected,
    database_unavailable,
    guard_engine,
    run_sql,
    sha256_text,
)
from migration_guard.dialects.digests import digest_method
from migration_guard.dialects.locks import lock_holder_text, lock_query_true
from migration_guard.dialects.postgresql_digest import (
    RECORD_DIGEST,
    RECORD_DIGEST_SINCE,
    ROW_DIGEST_SQL,
    TEXT_DIGEST,
    digest_columns,
    pinned_settings,
    record_digest_sql,
)
from migration_guard.errors import LockTimeout, UsageError


def quote_postgresql_identifier(name: str) -> str:
    """Double-quote ``name``; embedded double quotes are doubled."""
    return '"' + name.replace('"', '""') + '"'


class PostgreSQLDialectOps(DialectOps):
    """PostgreSQL 12+; tables of the ``search_path``'s first schema (usually ``public``)."""

    name: ClassVar[str] = "postgresql"

    def quote_identifier(self, name: str) -> str:
        return quote_postgresql_identifier(name)

    def server_version(self, conn: Connection) -> str:
        return str(conn.exec_driver_sql("SHOW server_version").scalar_one())

    def list_tables(self, conn: Connection) -> list[str]:
        rows = conn.execute(
            sa.text(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' "
                "ORDER BY table_name"
            )
        )
        return [str(row[0]) for row in rows]

    digest_methods: ClassVar[tuple[str, ...]] = (RECORD_DIGEST, TEXT_DIGEST)
    unnamed_digest: ClassVar[str | None] = TEXT_DIGEST

    def newest_digest(self, conn: Connection) -> str:
        """The row digest method new measurements take on ``conn``'s server."""
        recent = self.server_version_num(conn) >= RECORD_DIGEST_SINCE
        return RECORD_DIGEST if recent else TEXT_DIGEST

    def check_server_digest(self, url: URL, digest: str | None) -> None:
        """One login to the server's administrative database, for ``record-v2`` only."""
        if digest != RECORD_DIGEST:
            return
        try:
            with connected(self.admin_url(url)) as conn:
                self.check_digest(conn, digest)
        except sa.exc.DBAPIError as exc:
            raise database_unavailable(url, exc) from None

    def check_digest(self, conn: Connection, digest: str | None) -> None:
        """:class:`UsageError` when ``conn``'s server cannot measure by ``digest``."""
        if digest == RECORD_DIGEST and self.server_version_num(conn) < RECORD_DIGEST_SINCE:
            raise UsageError(
                f"the rows were digested with {RECORD_DIGEST}, which needs PostgreSQL 14 "
                f"or later, and this server runs {self.server_version(conn)}; restore or "
                "verify on PostgreSQL 14 or later"
            )

    def table_stats(
        self,
        conn: Connection,
        tables: Sequence[str],
        *,
        rows: bool = True,
        checksums: bool = True,
        digest: str | None = None,
    ) -> dict[str, TableStats]:
        measure = rows or checksums  # one query gives both; skipped only if neither
        resolved = self.resolve_tables(conn, tables)
        quoted_names = [
            f"{quote_postgresql_identifier(schema)}.{quote_postgresql_identifier(name)}"
            for schema, name in resolved
        ]
        method = (digest or self.newest_digest(conn)) if measure and tables else None
        measured: dict[str, tuple[Any, Any]] = {}
        if method == RECORD_DIGEST:
            if digest is not None:  # the newest method is one the server has
                self.check_digest(conn, method)
            columns = digest_columns(conn, quoted_names)
            with pinned_settings(conn):  # once for all the tables
                for quoted in quoted_names:
                    query = record_digest_sql(quoted, columns.get(quoted, []))
                    measured[quoted] = tuple(run_sql(conn, query).one())
        elif method == TEXT_DIGEST:
            for quoted in quoted_names:
                measured[quoted] = tuple(run_sql(conn, ROW_DIGEST_SQL.format(table=quoted)).one())
        elif method is not None:
            digest_method(self, method)  # raises: unknown
        stats: dict[str, TableStats] = {}
        for table, (schema, name), quoted in zip(tables, resolved, quoted_names, strict=True):
            count, checksum = measured.get(quoted, (None, None))
            size = conn.execute(
                sa.text("SELECT pg_total_relation_size(CAST(:name AS regclass))"),
                {"name": quoted},
            ).scalar_one()
            definition = conn.execute(
                sa.text(
                    "SELECT string_agg(column_name || ' ' || data_type || ' ' || is_nullable "
                    "|| ' ' || coalesce(column_default, ''), E'\\n' ORDER BY ordinal_position) "
                    "FROM information_schema.columns "
                    "WHERE table_schema = :s AND table_name = :t"
                ),
                {"s": schema, "t": name},
            ).scalar_one()
            stats[table] = TableStats(
                rows=None if count is None else int(count),
                checksum=None if checksum is None else str(checksum),
                size_bytes=int(size),
                ddl_sha256=sha256_text(str(definition or "")),
                digest=method if checksum is not None else None,
            )
        return stats

    def objects(self, conn: Connection) -> dict[str, dict[str, str]]:
        views = {
            str(name): sha256_text(str(definition))
            for name, definition in conn.execute(
                sa.text(
                    "SELECT viewname, definition FROM pg_views WHERE schemaname = current_schema()"
                )
            )
        }
        triggers = {
            str(name): sha256_text(str(definition))
            for name, definition in conn.execute(
                sa.text(
                    "SELECT t.tgname, pg_get_triggerdef(t.oid) FROM pg_trigger t "
                    "JOIN pg_class c ON c.oid = t.tgrelid "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE NOT t.tgisinternal AND n.nspname = current_schema()"
                )
            )
        }
        routines = {
            str(name): sha256_text(str(definition))
            for name, definition in conn.execute(
                sa.text(
                    "SELECT p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')', "
                    "pg_get_functiondef(p.oid) FROM pg_proc p "
                    "JOIN pg_namespace n ON n.oid = p.pronamespace "
                    "WHERE n.nspname = current_schema() AND p.prokind IN ('f', 'p')"
                )
            )
        }
        return {"views": views, "triggers": triggers, "routines": routines, "events": {}}

    def acquire_lock(self, url: URL, name: str, timeout: float) -> HeldLock:
        """A session-level ``pg_advisory_lock`` on a dedicated connection, polled with
        ``pg_try_advisory_lock`` until ``timeout``."""
        key = advisory_lock_key(f"{name}:{self.database_name(url)}")
        engine = connect_engine(url)
        conn = engine.connect()
        deadline = time.monotonic() + max(0.0, timeout)
        try:
            while not conn.execute(
                sa.text("SELECT pg_try_advisory_lock(:key)"), {"key": key}
            ).scalar():
                if time.monotonic() >= deadline:
                    row = conn.execute(
                        sa.text(
                            "SELECT a.pid, a.usename, a.client_addr FROM pg_locks l "
                            "JOIN pg_stat_activity a ON a.pid = l.pid "
                            "WHERE l.locktype = 'advisory' AND l.granted "
                            "AND l.classid = :high AND l.objid = :low LIMIT 1"
                        ),
                        {"high": (key >> 32) & 0xFFFFFFFF, "low": key & 0xFFFFFFFF},
                    ).first()
                    holder = (
                        lock_holder_text(str(row[1]), str(row[2] or "local"), pid=row[0])
                        if row
                        else "an unknown holder"
                    )
                    raise LockTimeout(
                        f"another migration run holds the migration lock of database "
                        f"{self.database_name(url)!r} (advisory lock {key}): {holder}; "
                        f"waited {timeout:g} s. Wait for it to finish, or raise "
                        "lock_timeout in [tool.migration_guard.upgrade].",
                        holder=holder,
                    )
                conn.rollback()
                time.sleep(0.1)
            conn.commit()
        except BaseException:
            conn.close()
            engine.dispose()
            raise
        return _AdvisoryLock(key, conn, engine)

    def admin_url(self, url: URL) -> URL:
        return url.set(database="postgres")

    def create_database(
        self,
        admin_conn: Connection | None,
        name: str,
        *,
        charset: str | None = None,
        collation: str | None = None,
    ) -> None:
        if admin_conn is None:
            raise ValueError("PostgreSQL needs a server connection to create a database")
        # template0: template1 may hold objects, and only template0 takes any encoding.
        options = f" TEMPLATE template0 ENCODING '{charset}'" if charset else ""
        run_outside_transaction(
            admin_conn, f"CREATE DATABASE {quote_postgresql_identifier(name)}{options}"
        )

    def drop_database(self, admin_conn: Connection | None, name: str) -> None:
        if admin_conn is None:
            raise ValueError("PostgreSQL needs a server connection to drop a database")
        run_outside_transaction(
            admin_conn, f"DROP DATABASE IF EXISTS {quote_postgresql_identifier(name)} WITH (FORCE)"
        )

    def database_exists(self, url: URL) -> bool:
        """One login to the server's administrative database."""
        try:
            with connected(self.admin_url(url)) as conn:
                found = conn.execute(
                    sa.text("SELECT 1 FROM pg_database WHERE datname = :n"),
                    {"n": self.database_name(url)},
                ).first()
            return found is not None
        except sa.exc.DBAPIError as exc:
            raise database_unavailable(url, exc) from None

    #: Longer table names are refused by the server.
    max_identifier_length: ClassVar[int | None] = 63

    def unknown_database_options(
        self, admin_conn: Connection | None, *, charset: str | None, collation: str | None
    ) -> list[str]:
        """The encoding must be one ``pg_char_to_encoding`` knows; collations are not used."""
        del collation
        if admin_conn is None:
            raise ValueError("PostgreSQL needs a server connection to check database options")
        if charset is None:
            return []
        code = admin_conn.execute(
            sa.text("SELECT pg_char_to_encoding(:name)"), {"name": charset}
        ).scalar_one()
        return [] if int(code) >= 0 else [f"encoding {charset!r} is not one this server knows"]

    def database_option_problems(
        self, admin_conn: Connection | None, options: Mapping[str, Any]
    ) -> list[str]:
        """Encoding, locale, ICU locale and extensions (:mod:`.postgresql_database`)."""
        if admin_conn is None:
            raise ValueError("PostgreSQL needs a server connection to check database options")
        return postgresql_database.option_problems(admin_conn, options)

    def create_database_like(
        self, admin_conn: Connection | None, name: str, options: Mapping[str, Any]
    ) -> None:
        """``CREATE DATABASE`` with the source's encoding and locale, from ``template0``."""
        if admin_conn is None:
            raise ValueError("PostgreSQL needs a server connection to create a database")
        statement = postgresql_database.create_database_sql(
            quote_postgresql_identifier(name), options, self.server_version_num(admin_conn)
        )
        run_outside_transaction(admin_conn, statement)

    def quote_string(self, value: str) -> str:
        """An escape-string literal (``E'...'``), right whatever
        ``standard_conforming_strings`` says: quotes and backslashes are doubled."""
        return quote_postgresql_string(value)

    def list_schema_tables(self, conn: Connection) -> list[tuple[str, str, int]]:
        """``(schema, table, oid)`` of every ordinary and partitioned table outside the
        system schemas, the current schema's first."""
        rows = conn.execute(
            sa.text(
                "SELECT n.nspname, c.relname, c.oid FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition "
                "AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
                "AND n.nspname NOT LIKE 'pg\\_%' "
                "ORDER BY n.nspname <> current_schema(), n.nspname, c.relname"
            )
        )
        return [(str(schema), str(table), int(oid)) for schema, table, oid in rows]

    def is_superuser(self, conn: Connection) -> bool:
        """Whether the session's role is a superuser (event triggers need one)."""
        return bool(
            conn.exec_driver_sql(
                "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
            ).scalar()
        )

    # -- the lock's heartbeat -------------------------------------------------
    def lock_is_held(self, lock: HeldLock) -> bool:
        """The advisory lock is in ``pg_locks``, granted to the lock's own backend."""
        if lock.released or not isinstance(lock, _AdvisoryLock):
            return False
        conn = lock.own_connection
        key = int(lock.name) & 0xFFFFFFFFFFFFFFFF
        return lock_query_true(
            conn,
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND pid = pg_backend_pid() AND classid::bigint = :high AND objid::bigint = :low",
            {"high": key >> 32, "low": key & 0xFFFFFFFF},
        )

    # -- a guarded run inside a transaction ------------------------------------
    transactional_ddl: ClassVar[bool] = True

    def table_definitions(self, conn: Connection, tables: Sequence[str]) -> dict[str, str]:
        """Columns, constraints, indexes, triggers, policies and options of each table,
        hashed (``ddl_sha256`` holds the columns only)."""
        quoted = {
            table: ".".join(map(quote_postgresql_identifier, pair))
            for table, pair in zip(tables, self.resolve_tables(conn, tables), strict=True)
        }
        return postgresql_tx.table_definitions(conn, tables, quoted)

    def outside_transaction_only(
        self, sql: str, server_version: tuple[int, ...] | None
    ) -> str | None:
        """``CREATE INDEX CONCURRENTLY``, ``VACUUM``, ``ALTER SYSTEM``, ``CREATE
        DATABASE``... (and ``ALTER TYPE ... ADD VALUE`` before 12)."""
        return postgresql_tx.outside_transaction_only(sql, server_version)

    def locks_a_backup_waits_for(self, conn: Connection, holder: Connection) -> list[str]:
        """Relations ``holder``'s backend holds ``ACCESS EXCLUSIVE`` (pg_dump takes
        ``ACCESS SHARE`` on every table it dumps)."""
        try:
            pid = holder.connection.dbapi_connection.info.backend_pid  # type: ignore[union-attr]
        except (AttributeError, sa.exc.SQLAlchemyError):
            return []
        rows = conn.execute(
            sa.text(
                # pg_class shows only committed tables: one the transaction created
                # is invisible to pg_dump too, and its lock is no obstacle.
                "SELECT DISTINCT CAST(l.relation AS regclass)::text FROM pg_locks l "
                "JOIN pg_class c ON c.oid = l.relation AND c.relkind IN ('r', 'p') "
                "WHERE l.pid = :pid AND l.granted AND l.locktype = 'relation' "
                "AND l.mode = 'AccessExclusiveLock' ORDER BY 1"
            ),
            {"pid": int(pid)},
        )
        return [str(row[0]) for row in rows]

    def in_autocommit(self, conn: Connection) -> bool:
        """psycopg's ``connection.autocommit`` (what SQLAlchemy's ``AUTOCOMMIT`` sets)."""
        try:
            dbapi = conn.connection.dbapi_connection
        except sa.exc.SQLAlchemyError:
            return False
        return bool(getattr(dbapi, "autocommit", False))

    # -- names ----------------------------------------------------------------
    def default_schema(self, conn: Connection) -> str | None:
        """``current_schema()``: the first existing schema of the ``search_path``."""
        value = conn.execute(sa.text("SELECT current_schema()")).scalar()
        return str(value) if value else None

    # -- backups (pg_dump) ----------------------------------------------------
    def backup_tables(self, conn: Connection) -> list[str]:
        """Every table outside the system schemas: the current schema's by name, the
        others' as ``schema.table``."""
        current = str(conn.exec_driver_sql("SELECT current_schema()").scalar_one())
        return [
            table if schema == current else f"{schema}.{table}"
            for schema, table, _ in self.list_schema_tables(conn)
        ]

    def resolve_table(self, conn: Connection, name: str) -> tuple[str, str]:
        """``(schema, table)`` of a name :meth:`backup_tables` gave: a table of the
        current schema by that name, else ``schema.table`` split at its first dot."""
        return self.resolve_tables(conn, [name])[0]

    def resolve_tables(self, conn: Connection, names: Sequence[str]) -> list[tuple[str, str]]:
        """:meth:`resolve_table` of each of ``names``, in two queries for all of them."""
        if not names:
            return []
        current = str(conn.exec_driver_sql("SELECT current_schema()").scalar_one())
        present = set(
            conn.execute(
                sa.text(
                    "SELECT c.relname FROM pg_class c JOIN pg_namespace n "
                    "ON n.oid = c.relnamespace WHERE n.nspname = :s AND c.relname = ANY(:t)"
                ),
                {"s": current, "t": list(names)},
            ).scalars()
        )
        resolved = []
        for name in names:
            if name in present or "." not in name:
                resolved.append((current, name))
            else:
                schema, _, table = name.partition(".")
                resolved.append((schema, table))
        return resolved

    def identifier_problem(self, name: object) -> str | None:
        """As for any database, each part of a qualified ``schema.table`` at most 63 characters."""
        if isinstance(name, str) and "." in name and len(name) > 63:
            parts = name.split(".", 1)
            if all(0 < len(part) <= 63 for part in parts):
                name = parts[1]
        return super().identifier_problem(name)

    def server_version_num(self, conn: Connection) -> int:
        """``server_version_num`` (150020 for 15.20)."""
        return int(conn.exec_driver_sql("SHOW server_version_num").scalar_one())

    def database_encoding(self, conn: Connection) -> str:
        """The encoding of the connected database (``UTF8``)."""
        return str(
            conn.exec_driver_sql(
                "SELECT pg_encoding_to_char(encoding) FROM pg_database "
                "WHERE datname = current_database()"
            ).scalar_one()
        )


def run_outside_transaction(admin_conn: Connection, sql: str) -> None:
    """Run ``sql`` (``CREATE``/``DROP DATABASE``, which refuse a transaction block) in
    autocommit mode: on ``admin_conn`` itself when no transaction is open on it, else
    on a connection of its own to the same server as the same role."""
    if not admin_conn.in_transaction():
        run_sql(admin_conn.execution_options(isolation_level="AUTOCOMMIT"), sql)
        return
    engine = guard_engine(admin_conn.engine.url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            run_sql(conn, sql)
    finally:
        engine.dispose()


def quote_postgresql_string(value: str) -> str:
    """``E'...'`` with quotes and backslashes doubled; see the method of the same name."""
    return "E'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def advisory_lock_key(name: str) -> int:
    """A stable signed 64-bit advisory lock key for ``name``."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "big", signed=True)


class _AdvisoryLock(HeldLock):
    def __init__(self, key: int, conn: Connection, engine: Engine) -> None:
        super().__init__(str(key), f"pg_advisory_lock({key})")
        #: The backend the lock lives on (not offered for the holder's reads).
        self.own_connection = conn
        self._key = key
        self._conn = conn
        self._engine = engine

    def _release(self) -> None:
        try:
            self._conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": self._key})
            self._conn.commit()
        except sa.exc.SQLAlchemyError:
            pass  # a lost connection has released the lock already
        finally:
            self._conn.close()
            self._engine.dispose()
