"""SQLite backend: the online backup API for whole databases, SQL for selected tables.

Stream formats:

* ``sqlite-db``: a consistent copy of the database file, made with
  ``sqlite3.Connection.backup`` (safe while other connections write).
* ``sqlite-sql``: SQL for selected tables (``DROP``/``CREATE``, rows, their
  indexes, triggers and ``sqlite_sequence`` entry). Each table's part starts
  with a line ``-- mg:table "NAME"``; string values never contain raw line
  breaks, so every data statement is a single line.

Restores run the SQL in one transaction with foreign keys off; a whole-database
restore copies the file back through the backup API, so the target may stay
open elsewhere.
"""

from __future__ import annotations

import contextlib
import json
import math
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

from sqlalchemy.engine import URL

from migration_guard.backup.backends.base import (
    Backend,
    ByteCounter,
    CountingReader,
    DumpResult,
    RestoreOutcome,
    iter_lines,
    read_chunks,
    select_tables,
    write_chunks,
)
from migration_guard.backup.scratch import remove_stale_scratch, scratch_directory
from migration_guard.dialects.sqlite import (
    has_rowid,
    list_sqlite_tables,
    quote_sqlite_identifier,
    sqlite_path,
    sqlite_table_stats,
    table_columns,
)
from migration_guard.errors import BackupError, DatabaseUnavailableError, UsageError, translate

SQL_MAGIC = "-- migration-guard sqlite dump 1\n"
TABLE_MARKER = "-- mg:table "
SQLITE_HEADER = b"SQLite format 3\x00"


def _text_literal(value: str) -> str:
    quoted = "'" + value.replace("'", "''") + "'"
    for char, code in (("\r", 13), ("\n", 10), ("\x00", 0)):
        if char in quoted:
            quoted = quoted.replace(char, f"'||char({code})||'")
    return quoted


def sqlite_literal(value: Any) -> str:
    """``value`` as an SQLite literal that reads back as the same value and type."""
    if value is None:
        return "NULL"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NULL"
        if math.isinf(value):
            return "1e999" if value > 0 else "-1e999"
        return repr(value)
    if isinstance(value, str):
        return _text_literal(value)
    return "X'" + bytes(value).hex() + "'"


def _objects_of(conn: sqlite3.Connection) -> dict[str, list[str]]:
    rows = conn.execute(
        "SELECT type, name FROM sqlite_master WHERE type IN ('view', 'trigger') ORDER BY name"
    ).fetchall()
    result: dict[str, list[str]] = {"views": [], "triggers": []}
    for kind, name in rows:
        result["views" if kind == "view" else "triggers"].append(str(name))
    return result


def iter_table_sql(conn: sqlite3.Connection, tables: Sequence[str]) -> Iterator[str]:
    """SQL that recreates ``tables`` with their rows, indexes and triggers."""
    yield SQL_MAGIC
    has_sequence = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'"
    ).fetchone()
    for table in tables:
        quoted = quote_sqlite_identifier(table)
        ddl = conn.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
        ).fetchone()
        yield f"{TABLE_MARKER}{json.dumps(table)}\n"
        yield f"DROP TABLE IF EXISTS {quoted};\n"
        yield f"{ddl[0]};\n"
        columns = table_columns(conn, table, stored_only=True)
        selected = [quote_sqlite_identifier(c) for c in columns]
        if has_rowid(conn, table):
            selected.insert(0, "rowid")
        column_list = ", ".join(selected)
        for row in conn.execute(f"SELECT {column_list} FROM {quoted}"):
            values = ",".join(sqlite_literal(value) for value in row)
            yield f"INSERT INTO {quoted}({column_list}) VALUES({values});\n"
        for (sql,) in conn.execute(
            "SELECT sql FROM sqlite_master WHERE type IN ('index', 'trigger') "
            "AND tbl_name = ? AND sql IS NOT NULL ORDER BY type, name",
            (table,),
        ):
            yield f"{sql};\n"
        if has_sequence and "AUTOINCREMENT" in str(ddl[0]).upper():
            sequence = conn.execute(
                "SELECT seq FROM sqlite_sequence WHERE name = ?", (table,)
            ).fetchone()
            yield f"DELETE FROM sqlite_sequence WHERE name = {_text_literal(table)};\n"
            if sequence is not None:
                yield (
                    f"INSERT INTO sqlite_sequence(name, seq) "
                    f"VALUES({_text_literal(table)}, {int(sequence[0])});\n"
                )


def iter_sql_statements(lines: Iterable[str]) -> Iterator[str]:
    """Complete SQL statements from ``lines`` (trigger bodies and multi-line DDL included)."""
    pending = ""
    for line in lines:
        pending += line
        if sqlite3.complete_statement(pending):
            yield pending
            pending = ""
    if pending.strip() and not all(
        part.strip().startswith("--") or not part.strip() for part in pending.splitlines()
    ):
        raise BackupError("the SQLite SQL stream ends in the middle of a statement (truncated?)")


def filter_sql_tables(lines: Iterable[str], tables: Sequence[str]) -> Iterator[str]:
    """Only the parts of a ``sqlite-sql`` stream that belong to ``tables``."""
    wanted = set(tables)
    keeping = False
    for line in lines:
        if line.startswith(TABLE_MARKER):
            keeping = json.loads(line[len(TABLE_MARKER) :]) in wanted
        if keeping:
            yield line


def _restore_doing(path: Path) -> str:
    return f"cannot restore into the SQLite database {path}"


def _open_existing(path: Path) -> sqlite3.Connection:
    if not path.is_file():
        raise DatabaseUnavailableError(
            f"the SQLite database file {path} does not exist; check the URL"
        )
    with translate(
        {sqlite3.Error: DatabaseUnavailableError}, doing=f"cannot open the SQLite database {path}"
    ):
        return sqlite3.connect(str(path), isolation_level=None)


def _decoded_lines(source: BinaryIO, progress: ByteCounter | None) -> Iterator[str]:
    for line in iter_lines(CountingReader(source, progress)):
        yield line.decode("utf-8", "surrogatepass")


def _checked_database_file(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """``chunks``, refused at the first one unless they start like an SQLite database file."""
    first = True
    for chunk in chunks:
        if first and not chunk.startswith(SQLITE_HEADER[: len(chunk)]):
            raise BackupError("the stream is not an SQLite database file")
        first = False
        yield chunk


#: The first bytes of every SQLite database file.


class SQLiteBackend(Backend):
    """Backs up SQLite database files."""

    name: ClassVar[str] = "sqlite"
    dialects: ClassVar[frozenset[str]] = frozenset({"sqlite"})
    stream_formats: ClassVar[frozenset[str]] = frozenset({"sqlite-db", "sqlite-sql"})
    no_incremental: ClassVar[str] = (
        "SQLite keeps no log of past changes to copy them from (its WAL is emptied at every "
        "checkpoint), and a full backup is a page copy through SQLite's backup API, about as "
        "cheap as reading the file once. Take full backups (--type full) as often as you need "
        "recovery points instead, e.g. hourly"
    )

    def stream_problem(self, stream_format: str, head: bytes, tail: bytes) -> str | None:
        """A database file must start with the SQLite header."""
        del tail
        if stream_format.lower() == "sqlite-db" and not head.startswith(SQLITE_HEADER):
            return "the plain stream does not start with the SQLite header"
        return None

    def dump(
        self,
        url: URL,
        sink: BinaryIO,
        *,
        tables: Sequence[str] | None = None,
        progress: ByteCounter | None = None,
        server_checksums: bool = False,
    ) -> DumpResult:
        del server_checksums  # SQLite checksums are read from a private copy anyway
        path = sqlite_path(url)
        source = _open_existing(path)
        try:
            with translate(
                {sqlite3.Error: BackupError},
                doing=f"cannot back up the SQLite database {path}",
                row_data=True,
            ):
                if tables is None:
                    return self._dump_file(source, sink, progress)
                return self._dump_tables(source, sink, tables, progress)
        finally:
            source.close()

    def _dump_file(
        self, source: sqlite3.Connection, sink: BinaryIO, progress: ByteCounter | None
    ) -> DumpResult:
        # A plaintext copy: removed on exit, or by the next run after a SIGKILL.
        with scratch_directory("sqlite") as directory:
            copy_path = directory / "backup.db"
            copy = sqlite3.connect(str(copy_path))
            try:
                source.backup(copy)
                copy.execute("PRAGMA journal_mode = DELETE")
                tables = list_sqlite_tables(copy)
                stats = sqlite_table_stats(copy, tables)
                objects = _objects_of(copy)
            finally:
                copy.close()
            with copy_path.open("rb") as handle:
                write_chunks(read_chunks(handle), sink, progress)
        return DumpResult(
            tables=stats,
            server_version=sqlite3.sqlite_version,
            stream_format="sqlite-db",
            objects=objects,
        )

    def _dump_tables(
        self,
        source: sqlite3.Connection,
        sink: BinaryIO,
        tables: Sequence[str],
        progress: ByteCounter | None,
    ) -> DumpResult:
        # One read transaction: the stats and the rows see the same snapshot.
        source.execute("BEGIN")
        try:
            selected = select_tables(list_sqlite_tables(source), tables)
            stats = sqlite_table_stats(source, selected)
            sql = iter_table_sql(source, selected)
            write_chunks((text.encode("utf-8", "surrogatepass") for text in sql), sink, progress)
        finally:
            source.execute("ROLLBACK")
        return DumpResult(
            tables=stats,
            server_version=sqlite3.sqlite_version,
            stream_format="sqlite-sql",
            objects={"views": [], "triggers": []},
        )

    def restore(
        self,
        url: URL,
        source: BinaryIO,
        *,
        stream_format: str,
        tables: Sequence[str] | None = None,
        progress: ByteCounter | None = None,
    ) -> RestoreOutcome:
        path = sqlite_path(url)
        self.check_stream_format(stream_format)
        if stream_format == "sqlite-sql":
            lines: Iterable[str] = _decoded_lines(source, progress)
            if tables is not None:
                lines = filter_sql_tables(lines, tables)
            self._apply_sql(path, lines, tables)
        else:
            self._restore_file(path, source, tables, progress)
        return RestoreOutcome()

    def _restore_file(
        self,
        path: Path,
        source: BinaryIO,
        tables: Sequence[str] | None,
        progress: ByteCounter | None,
    ) -> None:
        if not path.parent.is_dir():
            raise UsageError(f"the directory of the SQLite target {path} does not exist")
        # Next to the target: same filesystem, and a full disk shows up before
        # the target is touched.
        remove_stale_scratch(path.parent)
        with scratch_directory("restore", parent=path.parent) as directory:
            copy_path = directory / "restore.db"
            with copy_path.open("wb") as handle:
                write_chunks(_checked_database_file(read_chunks(source)), handle, progress)
            copy = sqlite3.connect(str(copy_path))
            try:
                with translate(
                    {sqlite3.Error: BackupError}, doing=_restore_doing(path), row_data=True
                ):
                    if tables is not None:
                        copy.execute("BEGIN")
                        sql = list(iter_table_sql(copy, self._existing(copy, tables)))
                        copy.execute("ROLLBACK")
                        self._apply_sql(path, sql, tables)
                        return
                    target = sqlite3.connect(str(path))
                    try:
                        copy.backup(target)
                    finally:
                        target.close()
            finally:
                copy.close()

    @staticmethod
    def _existing(conn: sqlite3.Connection, tables: Sequence[str]) -> list[str]:
        existing = set(list_sqlite_tables(conn))
        missing = sorted(set(tables) - existing)
        if missing:
            raise BackupError(f"the backup does not contain the table(s): {', '.join(missing)}")
        return list(dict.fromkeys(tables))

    @staticmethod
    def _apply_sql(path: Path, lines: Iterable[str], tables: Sequence[str] | None) -> None:
        target = sqlite3.connect(str(path), isolation_level=None)
        seen: set[str] = set()
        try:
            with translate({sqlite3.Error: BackupError}, doing=_restore_doing(path), row_data=True):
                target.execute("PRAGMA foreign_keys = OFF")
                target.execute("BEGIN IMMEDIATE")
                try:
                    for line_group in iter_sql_statements(_tracking(lines, seen)):
                        target.execute(line_group)
                    if tables is not None and set(tables) - seen:
                        missing = ", ".join(sorted(set(tables) - seen))
                        raise BackupError(f"the backup does not contain the table(s): {missing}")
                    target.execute("COMMIT")
                except BaseException:
                    with contextlib.suppress(sqlite3.Error):
                        target.execute("ROLLBACK")
                    raise
        finally:
            target.close()


def _tracking(lines: Iterable[str], seen: set[str]) -> Iterator[str]:
    for line in lines:
        if line.startswith(TABLE_MARKER):
            seen.add(json.loads(line[len(TABLE_MARKER) :]))
        yield line
