"""Pure-Python MySQL/MariaDB backend (SQLAlchemy + PyMySQL), for hosts without client tools.

Stream format ``mysql-native`` (version 1) is SQL that the ``mariadb``/``mysql``
client also loads, framed so that it can be split without parsing SQL:

* line 1 is ``-- migration-guard native dump 1``;
* line 2 is ``DELIMITER $$mg$$``;
* every statement is followed by a line holding exactly ``$$mg$$``, so routine
  and trigger bodies keep their own ``;``;
* a line ``-- mg:section KIND ["NAME"]`` (JSON-quoted name) opens a section:
  ``prologue``, ``table``, ``routine``, ``view``, ``trigger`` (named after its
  table), ``event``, ``epilogue``. A partial restore keeps the prologue,
  epilogue and the ``table``/``trigger`` sections of the tables asked for.

Row values are written from the server's own text: numbers unquoted exactly as
printed (DECIMAL stays exact), binary strings (BLOB, BINARY, BIT, geometry) as
hex literals, everything else as escaped strings. Generated columns are left out
of the ``INSERT`` column lists; the server computes them again. Everything runs
in one ``START TRANSACTION WITH CONSISTENT SNAPSHOT`` with ``time_zone`` UTC.

Not covered: MariaDB sequences and system-versioned history rows.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, BinaryIO, ClassVar

import pymysql
import pymysql.cursors
from pymysql.converters import escape_string
from sqlalchemy.engine import URL, Connection

from migration_guard.backup.backends.base import (
    Backend,
    ByteCounter,
    CountingReader,
    DumpResult,
    RestoreOutcome,
    iter_lines,
)
from migration_guard.backup.backends.mysql_stream import (
    RESTORE_EPILOGUE,
    RESTORE_PROLOGUE,
    resolve_tables,
)
from migration_guard.config import MYSQL_FAMILY
from migration_guard.dialects import get_dialect_ops
from migration_guard.dialects.base import (
    connect_engine,
    database_unavailable,
    safe_url_text,
)
from migration_guard.dialects.mysql import MySQLDialectOps, quote_mysql_identifier
from migration_guard.errors import BackupError, describe, redact_values

MAGIC = b"-- migration-guard native dump 1\n"
DELIMITER = "$$mg$$"
DELIMITER_LINE = (DELIMITER + "\n").encode()
SECTION_PREFIX = b"-- mg:section "
STATEMENT_BYTES = 1024 * 1024
NUMERIC_TYPES = frozenset(
    {
        "tinyint",
        "smallint",
        "mediumint",
        "int",
        "integer",
        "bigint",
        "decimal",
        "numeric",
        "float",
        "double",
        "real",
        "year",
    }
)
DEFAULT_SQL_MODE = "NO_AUTO_VALUE_ON_ZERO"
SESSION_DEFAULTS = (
    "SET NAMES utf8mb4",
    "SET time_zone = '+00:00'",
    f"SET sql_mode = '{DEFAULT_SQL_MODE}'",
)


def _quote_string(value: str) -> str:
    return "'" + str(escape_string(value)) + "'"


def _literal(value: str | bytes | None, numeric: bool) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, (bytes, bytearray)):
        return "0x" + value.hex() if value else "''"
    if numeric:
        return value
    return _quote_string(value)


def _session_settings(row: dict[str, Any], *, time_zone: bool = False) -> list[str]:
    settings = []
    if row.get("sql_mode") is not None:
        settings.append(f"SET sql_mode = {_quote_string(str(row['sql_mode']))}")
    if row.get("character_set_client"):
        settings.append(f"SET character_set_client = {_quote_string(row['character_set_client'])}")
    if row.get("collation_connection"):
        settings.append(f"SET collation_connection = {_quote_string(row['collation_connection'])}")
    if time_zone and row.get("time_zone"):
        settings.append(f"SET time_zone = {_quote_string(str(row['time_zone']))}")
    return settings


def _view_body(create_view: str) -> str:
    return create_view.split(" AS ", 1)[-1]


def _view_order(definitions: dict[str, str]) -> list[str]:
    """View names ordered so that a view comes after the views it selects from."""
    names = sorted(definitions)
    depends = {
        name: {
            other
            for other in names
            if other != name and quote_mysql_identifier(other) in _view_body(definitions[name])
        }
        for name in names
    }
    ordered: list[str] = []
    placed: set[str] = set()
    while len(ordered) < len(names):
        ready = [n for n in names if n not in placed and depends[n] <= placed]
        if not ready:  # a cycle can only come from false matches: keep the rest sorted
            ready = [n for n in names if n not in placed]
        for name in ready:
            ordered.append(name)
            placed.add(name)
    return ordered


class _Writer:
    """Writes framed statements to the sink and reports the bytes."""

    def __init__(self, sink: BinaryIO, progress: ByteCounter | None) -> None:
        self.sink = sink
        self.progress = progress

    def raw(self, data: bytes) -> None:
        self.sink.write(data)
        if self.progress is not None:
            self.progress(len(data))

    def section(self, kind: str, name: str | None = None) -> None:
        suffix = "" if name is None else " " + json.dumps(name)
        self.raw(SECTION_PREFIX + f"{kind}{suffix}\n".encode())

    def statement(self, sql: str) -> None:
        if re.search(rf"(?m)^{re.escape(DELIMITER)}$", sql):
            raise BackupError(
                f"a definition contains a line consisting of {DELIMITER!r}, the native "
                "backend's statement separator; use the mysqldump backend for this database"
            )
        self.raw(sql.encode("utf-8") + b"\n" + DELIMITER_LINE)

    def definition(self, settings: Sequence[str], *statements: str) -> None:
        """``statements`` under an object's own session ``settings``, then the defaults again."""
        for sql in (*settings, *statements, *SESSION_DEFAULTS):
            self.statement(sql)


def _dump_table_rows(raw: Any, writer: _Writer, table: str, columns: list[tuple[str, str]]) -> None:
    if not columns:
        return
    quoted_table = quote_mysql_identifier(table)
    column_list = ", ".join(quote_mysql_identifier(name) for name, _ in columns)
    select_list = ", ".join(
        # The server prints FLOAT with 6 significant digits, which loses bits;
        # as DOUBLE it prints a value that rounds back to the same FLOAT.
        f"CAST({quote_mysql_identifier(name)} AS DOUBLE)"
        if kind == "float"
        else quote_mysql_identifier(name)
        for name, kind in columns
    )
    numeric = [kind in NUMERIC_TYPES for _, kind in columns]
    prefix = f"INSERT INTO {quoted_table} ({column_list}) VALUES\n"
    cursor = raw.cursor(pymysql.cursors.SSCursor)
    try:
        cursor.execute(f"SELECT {select_list} FROM {quoted_table}")
        pending: list[str] = []
        size = 0
        for row in cursor:
            text = (
                "("
                + ",".join(_literal(value, numeric[index]) for index, value in enumerate(row))
                + ")"
            )
            pending.append(text)
            size += len(text) + 2
            if size >= STATEMENT_BYTES:
                writer.statement(prefix + ",\n".join(pending))
                pending, size = [], 0
        if pending:
            writer.statement(prefix + ",\n".join(pending))
    finally:
        cursor.close()


class NativeBackend(Backend):
    """Dumps and restores MySQL/MariaDB through PyMySQL alone."""

    name: ClassVar[str] = "native"
    dialects: ClassVar[frozenset[str]] = MYSQL_FAMILY
    stream_formats: ClassVar[frozenset[str]] = frozenset({"mysql-native"})

    def dump(
        self,
        url: URL,
        sink: BinaryIO,
        *,
        tables: Sequence[str] | None = None,
        progress: ByteCounter | None = None,
        server_checksums: bool = False,
    ) -> DumpResult:
        del server_checksums  # always taken: this backend has no stream digests
        ops = get_dialect_ops(url.get_backend_name())
        assert isinstance(ops, MySQLDialectOps)
        engine = connect_engine(url)
        try:
            with engine.connect() as conn:
                return self._dump(ops, conn, sink, tables, _Writer(sink, progress))
        finally:
            engine.dispose()

    def _dump(
        self,
        ops: MySQLDialectOps,
        conn: Connection,
        sink: BinaryIO,
        tables: Sequence[str] | None,
        writer: _Writer,
    ) -> DumpResult:
        del sink
        conn.exec_driver_sql("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        conn.exec_driver_sql("SET SESSION time_zone = '+00:00'")
        conn.exec_driver_sql("START TRANSACTION WITH CONSISTENT SNAPSHOT")
        selected = resolve_tables(ops, conn, tables)
        binlog = ops.binlog_position(conn)
        server_version = ops.server_version(conn)
        database_options = ops.database_options(conn)
        # Each definition read once, hashed and written as the same text: SHOW CREATE
        # TABLE prints the live AUTO_INCREMENT counter, not the snapshot's, so two reads
        # could disagree under concurrent inserts.
        definitions = {table: ops.show_create_table(conn, table) for table in selected}
        stats = ops.table_stats(conn, selected, definitions=definitions)
        columns = _stored_columns(conn)
        raw: Any = conn.connection.dbapi_connection

        writer.raw(MAGIC)
        writer.raw(f"DELIMITER {DELIMITER}\n".encode())
        writer.section("prologue")
        for sql in (
            *SESSION_DEFAULTS,
            "SET FOREIGN_KEY_CHECKS = 0",
            "SET UNIQUE_CHECKS = 0",
            "SET autocommit = 0",
        ):
            writer.statement(sql)

        for table in selected:
            writer.section("table", table)
            writer.statement(f"DROP TABLE IF EXISTS {quote_mysql_identifier(table)}")
            writer.statement(definitions[table])
            original_decoders = raw.decoders
            # The server's own text for every value: exact DECIMALs, dates and
            # fractional seconds, no float re-formatting.
            raw.decoders = {}
            try:
                _dump_table_rows(raw, writer, table, columns.get(table, []))
            finally:
                raw.decoders = original_decoders
            writer.statement("COMMIT")

        objects: dict[str, list[str]] = {}
        object_hashes: dict[str, dict[str, str]] = {}
        if tables is None:
            object_hashes = ops.objects(conn)
            objects = self._dump_objects(ops, conn, writer)
        else:
            self._dump_triggers(ops, conn, writer, set(selected))

        writer.section("epilogue")
        for sql in (
            "COMMIT",
            "SET FOREIGN_KEY_CHECKS = 1",
            "SET UNIQUE_CHECKS = 1",
            "SET autocommit = 1",
        ):
            writer.statement(sql)
        conn.rollback()
        return DumpResult(
            tables=stats,
            server_version=server_version,
            stream_format="mysql-native",
            binlog=binlog,
            objects=objects,
            extra={
                "database_options": database_options,
                "native_format_version": 1,
                "object_sha256": object_hashes,
            },
        )

    def _dump_triggers(
        self, ops: MySQLDialectOps, conn: Connection, writer: _Writer, tables: set[str] | None
    ) -> list[str]:
        names = []
        for trigger, table in ops.list_triggers(conn):
            if tables is not None and table not in tables:
                continue
            row = ops.show_create(conn, "TRIGGER", trigger)
            writer.section("trigger", table)
            writer.definition(
                _session_settings(row),
                f"DROP TRIGGER IF EXISTS {quote_mysql_identifier(trigger)}",
                str(row["SQL Original Statement"]),
            )
            names.append(trigger)
        return names

    def _dump_objects(
        self, ops: MySQLDialectOps, conn: Connection, writer: _Writer
    ) -> dict[str, list[str]]:
        objects: dict[str, list[str]] = {
            "procedures": [],
            "functions": [],
            "views": [],
            "triggers": [],
            "events": [],
        }
        for kind, routine in ops.list_routines(conn):
            row = ops.show_create(conn, kind, routine)
            writer.section("routine", routine)
            writer.definition(
                _session_settings(row),
                f"DROP {kind} IF EXISTS {quote_mysql_identifier(routine)}",
                str(row[f"Create {kind.title()}"]),
            )
            objects["procedures" if kind == "PROCEDURE" else "functions"].append(routine)

        views = {view: ops.show_create(conn, "VIEW", view) for view in ops.list_views(conn)}
        for view in _view_order({name: str(row["Create View"]) for name, row in views.items()}):
            row = views[view]
            writer.section("view", view)
            writer.definition(
                _session_settings(row),
                f"DROP TABLE IF EXISTS {quote_mysql_identifier(view)}",
                f"DROP VIEW IF EXISTS {quote_mysql_identifier(view)}",
                str(row["Create View"]),
            )
            objects["views"].append(view)

        objects["triggers"] = self._dump_triggers(ops, conn, writer, None)

        for event in ops.list_events(conn):
            row = ops.show_create(conn, "EVENT", event)
            writer.section("event", event)
            writer.definition(
                _session_settings(row, time_zone=True),
                f"DROP EVENT IF EXISTS {quote_mysql_identifier(event)}",
                str(row["Create Event"]),
            )
            objects["events"].append(event)
        return objects

    def restore(
        self,
        url: URL,
        source: BinaryIO,
        *,
        stream_format: str,
        tables: Sequence[str] | None = None,
        progress: ByteCounter | None = None,
    ) -> RestoreOutcome:
        self.check_stream_format(
            stream_format, "; use the mysqldump backend (it needs the mariadb/mysql client)"
        )
        lines: Iterable[bytes] = iter_lines(CountingReader(source, progress))
        if tables is not None:
            lines = filter_native_tables(lines, tables)
        engine = connect_engine(url)
        try:
            raw_connection = engine.raw_connection()
            try:
                raw = raw_connection.dbapi_connection
                assert raw is not None
                cursor = raw.cursor()
                for statement in (*_split(RESTORE_PROLOGUE), *SESSION_DEFAULTS):
                    cursor.execute(statement)
                for statement in iter_native_statements(lines):
                    try:
                        cursor.execute(statement)
                    except pymysql.err.OperationalError as exc:
                        if exc.args and exc.args[0] in (2006, 2013):
                            raise database_unavailable(url, exc) from None
                        raise _statement_error(url, statement, exc) from None
                    except pymysql.err.MySQLError as exc:
                        raise _statement_error(url, statement, exc) from None
                for statement in _split(RESTORE_EPILOGUE):
                    cursor.execute(statement)
                raw.commit()
            finally:
                with contextlib.suppress(Exception):
                    raw_connection.close()
        finally:
            engine.dispose()
        return RestoreOutcome()


def _split(script: bytes) -> list[str]:
    return [part.strip() for part in script.decode().split(";") if part.strip()]


def _statement_error(url: URL, statement: str, exc: BaseException) -> BackupError:
    # Only the statement's head (``INSERT INTO `t```) and the error without the
    # values it quotes: the rest is row data of the backup.
    head = re.split(r"(?i)\s(?:VALUES|SET|SELECT)\b|\(", statement, maxsplit=1)[0][:120]
    detail = redact_values(describe(exc))
    return BackupError(
        f"restore into {safe_url_text(url)} failed: {detail} (statement: {head} ...)"
    )


def _stored_columns(conn: Connection) -> dict[str, list[tuple[str, str]]]:
    """Per table, its stored (not generated) columns and their lower-case data types."""
    result: dict[str, list[tuple[str, str]]] = {}
    rows = conn.exec_driver_sql(
        "SELECT TABLE_NAME, COLUMN_NAME, DATA_TYPE, EXTRA FROM information_schema.COLUMNS "
        "WHERE TABLE_SCHEMA = DATABASE() ORDER BY TABLE_NAME, ORDINAL_POSITION"
    )
    for table, column, data_type, extra in rows:
        extra_text = str(extra or "").upper()
        if "VIRTUAL GENERATED" in extra_text or "STORED GENERATED" in extra_text:
            continue
        if extra_text in ("VIRTUAL", "PERSISTENT", "STORED"):
            continue
        result.setdefault(str(table), []).append((str(column), str(data_type).lower()))
    return result


def iter_native_statements(lines: Iterable[bytes]) -> Iterator[str]:
    """The statements of a ``mysql-native`` stream, without framing or section lines."""
    line_iter = iter(lines)
    first = next(line_iter, b"")
    if first != MAGIC:
        raise BackupError("the stream is not a migration-guard native dump (unexpected first line)")
    pending: list[bytes] = []
    for line in line_iter:
        if line == DELIMITER_LINE or line == DELIMITER.encode():
            statement = b"".join(pending).rstrip(b"\n")
            pending = []
            if statement.strip():
                yield statement.decode("utf-8")
            continue
        if not pending and (line.startswith(SECTION_PREFIX) or line.startswith(b"DELIMITER ")):
            continue
        pending.append(line)
    if b"".join(pending).strip():
        raise BackupError("the native dump ends in the middle of a statement (truncated?)")


def filter_native_tables(lines: Iterable[bytes], tables: Sequence[str]) -> Iterator[bytes]:
    """Only the framing, prologue, epilogue and the sections of ``tables``."""
    wanted = set(tables)
    keeping = True
    for line in lines:
        if line.startswith(SECTION_PREFIX):
            kind, _, name = line[len(SECTION_PREFIX) :].decode("utf-8").strip().partition(" ")
            if kind in ("prologue", "epilogue"):
                keeping = True
            elif kind in ("table", "trigger"):
                keeping = json.loads(name) in wanted
            else:
                keeping = False
        if keeping:
            yield line
