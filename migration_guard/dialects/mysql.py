"""MySQL and MariaDB facts: quoting, listing, checksums, schema objects, binlog."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection

from migration_guard.dialects.base import (
    DialectOps,
    ForeignKeyAction,
    HeldLock,
    TableStats,
    connect_engine,
    database_unavailable,
    guard_engine,
    open_connection,
    run_sql,
    sha256_text,
)
from migration_guard.dialects.locks import lock_holder_text
from migration_guard.dialects.mysql_lock import MySQLLock, get_lock_still_held, mysql_lock_name
from migration_guard.dialects.mysql_server import ServerQuestions, guard_connect
from migration_guard.errors import LockTimeout

OBJECT_KINDS = ("views", "triggers", "procedures", "functions", "events")


def quote_mysql_identifier(name: str) -> str:
    """Backtick-quote ``name``; embedded backticks are doubled."""
    return "`" + name.replace("`", "``") + "`"


def parse_server_version(text: str) -> tuple[tuple[int, ...], bool]:
    """``(version tuple, is_mariadb)`` from ``SELECT VERSION()`` (``(0, 0, 0)`` if unreadable)."""
    is_mariadb = "mariadb" in text.lower()
    match = re.match(r"(\d+)\.(\d+)\.(\d+)", text)
    numbers = tuple(int(part) for part in match.groups()) if match else (0, 0, 0)
    return numbers, is_mariadb


def _scalar_rows(conn: Connection, sql: str, **params: object) -> list[Any]:
    return [row[0] for row in conn.execute(sa.text(sql), params)]


def _mapping(conn: Connection, sql: str) -> dict[str, Any]:
    """The first row of ``sql`` as a column-name -> value dict (keys as printed)."""
    result = run_sql(conn, sql)
    row = result.fetchone()
    if row is None:
        return {}
    return dict(zip(result.keys(), row, strict=True))


class MySQLDialectOps(DialectOps):
    """MySQL 8 and MariaDB 10.5+."""

    name: ClassVar[str] = "mysql"

    def quote_identifier(self, name: str) -> str:
        return quote_mysql_identifier(name)

    def server_version(self, conn: Connection) -> str:
        version = conn.exec_driver_sql("SELECT VERSION()").scalar_one()
        return str(version)

    def is_mariadb(self, conn: Connection) -> bool:
        """Whether the server is MariaDB rather than Oracle MySQL."""
        return parse_server_version(self.server_version(conn))[1]

    def list_tables(self, conn: Connection) -> list[str]:
        names = _scalar_rows(
            conn,
            "SELECT TABLE_NAME FROM information_schema.TABLES "
            "WHERE TABLE_SCHEMA = DATABASE() "
            "AND TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED') ORDER BY TABLE_NAME",
        )
        return [str(name) for name in names]

    def foreign_key_actions(self, conn: Connection) -> list[ForeignKeyAction]:
        # One query for the whole database instead of SHOW CREATE TABLE per table.
        rows = conn.exec_driver_sql(
            "SELECT TABLE_NAME, REFERENCED_TABLE_NAME, DELETE_RULE, UPDATE_RULE "
            "FROM information_schema.REFERENTIAL_CONSTRAINTS "
            "WHERE CONSTRAINT_SCHEMA = DATABASE() AND UNIQUE_CONSTRAINT_SCHEMA = DATABASE()"
        )
        return [
            ForeignKeyAction(str(child), str(parent), str(on_delete), str(on_update))
            for child, parent, on_delete, on_update in rows
        ]

    def list_views(self, conn: Connection) -> list[str]:
        """The views of the connected database, sorted."""
        names = _scalar_rows(
            conn,
            "SELECT TABLE_NAME FROM information_schema.VIEWS "
            "WHERE TABLE_SCHEMA = DATABASE() ORDER BY TABLE_NAME",
        )
        return [str(name) for name in names]

    def list_triggers(self, conn: Connection) -> list[tuple[str, str]]:
        """``(trigger, table)`` pairs in creation order (table, timing, event, order)."""
        rows = conn.execute(
            sa.text(
                "SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE FROM information_schema.TRIGGERS "
                "WHERE TRIGGER_SCHEMA = DATABASE() "
                "ORDER BY EVENT_OBJECT_TABLE, ACTION_TIMING, EVENT_MANIPULATION, ACTION_ORDER"
            )
        )
        return [(str(name), str(table)) for name, table in rows]

    def list_routines(self, conn: Connection) -> list[tuple[str, str]]:
        """``(kind, name)`` pairs, kind being ``PROCEDURE`` or ``FUNCTION``."""
        rows = conn.execute(
            sa.text(
                "SELECT ROUTINE_TYPE, ROUTINE_NAME FROM information_schema.ROUTINES "
                "WHERE ROUTINE_SCHEMA = DATABASE() AND ROUTINE_TYPE IN ('PROCEDURE', 'FUNCTION') "
                "ORDER BY ROUTINE_TYPE, ROUTINE_NAME"
            )
        )
        return [(str(kind), str(name)) for kind, name in rows]

    def list_events(self, conn: Connection) -> list[str]:
        """The events of the connected database, sorted."""
        names = _scalar_rows(
            conn,
            "SELECT EVENT_NAME FROM information_schema.EVENTS "
            "WHERE EVENT_SCHEMA = DATABASE() ORDER BY EVENT_NAME",
        )
        return [str(name) for name in names]

    def show_create_table(self, conn: Connection, table: str) -> str:
        """``SHOW CREATE TABLE`` exactly as printed, ``AUTO_INCREMENT`` counter included."""
        row = run_sql(conn, f"SHOW CREATE TABLE {quote_mysql_identifier(table)}").one()
        return str(row[1])

    def show_create(self, conn: Connection, kind: str, name: str) -> dict[str, Any]:
        """The row of ``SHOW CREATE VIEW|TRIGGER|PROCEDURE|FUNCTION|EVENT name``."""
        return _mapping(conn, f"SHOW CREATE {kind} {quote_mysql_identifier(name)}")

    def table_stats(
        self,
        conn: Connection,
        tables: Sequence[str],
        *,
        rows: bool = True,
        checksums: bool = True,
        digest: str | None = None,
        definitions: Mapping[str, str] | None = None,
    ) -> dict[str, TableStats]:
        """As :meth:`DialectOps.table_stats` (one checksum, ``CHECKSUM TABLE``: no
        ``digest``); ``definitions`` (``SHOW CREATE TABLE`` of each table, read
        already by the caller) spares reading them again."""
        del digest
        sizes = {
            str(name): (int(data or 0) + int(index or 0))
            for name, data, index in conn.execute(
                sa.text(
                    "SELECT TABLE_NAME, DATA_LENGTH, INDEX_LENGTH FROM information_schema.TABLES "
                    "WHERE TABLE_SCHEMA = DATABASE()"
                )
            )
        }
        stats: dict[str, TableStats] = {}
        for table in tables:
            quoted = quote_mysql_identifier(table)
            count = (
                int(run_sql(conn, f"SELECT COUNT(*) FROM {quoted}").scalar_one()) if rows else None
            )
            checksum = None
            if checksums:
                checksum_row = run_sql(conn, f"CHECKSUM TABLE {quoted}").one()
                checksum = None if checksum_row[1] is None else str(checksum_row[1])
            stats[table] = TableStats(
                rows=count,
                checksum=checksum,
                size_bytes=sizes.get(table),
                ddl_sha256=sha256_text(
                    definitions[table]
                    if definitions is not None and table in definitions
                    else self.show_create_table(conn, table)
                ),
            )
        return stats

    def object_definitions(self, conn: Connection) -> dict[str, dict[str, str]]:
        """Every view, trigger, procedure, function and event with its full definition.

        The text is what ``SHOW CREATE`` prints (which never names the object's
        own database) plus the session settings stored with the object; volatile
        columns such as creation times are left out.
        """
        result: dict[str, dict[str, str]] = {kind: {} for kind in OBJECT_KINDS}
        for view in self.list_views(conn):
            row = self.show_create(conn, "VIEW", view)
            result["views"][view] = json.dumps(
                [
                    row.get("Create View"),
                    row.get("character_set_client"),
                    row.get("collation_connection"),
                ]
            )
        orders = {
            str(name): int(order)
            for name, order in conn.execute(
                sa.text(
                    "SELECT TRIGGER_NAME, ACTION_ORDER FROM information_schema.TRIGGERS "
                    "WHERE TRIGGER_SCHEMA = DATABASE()"
                )
            )
        }
        for trigger, _table in self.list_triggers(conn):
            row = self.show_create(conn, "TRIGGER", trigger)
            result["triggers"][trigger] = json.dumps(
                [
                    row.get("SQL Original Statement"),
                    row.get("sql_mode"),
                    row.get("character_set_client"),
                    row.get("collation_connection"),
                    orders.get(trigger),
                ]
            )
        for kind, routine in self.list_routines(conn):
            row = self.show_create(conn, kind, routine)
            key = "procedures" if kind == "PROCEDURE" else "functions"
            result[key][routine] = json.dumps(
                [
                    row.get(f"Create {kind.title()}"),
                    row.get("sql_mode"),
                    row.get("character_set_client"),
                    row.get("collation_connection"),
                ]
            )
        for event in self.list_events(conn):
            row = self.show_create(conn, "EVENT", event)
            result["events"][event] = json.dumps(
                [
                    row.get("Create Event"),
                    row.get("sql_mode"),
                    row.get("time_zone"),
                    row.get("character_set_client"),
                    row.get("collation_connection"),
                ]
            )
        return result

    def objects(self, conn: Connection) -> dict[str, dict[str, str]]:
        return {
            kind: {name: sha256_text(text) for name, text in definitions.items()}
            for kind, definitions in self.object_definitions(conn).items()
        }

    def database_options(self, conn: Connection) -> dict[str, str]:
        """Default character set and collation of the connected database."""
        row = conn.execute(
            sa.text(
                "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME "
                "FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = DATABASE()"
            )
        ).one()
        return {"charset": str(row[0]), "collation": str(row[1])}

    def binlog_position(self, conn: Connection) -> dict[str, str] | None:
        """File, position and GTID of the binary log, or ``None`` when logging is off.

        Inside a ``START TRANSACTION WITH CONSISTENT SNAPSHOT`` MariaDB reports
        the position that matches the snapshot exactly (``binlog_snapshot_*``);
        on MySQL the position is read right after the snapshot was opened.
        """
        if not int(conn.exec_driver_sql("SELECT @@log_bin").scalar_one() or 0):
            return None
        if self.is_mariadb(conn):
            status = {
                str(name): str(value)
                for name, value in conn.exec_driver_sql("SHOW STATUS LIKE 'binlog_snapshot_%%'")
            }
            file = status.get("Binlog_snapshot_file", "")
            position = status.get("Binlog_snapshot_position", "")
            gtid = conn.execute(
                sa.text("SELECT BINLOG_GTID_POS(:file, :position)"),
                {"file": file, "position": int(position or 0)},
            ).scalar_one()
            return {"file": file, "position": position, "gtid": str(gtid or "")}
        for statement in ("SHOW BINARY LOG STATUS", "SHOW MASTER STATUS"):
            try:
                row = _mapping(conn, statement)
            except sa.exc.DBAPIError:
                continue
            if row:
                return {
                    "file": str(row.get("File", "")),
                    "position": str(row.get("Position", "")),
                    "gtid": str(row.get("Executed_Gtid_Set", "") or ""),
                }
        return None

    # -- migration lock -------------------------------------------------------
    def acquire_lock(self, url: URL, name: str, timeout: float) -> HeldLock:
        """``GET_LOCK`` on a dedicated connection that lives as long as the lock.

        The server frees the lock by itself when that connection dies, so a
        killed run never leaves it behind.
        """
        lock_name = mysql_lock_name(name, self.database_name(url))
        engine = guard_engine(url)
        if engine.dialect.driver == "pymysql":  # one login less costly (mysql_server)
            sa.event.listen(engine, "do_connect", guard_connect)
        try:
            conn = open_connection(engine, url)
        except BaseException:
            engine.dispose()
            raise
        try:
            got = conn.execute(
                sa.text("SELECT GET_LOCK(:name, :timeout)"),
                {"name": lock_name, "timeout": max(0, round(timeout))},
            ).scalar()
            if got != 1:
                holder = self._lock_holder(conn, lock_name)
                raise LockTimeout(
                    f"another migration run holds the migration lock of database "
                    f"{self.database_name(url)!r} (GET_LOCK('{lock_name}')): {holder}; "
                    f"waited {timeout:g} s. Wait for it to finish, or raise lock_timeout "
                    "in [tool.migration_guard.upgrade].",
                    holder=holder,
                )
            conn.commit()
        except BaseException:
            conn.close()
            engine.dispose()
            raise
        return MySQLLock(lock_name, conn, engine)

    def _lock_holder(self, conn: Connection, lock_name: str) -> str:
        holder_id = conn.execute(
            sa.text("SELECT IS_USED_LOCK(:name)"), {"name": lock_name}
        ).scalar()
        if holder_id is None:
            return "an unknown holder (the lock was just released; try again)"
        row = conn.execute(
            sa.text("SELECT USER, HOST FROM information_schema.PROCESSLIST WHERE ID = :id"),
            {"id": int(holder_id)},
        ).first()
        user, host = (str(row[0]), str(row[1])) if row else (None, None)
        return lock_holder_text(user, host, connection_id=holder_id)

    def drop_tables(self, conn: Connection, tables: Sequence[str]) -> None:
        """Drop ``tables`` with foreign key checks off, so their order does not matter."""
        if not tables:
            return
        run_sql(conn, "SET FOREIGN_KEY_CHECKS = 0")
        try:
            for table in tables:
                run_sql(conn, f"DROP TABLE {quote_mysql_identifier(table)}")
        finally:
            run_sql(conn, "SET FOREIGN_KEY_CHECKS = 1")

    # -- databases ------------------------------------------------------------
    def admin_url(self, url: URL) -> URL:
        return url.set(database="")

    def create_database(
        self,
        admin_conn: Connection | None,
        name: str,
        *,
        charset: str | None = None,
        collation: str | None = None,
    ) -> None:
        if admin_conn is None:
            raise ValueError("MySQL needs a server connection to create a database")
        options = ""
        if charset:
            options += f" CHARACTER SET {charset}"
        if collation:
            options += f" COLLATE {collation}"
        run_sql(admin_conn, f"CREATE DATABASE {quote_mysql_identifier(name)}{options}")

    def drop_database(self, admin_conn: Connection | None, name: str) -> None:
        if admin_conn is None:
            raise ValueError("MySQL needs a server connection to drop a database")
        run_sql(admin_conn, f"DROP DATABASE IF EXISTS {quote_mysql_identifier(name)}")

    def database_exists(self, url: URL) -> bool:
        engine = connect_engine(self.admin_url(url))
        try:
            with engine.connect() as conn:
                found = conn.execute(
                    sa.text("SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = :n"),
                    {"n": self.database_name(url)},
                ).first()
            return found is not None
        except sa.exc.DBAPIError as exc:
            raise database_unavailable(url, exc) from None
        finally:
            engine.dispose()

    #: Longer table names are refused by the server.
    max_identifier_length: ClassVar[int | None] = 64

    def unknown_database_options(
        self, admin_conn: Connection | None, *, charset: str | None, collation: str | None
    ) -> list[str]:
        """Check against ``information_schema`` (bound parameters, never pasted into SQL)."""
        if admin_conn is None:
            raise ValueError("MySQL needs a server connection to check database options")
        problems: list[str] = []
        if charset is not None and not _scalar_rows(
            admin_conn,
            "SELECT 1 FROM information_schema.CHARACTER_SETS WHERE CHARACTER_SET_NAME = :name",
            name=charset,
        ):
            problems.append(f"character set {charset!r} is not one this server knows")
        if collation is not None:
            owners = _scalar_rows(
                admin_conn,
                "SELECT CHARACTER_SET_NAME FROM information_schema.COLLATIONS "
                "WHERE COLLATION_NAME = :name AND CHARACTER_SET_NAME IS NOT NULL",
                name=collation,
            )
            if not owners and _scalar_rows(
                admin_conn,
                "SELECT 1 FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = "
                "'information_schema' AND TABLE_NAME = 'COLLATION_CHARACTER_SET_APPLICABILITY' "
                "AND COLUMN_NAME = 'FULL_COLLATION_NAME'",
            ):
                # MariaDB 10.10+: UCA 14 collations are listed per character set there.
                owners = _scalar_rows(
                    admin_conn,
                    "SELECT CHARACTER_SET_NAME FROM "
                    "information_schema.COLLATION_CHARACTER_SET_APPLICABILITY "
                    "WHERE FULL_COLLATION_NAME = :name",
                    name=collation,
                )
            if not owners:
                problems.append(f"collation {collation!r} is not one this server knows")
            elif charset is not None and charset not in owners:
                problems.append(
                    f"collation {collation!r} belongs to character set {owners[0]!r}, "
                    f"not {charset!r}"
                )
        return problems

    # -- the lock's heartbeat -------------------------------------------------
    def lock_is_held(self, lock: HeldLock) -> bool:
        """``IS_USED_LOCK(name) = CONNECTION_ID()`` on the lock's own connection."""
        return get_lock_still_held(lock)

    # -- names ----------------------------------------------------------------
    def default_schema(self, conn: Connection) -> str | None:
        """``DATABASE()``: the database is MySQL's schema."""
        value = conn.execute(sa.text("SELECT DATABASE()")).scalar()
        return str(value) if value else None

    # -- binary log (incremental backups) ---------------------------------------
    def log_bin_enabled(self, conn: Connection) -> bool:
        """Whether the server writes a binary log (``@@log_bin``)."""
        return ServerQuestions.over(conn).log_bin_enabled()

    def binary_logs(self, conn: Connection) -> list[tuple[str, int]]:
        """The binlog files the server still has, oldest first, with their sizes."""
        return ServerQuestions.over(conn).binary_logs()


class MariaDBDialectOps(MySQLDialectOps):
    """SQLAlchemy's ``mariadb`` dialect name; the facts are the same."""

    name: ClassVar[str] = "mariadb"

    @property
    def family(self) -> str:
        """MariaDB and MySQL restore each other's backups."""
        return "mysql"
