"""The default MySQL/MariaDB backend: ``mariadb-dump``/``mysqldump`` out, ``mariadb``/``mysql`` in.

Credentials reach the client tools only through a 0600 ``--defaults-extra-file``
in a private 0700 directory that is removed afterwards; the password is never
in argv nor in the child's environment.

Consistency: the dump runs with ``--single-transaction``. Row counts and
content digests are taken from the dump stream itself as it passes
(:mod:`~migration_guard.backup.backends.dumpscan`), so they describe exactly
the dumped snapshot and cost the server nothing. So is the binlog position:
with the binary log on, the dump tool prints it (``--master-data=2``) and
:mod:`.binlogpos` reads it from the stream. Table definitions, sizes and, with
``server_checksums``, ``CHECKSUM TABLE`` are read on a
separate connection whose ``START TRANSACTION WITH CONSISTENT SNAPSHOT`` is
opened on a thread while the dump process starts: a second consistent
snapshot, so a write committed in the few milliseconds between the two shows up
in the dump and not in those checksums (verification would then report a
mismatch rather than silently pass). Row counts, digests and the binlog
position never have this gap. Nor has the ``AUTO_INCREMENT`` counter in the
recorded definition: ``SHOW CREATE TABLE`` prints the live counter, not the
snapshot's, so the definition hash is taken with the counter the dump's own
``CREATE TABLE`` carries, which is the counter a restore sets.

The stream never contains ``USE`` or ``CREATE DATABASE`` (the database name is
passed without ``--databases``), so it restores into any database name. Views
print their tables unqualified when they live in the same database; routine
bodies are copied verbatim, so a body that names its own database explicitly
still names it after a restore under another name.

Known limit: MariaDB prints single-precision ``FLOAT`` values with 6 significant
digits, so a dump can round them; the dump result then carries a warning naming
the columns (``extra["warnings"]``). The ``native`` backend keeps them exact.

Running the client programs is :mod:`.mysql_client`'s job, the shape of the
dump stream (shared with ``native``) :mod:`.mysql_stream`'s, and loading it over
several connections :mod:`.parallel_restore`'s.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import BinaryIO, ClassVar

from sqlalchemy.engine import URL, Connection, Engine

from migration_guard.backup.backends.base import (
    Backend,
    ByteCounter,
    CountingReader,
    DumpResult,
    RestoreOutcome,
    TableContent,
    TableStats,
    iter_lines,
    read_chunks,
)
from migration_guard.backup.backends.binlogpos import (
    CoordinateWatcher,
    dump_source_options,
    parse_coordinates,
)
from migration_guard.backup.backends.dumpscan import DIGEST_METHOD, DumpScanner, scanned
from migration_guard.backup.backends.mysql_client import (
    CLIENT_TOOLS,
    DUMP_TOOLS,
    client_defaults_file,
    find_tool,
    is_oracle_mysqldump,
    oracle_options,
    run_dump,
    run_restore,
    tool_version,
)
from migration_guard.backup.backends.mysql_stream import (
    filter_tables,
    resolve_tables,
    with_auto_increment,
)
from migration_guard.backup.backends.parallel_restore import (
    run_parallel_restore,
)
from migration_guard.config import MYSQL_FAMILY
from migration_guard.dialects import get_dialect_ops
from migration_guard.dialects.base import connect_engine, safe_url_text, sha256_text
from migration_guard.dialects.mysql import MySQLDialectOps
from migration_guard.errors import (
    BackupError,
    MigrationGuardError,
    ToolMissingError,
    UsageError,
)

#: Options that decide how rows are printed; a backup and any later re-dump for
#: comparing contents must use the same ones.
DATA_FORMAT_OPTIONS = (
    "--single-transaction",
    "--quick",
    "--hex-blob",
    "--default-character-set=utf8mb4",
    "--tz-utc",
)


class SnapshotStats:
    """DDL hashes, sizes and schema objects, read in one consistent
    snapshot on a thread of its own while the dump runs."""

    def __init__(self, url: URL, tables: Sequence[str] | None) -> None:
        self.url = url
        ops = get_dialect_ops(url.get_backend_name())
        assert isinstance(ops, MySQLDialectOps)
        self.ops: MySQLDialectOps = ops
        self.requested = None if tables is None else list(dict.fromkeys(tables))
        self.tables: list[str] = []
        self.server_version = ""
        self.database_options: dict[str, str] = {}
        self.float_columns: list[str] = []
        self.stats: dict[str, TableStats] = {}
        #: ``SHOW CREATE TABLE`` of each table, as read in the snapshot.
        self.definitions: dict[str, str] = {}
        self.objects: dict[str, list[str]] = {}
        self.object_hashes: dict[str, dict[str, str]] = {}
        self.error: BaseException | None = None
        self.engine: Engine | None = None
        self.conn: Connection | None = None
        self._thread: threading.Thread | None = None

    def start(self, *, with_objects: bool, server_checksums: bool) -> None:
        """Open the snapshot and read everything on a thread, overlapping the dump.

        Row counts are not read here: they come from the dump stream.
        ``server_checksums`` adds ``CHECKSUM TABLE`` for every table.
        """

        def work() -> None:
            try:
                self._read(with_objects, server_checksums)
            except BaseException as exc:  # re-raised by wait()
                self.error = exc

        self._thread = threading.Thread(target=work, name="migration-guard-stats", daemon=True)
        self._thread.start()

    def _read(self, with_objects: bool, server_checksums: bool) -> None:
        self.engine = connect_engine(self.url)
        self.conn = conn = self.engine.connect()
        conn.exec_driver_sql("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        conn.exec_driver_sql("START TRANSACTION WITH CONSISTENT SNAPSHOT")
        self.tables = resolve_tables(self.ops, conn, self.requested)
        self.server_version = self.ops.server_version(conn)
        self.database_options = self.ops.database_options(conn)
        self.float_columns = [
            f"{table}.{column}"
            for table, column in conn.exec_driver_sql(
                "SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS "
                "WHERE TABLE_SCHEMA = DATABASE() AND DATA_TYPE = 'float' "
                "ORDER BY TABLE_NAME, ORDINAL_POSITION"
            )
            if table in self.tables
        ]
        self.definitions = {table: self.ops.show_create_table(conn, table) for table in self.tables}
        self.stats = self.ops.table_stats(
            conn,
            self.tables,
            rows=False,
            checksums=server_checksums,
            definitions=self.definitions,
        )
        if with_objects:
            self.object_hashes = self.ops.objects(conn)
            self.objects = {kind: sorted(hashes) for kind, hashes in self.object_hashes.items()}

    def wait_quietly(self) -> None:
        """Join the thread, whatever it ended with."""
        if self._thread is not None:
            self._thread.join()

    def wait(self) -> None:
        """Join the thread and re-raise its error, if any."""
        if self._thread is not None:
            self._thread.join()
        if isinstance(self.error, MigrationGuardError):
            raise self.error
        if self.error is not None:
            raise BackupError(f"could not read table checksums: {self.error}") from self.error

    def with_content(
        self, content: dict[str, TableContent], counters: dict[str, int | None]
    ) -> dict[str, TableStats]:
        """The stats with the stream's row counts, digests and counters added.

        A table whose rows the stream could not count (a dump tool that prints
        all rows of a statement on one line) is counted in this snapshot. The
        definition hash takes the ``AUTO_INCREMENT`` counter the dump printed
        (``counters``): it was read at another moment than this snapshot's
        definition, and it is the one a restore sets.
        """
        uncounted = [t for t in self.tables if content.get(t) is None or content[t].rows is None]
        counted: dict[str, TableStats] = {}
        if uncounted:
            assert self.conn is not None
            counted = self.ops.table_stats(self.conn, uncounted, checksums=False)
        result: dict[str, TableStats] = {}
        for table in self.tables:
            stats = self.stats[table]
            seen = content.get(table)
            rows = seen.rows if seen is not None else None
            if rows is None:
                rows = counted[table].rows
            ddl_sha256 = stats.ddl_sha256
            if table in counters:
                definition = with_auto_increment(self.definitions[table], counters[table])
                ddl_sha256 = sha256_text(definition)
            result[table] = dataclasses.replace(
                stats,
                rows=rows,
                content_sha256=seen.sha256 if seen is not None else None,
                ddl_sha256=ddl_sha256,
            )
        return result

    def close(self) -> None:
        """End the snapshot and close the connection (after :meth:`wait`)."""
        if self.conn is not None:
            with contextlib.suppress(Exception):
                self.conn.rollback()
            with contextlib.suppress(Exception):
                self.conn.close()
        if self.engine is not None:
            self.engine.dispose()


#: The last line mysqldump/mariadb-dump writes when a dump finished.
MYSQL_DUMP_FOOTER = b"-- Dump completed"


class MysqldumpBackend(Backend):
    """Streams ``mariadb-dump``/``mysqldump``; restores through ``mariadb``/``mysql``."""

    name: ClassVar[str] = "mysqldump"
    dialects: ClassVar[frozenset[str]] = MYSQL_FAMILY
    stream_formats: ClassVar[frozenset[str]] = frozenset({"mysql-sql", "mysql-native"})

    def stream_problem(self, stream_format: str, head: bytes, tail: bytes) -> str | None:
        """A complete mysqldump ends with its ``-- Dump completed`` footer."""
        del head
        if stream_format.lower() == "mysql-sql" and MYSQL_DUMP_FOOTER not in tail:
            return "the SQL dump has no '-- Dump completed' footer (incomplete dump)"
        return None

    def stream_coordinates(
        self, stream_format: str, head: bytes, tail: bytes
    ) -> dict[str, str] | None:
        """The binlog coordinates the dump tool printed as a comment (``--master-data=2``)."""
        if stream_format.lower() != "mysql-sql":
            return None
        return parse_coordinates(head, tail)

    def available(self) -> str | None:
        try:
            find_tool(DUMP_TOOLS, "take backups")
            find_tool(CLIENT_TOOLS, "restore backups")
        except ToolMissingError as exc:
            return exc.message
        return None

    @staticmethod
    def dump_command(
        tool: str, defaults_file: Path, database: str, tables: Sequence[str] | None
    ) -> list[str]:
        """The argv of a dump; ``--defaults-extra-file`` must come first."""
        command = [
            tool,
            f"--defaults-extra-file={defaults_file}",
            *DATA_FORMAT_OPTIONS,
            "--triggers",
            "--no-create-db",
            "--add-drop-table",
        ]
        if tables is None:
            command += ["--routines", "--events"]
        else:
            command += ["--skip-routines", "--skip-events"]
        command += oracle_options(tool)
        command += ["--", database]
        if tables is not None:
            command += list(tables)
        return command

    @staticmethod
    def data_command(
        tool: str, defaults_file: Path, database: str, tables: Sequence[str]
    ) -> list[str]:
        """A data-only dump of ``tables``, rows printed as :meth:`dump_command` prints them."""
        return [
            tool,
            f"--defaults-extra-file={defaults_file}",
            *DATA_FORMAT_OPTIONS,
            "--no-create-info",
            "--skip-triggers",
            "--skip-routines",
            "--skip-events",
            *oracle_options(tool),
            "--",
            database,
            *tables,
        ]

    @staticmethod
    def restore_command(
        tool: str, defaults_file: Path, database: str, *, unbuffered: bool = False
    ) -> list[str]:
        """The argv of a restore; ``--defaults-extra-file`` must come first.

        ``unbuffered`` makes the client flush its output after every statement,
        which the parallel restore needs to see its barrier markers in time.
        """
        return [
            tool,
            f"--defaults-extra-file={defaults_file}",
            "--binary-mode",
            "--default-character-set=utf8mb4",
            "--max-allowed-packet=1G",
            "--batch",
            *(["--unbuffered"] if unbuffered else []),
            "--",
            database,
        ]

    def dump(
        self,
        url: URL,
        sink: BinaryIO,
        *,
        tables: Sequence[str] | None = None,
        progress: ByteCounter | None = None,
        server_checksums: bool = False,
    ) -> DumpResult:
        tool = find_tool(DUMP_TOOLS, "take backups")
        database = url.database or ""
        if not database:
            raise UsageError(f"the URL {safe_url_text(url)} names no database to back up")
        snapshot = SnapshotStats(url, tables)
        scanner = DumpScanner()
        # The snapshot's queries run while the dump tool connects and starts
        # printing: neither waits for the other.
        snapshot.start(with_objects=tables is None, server_checksums=server_checksums)
        log_bin = _log_bin_enabled(url, snapshot.ops)
        watcher = CoordinateWatcher(sink)
        try:
            try:
                with client_defaults_file(url) as defaults_file:
                    command = self.dump_command(tool, defaults_file, database, snapshot.requested)
                    if log_bin:  # the coordinates of the dump's own snapshot, as a comment
                        at = command.index("--")
                        command[at:at] = dump_source_options(is_oracle_mysqldump(tool))
                    run_dump(command, url, watcher, progress, scanner)
            except MigrationGuardError:
                snapshot.wait()  # an unknown table or a refused login, said plainly
                raise
            snapshot.wait()
            stats = snapshot.with_content(scanner.result(), scanner.auto_increments())
        finally:
            snapshot.wait_quietly()
            snapshot.close()
        return DumpResult(
            tables=stats,
            server_version=snapshot.server_version,
            stream_format="mysql-sql",
            binlog=watcher.coordinates() if log_bin else None,
            objects=snapshot.objects,
            extra={
                "tool": Path(tool).name,
                "database_options": snapshot.database_options,
                "warnings": _float_warnings(snapshot.float_columns),
                "object_sha256": snapshot.object_hashes,
                "content_digest": {"method": DIGEST_METHOD, "tool": tool_version(tool)},
            },
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
        self.check_stream_format(stream_format)
        tool = find_tool(CLIENT_TOOLS, "restore backups")
        database = url.database or ""
        if not database:
            raise UsageError(f"the URL {safe_url_text(url)} names no database to restore into")
        connect_engine(url).dispose()  # a clear error before any byte is sent
        counted = CountingReader(source, progress)
        chunks: Iterable[bytes]
        if tables is None:
            chunks = read_chunks(counted)
        elif stream_format == "mysql-native":
            from migration_guard.backup.backends.native import filter_native_tables

            chunks = filter_native_tables(iter_lines(counted), tables)
        else:
            chunks = filter_tables(iter_lines(counted), tables)
        with client_defaults_file(url) as defaults_file:
            if stream_format == "mysql-sql":
                scanner = DumpScanner()
                command = self.restore_command(tool, defaults_file, database, unbuffered=True)
                run_parallel_restore(command, url, scanned(chunks, scanner))
                return RestoreOutcome(content=scanner.result())
            command = self.restore_command(tool, defaults_file, database)
            run_restore(command, url, chunks)
        return RestoreOutcome()

    def content_digests(self, url: URL, tables: Sequence[str]) -> dict[str, TableContent] | None:
        """Dump the data of ``tables`` again and digest it as :meth:`dump` did."""
        if not tables:
            return {}
        tool = find_tool(DUMP_TOOLS, "read table contents")
        database = url.database or ""
        if not database:
            raise UsageError(f"the URL {safe_url_text(url)} names no database to read")
        scanner = DumpScanner()
        with client_defaults_file(url) as defaults_file:
            command = self.data_command(tool, defaults_file, database, tables)
            run_dump(command, url, _NullSink(), None, scanner)
        return scanner.result()


def _log_bin_enabled(url: URL, ops: MySQLDialectOps) -> bool:
    """Whether the server keeps a binary log (then the dump records its coordinates)."""
    engine = connect_engine(url)
    try:
        with engine.connect() as conn:
            return ops.log_bin_enabled(conn)
    finally:
        engine.dispose()


def _float_warnings(columns: Sequence[str]) -> list[str]:
    if not columns:
        return []
    return [
        "MariaDB prints FLOAT (single precision) values with 6 significant digits, so "
        "mariadb-dump/mysqldump may round them and CHECKSUM TABLE can differ after a restore; "
        f"affected columns: {', '.join(columns)}. The native backend keeps them exact."
    ]


class _NullSink:
    """A sink that keeps nothing (the data is only digested)."""

    def write(self, data: bytes) -> int:
        return len(data)
