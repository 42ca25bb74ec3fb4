"""The default MySQL/MariaDB backend: ``mariadb-dump``/``mysqldump`` out, ``mariadb``/``mysql`` in.

Credentials reach the client tools only through a 0600 ``--defaults-extra-file``
in a private 0700 directory that is removed afterwards; the password is never
in argv nor in the child's environment.

Consistency: the dump runs with ``--single-transaction``. Row counts and
content digests are taken from the dump stream itself as it passes
(:mod:`~migration_guard.backup.backends.dumpscan`), so they describe exactly
the dumped snapshot and cost the server nothing. DDL hashes, sizes, the binlog
position and, with ``server_checksums``, ``CHECKSUM TABLE`` are read on a
separate connection whose ``START TRANSACTION WITH CONSISTENT SNAPSHOT`` is
opened on a thread while the dump process starts: a second consistent
snapshot, so a write committed in the few milliseconds between the two shows up
in the dump and not in those checksums (verification would then report a
mismatch rather than silently pass). Row counts and digests never have this
gap.

The stream never contains ``USE`` or ``CREATE DATABASE`` (the database name is
passed without ``--databases``), so it restores into any database name. Views
print their tables unqualified when they live in the same database; routine
bodies are copied verbatim, so a body that names its own database explicitly
still names it after a restore under another name.

Known limit: MariaDB prints single-precision ``FLOAT`` values with 6 significant
digits, so a dump can round them; the dump result then carries a warning naming
the columns (``extra["warnings"]``). The ``native`` backend keeps them exact.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import queue
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, BinaryIO, ClassVar

from sqlalchemy.engine import URL, Connection, Engine

from migration_guard.backup.backends.base import (
    Backend,
    CountingReader,
    DumpResult,
    ProgressCallback,
    RestoreOutcome,
    Sink,
    TableContent,
    TableStats,
    iter_lines,
    read_chunks,
    select_tables,
    write_chunks,
)
from migration_guard.backup.backends.dumpscan import DIGEST_METHOD, DumpScanner, scanned
from migration_guard.dialects import get_dialect_ops
from migration_guard.dialects.base import connect_engine, safe_url_text
from migration_guard.dialects.mysql import MySQLDialectOps
from migration_guard.errors import (
    BackupError,
    DatabaseUnavailableError,
    MigrationGuardError,
    ToolMissingError,
    UsageError,
)

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

DUMP_TOOLS = ("mariadb-dump", "mysqldump")
CLIENT_TOOLS = ("mariadb", "mysql")
INSTALL_HINT = (
    "install the MariaDB/MySQL client tools (Debian/Ubuntu: apt-get install mariadb-client; "
    "Fedora/RHEL: dnf install mariadb; macOS: brew install mariadb) "
    "or use the pure-Python backend with --backend native"
)

RESTORE_PROLOGUE = (
    b"SET FOREIGN_KEY_CHECKS=0;\nSET UNIQUE_CHECKS=0;\nSET @migration_guard_allow_delete=1;\n"
)
RESTORE_EPILOGUE = b"\nSET FOREIGN_KEY_CHECKS=1;\nSET UNIQUE_CHECKS=1;\n"

#: Client error codes and texts that mean "wrong credentials or no server".
_UNAVAILABLE_PATTERNS = re.compile(
    r"Access denied|\b(1044|1045|1049|2002|2003|2005|2006|2013)\b|Can't connect|"
    r"Unknown (MySQL server host|database)|Lost connection",
    re.IGNORECASE,
)
_STDERR_LIMIT = 64 * 1024
#: Options that decide how rows are printed; a backup and any later re-dump for
#: comparing contents must use the same ones.
DATA_FORMAT_OPTIONS = (
    "--single-transaction",
    "--quick",
    "--hex-blob",
    "--default-character-set=utf8mb4",
    "--tz-utc",
)


def find_tool(candidates: Sequence[str], purpose: str) -> str:
    """The path of the first of ``candidates`` on ``PATH``; :class:`ToolMissingError` if none."""
    for candidate in candidates:
        path = shutil.which(candidate)
        if path:
            return path
    raise ToolMissingError(
        f"{' or '.join(candidates)} is needed to {purpose} but is not installed; {INSTALL_HINT}"
    )


def _option_value(value: str) -> str:
    """``value`` quoted for a MySQL option file (backslash escapes inside double quotes)."""
    escaped = (
        value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    )
    return f'"{escaped}"'


def _query_value(url: URL, key: str) -> str | None:
    value = url.query.get(key)
    if isinstance(value, tuple):
        return value[-1] if value else None
    return value


def defaults_file_text(url: URL) -> str:
    """The ``[client]`` option-file section carrying ``url``'s connection settings."""
    lines = ["[client]"]
    if url.username:
        lines.append(f"user={_option_value(url.username)}")
    if url.password is not None:
        lines.append(f"password={_option_value(str(url.password))}")
    socket = _query_value(url, "unix_socket")
    if socket:
        lines.append(f"socket={_option_value(socket)}")
    if url.host:
        lines.append(f"host={_option_value(url.host)}")
        lines.append("protocol=TCP")
    if url.port:
        lines.append(f"port={int(url.port)}")
    for url_key, option in (
        ("ssl_ca", "ssl-ca"),
        ("ssl_cert", "ssl-cert"),
        ("ssl_key", "ssl-key"),
    ):
        value = _query_value(url, url_key)
        if value:
            lines.append(f"{option}={_option_value(value)}")
    lines.append("default-character-set=utf8mb4")
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def client_defaults_file(url: URL) -> Iterator[Path]:
    """A 0600 option file in a private 0700 directory, removed on exit whatever happens."""
    directory = Path(tempfile.mkdtemp(prefix="migration-guard-"))
    path = directory / "client.cnf"
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(defaults_file_text(url))
        yield path
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        with contextlib.suppress(OSError):
            directory.rmdir()


def child_environment() -> dict[str, str]:
    """The current environment without variables that could carry a password."""
    return {key: value for key, value in os.environ.items() if key not in ("MYSQL_PWD",)}


class _StderrCollector(threading.Thread):
    """Drains a child's stderr (so it never blocks) and keeps its first 64 KiB."""

    def __init__(self, stream: IO[bytes]) -> None:
        super().__init__(daemon=True)
        self.stream = stream
        self.data = bytearray()

    def run(self) -> None:
        for chunk in iter(lambda: self.stream.read(8192), b""):
            if len(self.data) < _STDERR_LIMIT:
                self.data += chunk[: _STDERR_LIMIT - len(self.data)]

    def text(self, url: URL) -> str:
        message = self.data.decode("utf-8", "replace").strip()
        if url.password:
            message = message.replace(str(url.password), "***")
        return message


def _error_lines(stderr: str) -> list[str]:
    """The client's own error lines: what it echoes around them may be row data, whose
    numbers must not read as error codes (``2003`` in a row is not "can't connect")."""
    return [
        line[:500]
        for line in stderr.splitlines()
        if line.startswith("ERROR") or "Got error" in line or ": error:" in line.lower()
    ]


def _tool_error(tool: str, action: str, url: URL, returncode: int, stderr: str) -> Exception:
    errors = _error_lines(stderr)
    detail = "\n".join(errors[:5]) if errors else (stderr[:2000] or f"exit status {returncode}")
    if any(_UNAVAILABLE_PATTERNS.search(line) for line in errors or stderr.splitlines()[:3]):
        return DatabaseUnavailableError(
            f"{Path(tool).name} cannot {action} {safe_url_text(url)}: {detail}. "
            "Check that the server is running and reachable and that the user, password "
            "and database name are right."
        )
    return BackupError(f"{Path(tool).name} failed to {action} {safe_url_text(url)}: {detail}")


_SECTION = re.compile(
    rb"^-- (Table structure for table|Dumping data for table|Temporary table structure for view|"
    rb"Final view structure for view|Dumping events for database|Dumping routines for database)"
    rb" (?:`((?:[^`]|``)*)`|'.*')\s*$"
)
_POSTAMBLE = re.compile(rb"^/\*!\d+ SET \S+\s*=\s*@OLD_")


def filter_tables(lines: Iterable[bytes], tables: Sequence[str]) -> Iterator[bytes]:
    """Only the preamble, postamble and the sections of ``tables`` of a mysqldump stream.

    mysqldump introduces each part with a comment line such as
    ``-- Table structure for table `t``` or ``-- Dumping data for table `t```;
    a table's triggers follow its data inside its section. Views, routines
    and events are dropped: a partial restore brings back table contents.
    """
    wanted = {name.encode("utf-8") for name in tables}
    keeping = True
    for line in lines:
        if line.startswith(b"-- "):
            match = _SECTION.match(line)
            if match:
                kind, quoted = match.group(1), match.group(2)
                name = quoted.replace(b"``", b"`") if quoted is not None else None
                keeping = kind in (b"Table structure for table", b"Dumping data for table") and (
                    name in wanted
                )
        elif not keeping and _POSTAMBLE.match(line):
            keeping = True
        if keeping:
            yield line


def resolve_tables(
    ops: MySQLDialectOps, conn: Connection, tables: Sequence[str] | None
) -> list[str]:
    """``tables`` checked against the database's base tables (all of them when ``None``)."""
    existing = ops.list_tables(conn)
    if tables is None:
        return existing
    return select_tables(existing, tables)


class SnapshotStats:
    """DDL hashes, sizes, binlog position and schema objects, read in one consistent
    snapshot on a thread of its own while the dump runs."""

    def __init__(self, url: URL, tables: Sequence[str] | None) -> None:
        self.url = url
        ops = get_dialect_ops(url.get_backend_name())
        assert isinstance(ops, MySQLDialectOps)
        self.ops: MySQLDialectOps = ops
        self.requested = None if tables is None else list(dict.fromkeys(tables))
        self.tables: list[str] = []
        self.server_version = ""
        self.binlog: dict[str, str] | None = None
        self.database_options: dict[str, str] = {}
        self.float_columns: list[str] = []
        self.stats: dict[str, TableStats] = {}
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
        self.binlog = self.ops.binlog_position(conn)
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
        self.stats = self.ops.table_stats(conn, self.tables, rows=False, checksums=server_checksums)
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

    def with_content(self, content: dict[str, TableContent]) -> dict[str, TableStats]:
        """The stats with the stream's row counts and digests added.

        A table whose rows the stream could not count (a dump tool that prints
        all rows of a statement on one line) is counted in this snapshot.
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
            result[table] = dataclasses.replace(
                stats, rows=rows, content_sha256=seen.sha256 if seen is not None else None
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
    dialects: ClassVar[frozenset[str]] = frozenset({"mysql", "mariadb"})
    stream_formats: ClassVar[frozenset[str]] = frozenset({"mysql-sql", "mysql-native"})

    def stream_problem(self, stream_format: str, head: bytes, tail: bytes) -> str | None:
        """A complete mysqldump ends with its ``-- Dump completed`` footer."""
        del head
        if stream_format.lower() == "mysql-sql" and MYSQL_DUMP_FOOTER not in tail:
            return "the SQL dump has no '-- Dump completed' footer (incomplete dump)"
        return None

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
        command += _oracle_options(tool)
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
            *_oracle_options(tool),
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
        progress: ProgressCallback | None = None,
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
        try:
            try:
                with client_defaults_file(url) as defaults_file:
                    command = self.dump_command(tool, defaults_file, database, snapshot.requested)
                    _run_dump(command, url, sink, progress, scanner)
            except MigrationGuardError:
                snapshot.wait()  # an unknown table or a refused login, said plainly
                raise
            snapshot.wait()
            stats = snapshot.with_content(scanner.result())
        finally:
            snapshot.wait_quietly()
            snapshot.close()
        return DumpResult(
            tables=stats,
            server_version=snapshot.server_version,
            stream_format="mysql-sql",
            binlog=snapshot.binlog,
            objects=snapshot.objects,
            extra={
                "tool": Path(tool).name,
                "database_options": snapshot.database_options,
                "warnings": _float_warnings(snapshot.float_columns),
                "object_sha256": snapshot.object_hashes,
                "content_digest": {"method": DIGEST_METHOD, "tool": _tool_version(tool)},
            },
        )

    def restore(
        self,
        url: URL,
        source: BinaryIO,
        *,
        stream_format: str,
        tables: Sequence[str] | None = None,
        progress: ProgressCallback | None = None,
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
                _run_parallel_restore(command, url, scanned(chunks, scanner))
                return RestoreOutcome(content=scanner.result())
            command = self.restore_command(tool, defaults_file, database)
            _run_restore(command, url, chunks)
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
            _run_dump(command, url, _NullSink(), None, scanner)
        return scanner.result()


def _float_warnings(columns: Sequence[str]) -> list[str]:
    if not columns:
        return []
    return [
        "MariaDB prints FLOAT (single precision) values with 6 significant digits, so "
        "mariadb-dump/mysqldump may round them and CHECKSUM TABLE can differ after a restore; "
        f"affected columns: {', '.join(columns)}. The native backend keeps them exact."
    ]


@functools.lru_cache(maxsize=8)
def _tool_version(tool: str) -> str:
    """The first line ``tool --version`` prints (empty when it cannot run)."""
    try:
        output = subprocess.run(
            [tool, "--version"],
            capture_output=True,
            check=False,
            timeout=30,
            env=child_environment(),
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return ""
    lines = output.decode("utf-8", "replace").strip().splitlines()
    return lines[0] if lines else ""


def _is_oracle_mysqldump(tool: str) -> bool:
    version = _tool_version(tool)
    return bool(version) and "MariaDB" not in version


def _oracle_options(tool: str) -> list[str]:
    if not _is_oracle_mysqldump(tool):
        return []
    # GTID_PURGED would fail a restore into a server with its own GTIDs;
    # column statistics do not exist on MariaDB servers.
    return ["--set-gtid-purged=OFF", "--column-statistics=0"]


class _NullSink:
    """A sink that keeps nothing (the data is only digested)."""

    def write(self, data: bytes) -> int:
        return len(data)


@contextlib.contextmanager
def _tool_process(
    command: list[str],
    url: URL,
    action: str,
    *,
    stdin: int,
    stdout: int,
    output_buffer: bool = False,
) -> Iterator[subprocess.Popen[bytes]]:
    """``command`` running with stderr collected; killed if the body raises.

    After the body the process is waited for; a non-zero exit becomes the error
    :func:`_tool_error` makes of it (``action``: "back up", "restore into").
    ``output_buffer`` gives the tool a large stdout buffer (:func:`with_output_buffer`).
    """
    argv = command
    if output_buffer:
        # Under stdbuf a missing tool would only show as stdbuf's exit status 127.
        if shutil.which(command[0]) is None:
            raise ToolMissingError(f"cannot run {command[0]}: no such program; {INSTALL_HINT}")
        argv = with_output_buffer(command)
    try:
        process = subprocess.Popen(
            argv, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE, env=child_environment()
        )
    except OSError as exc:
        raise ToolMissingError(f"cannot run {command[0]}: {exc}; {INSTALL_HINT}") from None
    for pipe in (process.stdin, process.stdout):
        if pipe is not None:
            _widen_pipe(pipe.fileno())
    assert process.stderr is not None
    stderr = _StderrCollector(process.stderr)
    stderr.start()
    try:
        yield process
    except BaseException:
        process.kill()
        process.wait()
        raise
    returncode = process.wait()
    stderr.join()
    if returncode != 0:
        raise _tool_error(command[0], action, url, returncode, stderr.text(url))


#: A pipe of this size lets the dump tool run ahead while a chunk is compressed.
_PIPE_SIZE = 1024 * 1024


def _widen_pipe(descriptor: int) -> None:
    """Grow a pipe's buffer (Linux); elsewhere, or above the user's limit, keep it."""
    set_size = getattr(fcntl, "F_SETPIPE_SZ", None) if fcntl is not None else None
    if set_size is not None:
        with contextlib.suppress(OSError):
            fcntl.fcntl(descriptor, set_size, _PIPE_SIZE)


#: The dump tool's stdio output buffer when ``stdbuf`` can set it.
_DUMP_OUTPUT_BUFFER = "1M"


def with_output_buffer(command: list[str]) -> list[str]:
    """``command`` run under coreutils' ``stdbuf`` with a large stdout buffer, if present.

    ``mariadb-dump`` writes through stdio in 4 KiB pieces: about 108,000 write
    calls into the pipe for a 440 MB dump, each waking the reader. A 1 MiB
    buffer cuts that a hundredfold and the dump's own CPU time by a tenth
    (docs/performance.md). Without ``stdbuf`` (not Linux) nothing changes.
    """
    stdbuf = shutil.which("stdbuf")
    if stdbuf is None:
        return command
    return [stdbuf, f"--output={_DUMP_OUTPUT_BUFFER}", *command]


def _run_dump(
    command: list[str],
    url: URL,
    sink: Sink,
    progress: ProgressCallback | None,
    scanner: DumpScanner,
) -> None:
    with _tool_process(
        command,
        url,
        "back up",
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        output_buffer=True,
    ) as process:
        assert process.stdout is not None
        stdout = process.stdout
        with stdout:
            _yielding_to(
                process,
                lambda: write_chunks(scanned(read_chunks(stdout), scanner), sink, progress),
            )


#: How much lower than the caller's the CPU priority of the thread that digests,
#: compresses and encrypts the dump is (``nice``; Linux and other POSIX systems).
CONSUMER_NICENESS = 10


def _lower_own_priority(by: int) -> None:
    """Lower the calling thread's CPU priority (never raises; a no-op where unsupported)."""
    if not hasattr(os, "setpriority"):
        return
    with contextlib.suppress(OSError, AttributeError):
        thread = threading.get_native_id()
        current = os.getpriority(os.PRIO_PROCESS, thread)
        os.setpriority(os.PRIO_PROCESS, thread, min(19, current + by))


def _yielding_to(process: subprocess.Popen[bytes], work: Callable[[], None]) -> None:
    """Run ``work`` (reading ``process``'s output) on a thread of lower CPU priority.

    On a busy machine the dump tool and the server are the critical path: when
    they want a core they get it before our compression does, and the pipe
    and the dump tool's buffer absorb the difference. zstd's worker threads,
    started by the first write, inherit the lower priority. It also means a
    backup yields to the application's own work. The caller's thread keeps its
    priority. If the caller is interrupted, the dump tool is killed first, so
    the thread ends before anything else is torn down.
    """
    failure: list[BaseException] = []

    def run() -> None:
        _lower_own_priority(CONSUMER_NICENESS)
        try:
            work()
        except BaseException as exc:  # re-raised in the caller's thread
            failure.append(exc)

    worker = threading.Thread(target=run, name="migration-guard-dump-reader", daemon=True)
    worker.start()
    try:
        worker.join()
    except BaseException:
        process.kill()
        worker.join()
        raise
    if failure:
        raise failure[0]


def _run_restore(command: list[str], url: URL, chunks: Iterable[bytes]) -> None:
    with _tool_process(
        command, url, "restore into", stdin=subprocess.PIPE, stdout=subprocess.DEVNULL
    ) as process:
        assert process.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            process.stdin.write(RESTORE_PROLOGUE)
            for chunk in chunks:
                process.stdin.write(chunk)
            process.stdin.write(RESTORE_EPILOGUE)
        with contextlib.suppress(BrokenPipeError):
            process.stdin.close()


#: Client connections that load the dump's ``INSERT`` statements side by side.
INSERT_WORKERS = 2
#: Statements waiting for a worker; each is at most ``max_allowed_packet`` of the
#: dump (about 1 MB with mysqldump's defaults), so memory stays flat.
_QUEUED_STATEMENTS = 4
_BARRIER_MARKER = b"mg-barrier-"
_INSERT_START = b"INSERT INTO "
_CREATE_TABLE = re.compile(rb"^CREATE TABLE `((?:[^`]|``)*)` \(\s*$")
_TABLE_LOCK = re.compile(rb"^(?:LOCK TABLES `(?:[^`]|``)*` WRITE|UNLOCK TABLES)\s*;\s*$")


def defer_secondary_keys(lines: list[bytes]) -> tuple[bytes, bytes | None, list[bytes]]:
    """A dumped ``CREATE TABLE`` (its lines) without its plain secondary keys.

    Returns the statement to run, the table's quoted name (``None`` when
    nothing was deferred) and the key definitions to add once its rows are in.
    Building an index once over loaded rows is cheaper than updating it row by
    row (myloader does the same; -8 % on the benchmark table). Only plain
    ``KEY`` lines of InnoDB tables without foreign keys or partitions are
    deferred: a foreign key needs its index while rows arrive (InnoDB would
    make one of its own), and unique, full-text and spatial keys stay where
    they are. Added back in their original order, the keys make ``SHOW CREATE
    TABLE`` come out the same.
    """
    statement = b"".join(lines)
    close = next((i for i, line in enumerate(lines) if line.startswith(b")")), None)
    name = _CREATE_TABLE.match(lines[0])
    if name is None or close is None or close < 2:
        return statement, None, []
    body, tail = lines[1:close], b"".join(lines[close:])
    if (
        b"ENGINE=InnoDB" not in lines[close]
        or b"PARTITION" in tail
        or any(b"FOREIGN KEY" in line for line in body)
    ):
        return statement, None, []
    kept = [line for line in body if not line.startswith(b"  KEY `")]
    keys = [line.strip().rstrip(b",") for line in body if line.startswith(b"  KEY `")]
    if not keys or not kept:
        return statement, None, []
    definitions = [line.rstrip(b"\r\n").rstrip(b",") for line in kept]
    return lines[0] + b",\n".join(definitions) + b"\n" + tail, name.group(1), keys


class _ClientGone(Exception):
    """A client process stopped before the restore ended (its exit status tells why)."""


class _MarkerReader(threading.Thread):
    """Drains a client's output and hands over the barrier markers it prints."""

    def __init__(self, stream: IO[bytes]) -> None:
        super().__init__(daemon=True)
        self.stream = stream
        self.markers: queue.Queue[bytes | None] = queue.Queue()

    def run(self) -> None:
        try:
            for line in self.stream:
                if line.startswith(_BARRIER_MARKER):
                    self.markers.put(line.rstrip(b"\r\n"))
        except (OSError, ValueError):  # pragma: no cover - the pipe was torn down
            pass
        self.markers.put(None)


class _BarrierClient:
    """A ``mariadb`` client fed through a pipe that can be waited for.

    The client cannot say when it has executed what it was sent, so a barrier
    sends ``SELECT 'marker'`` and waits for the client (run with
    ``--unbuffered``) to print the marker back: everything before it has run.
    """

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdin is not None and process.stdout is not None
        self.stdin = process.stdin
        self.reader = _MarkerReader(process.stdout)
        self.reader.start()
        self.markers_sent = 0

    def write(self, data: bytes) -> None:
        """Send ``data``; :class:`_ClientGone` if the client has exited."""
        try:
            self.stdin.write(data)
        except OSError:
            raise _ClientGone from None

    def sync(self) -> None:
        """Return once the client has executed everything sent so far."""
        self.markers_sent += 1
        marker = _BARRIER_MARKER + str(self.markers_sent).encode()
        self.write(b"SELECT '" + marker + b"' AS migration_guard_barrier;\n")
        try:
            self.stdin.flush()
        except OSError:
            raise _ClientGone from None
        while True:
            received = self.reader.markers.get()
            if received is None:
                raise _ClientGone
            if received == marker:
                return

    def close(self) -> None:
        """End the client's input (it exits after its last statement)."""
        with contextlib.suppress(OSError):
            self.stdin.close()


class _InsertFeeder(threading.Thread):
    """Writes the statements of a shared queue to one worker client.

    ``b""`` is a barrier: the feeder waits until its client has executed all it
    was sent, then meets the other feeders and the reader at ``barrier``.
    ``None`` ends the thread. After a failure the feeder keeps draining the
    queue so that the reader never blocks on it.
    """

    def __init__(
        self,
        client: _BarrierClient,
        statements: queue.Queue[bytes | None],
        barrier: threading.Barrier,
    ) -> None:
        super().__init__(daemon=True)
        self.client = client
        self.statements = statements
        self.barrier = barrier
        self.failed = False

    def run(self) -> None:
        while True:
            statement = self.statements.get()
            if statement is None:
                return
            if self.failed:
                continue
            try:
                if statement:
                    self.client.write(statement)
                else:
                    self.client.sync()
                    self.barrier.wait()
            except (_ClientGone, threading.BrokenBarrierError):
                self.failed = True
                self.barrier.abort()


class _ParallelLoader:
    """Splits a mysqldump stream over one ordered client and ``INSERT_WORKERS`` workers.

    Everything but the data ``INSERT`` statements goes, in order, to the main
    client. The ``INSERT`` statements of a table go to whichever worker is free,
    but only after the main client has executed everything before them (the
    ``CREATE TABLE``), and the main client gets the next statement (``ENABLE
    KEYS``, triggers, views, routines) only after the workers have executed all
    of them. Workers start with the same session settings as the main client
    (the restore prologue and the dump's header). ``LOCK TABLES ... WRITE`` /
    ``UNLOCK TABLES`` of the data sections are dropped: they would serialise
    the workers.
    """

    def __init__(self, start_client: Callable[[], subprocess.Popen[bytes]]) -> None:
        self._start_client = start_client
        self.main = _BarrierClient(start_client())
        self._statements: queue.Queue[bytes | None] = queue.Queue(maxsize=_QUEUED_STATEMENTS)
        self._barrier = threading.Barrier(INSERT_WORKERS + 1)
        self._feeders: list[_InsertFeeder] = []
        self._header: list[bytes] = []
        self._loading = False
        self._in_header = True
        self._in_data = False
        self._in_delimiter = False
        #: The lines of a ``CREATE TABLE`` statement being read, if any.
        self._create: list[bytes] | None = None
        #: Per table, secondary keys left out of its ``CREATE TABLE`` until its rows are in.
        self._deferred: dict[bytes, list[bytes]] = {}

    def load(self, chunks: Iterable[bytes]) -> None:
        """Send the whole stream; :class:`_ClientGone` if a client exits early."""
        self.main.write(RESTORE_PROLOGUE)
        pending = bytearray()
        resume = 0  # where the search for the end of a long INSERT continues
        for chunk in chunks:
            pending += chunk
            start = 0
            while True:
                if self._at_insert(pending, start):
                    end = pending.find(b";\n", max(start, resume))
                    if end < 0:
                        resume = max(start, len(pending) - 1)
                        break
                    resume = 0
                    self._insert(bytes(pending[start : end + 2]))
                    start = end + 2
                    continue
                end = pending.find(b"\n", start)
                if end < 0:
                    break
                self._ordered(bytes(pending[start : end + 1]))
                start = end + 1
            del pending[:start]
            resume = max(0, resume - start)
        if pending:
            if self._at_insert(pending, 0):
                self._insert(bytes(pending))
            else:
                self._ordered(bytes(pending))
        self._rows_done()
        self.main.write(RESTORE_EPILOGUE)

    def _at_insert(self, pending: bytearray, start: int) -> bool:
        return self._in_data and not self._in_delimiter and pending.startswith(_INSERT_START, start)

    def _ordered(self, line: bytes) -> None:
        if self._in_delimiter:
            if line.startswith(b"DELIMITER "):
                self._in_delimiter = line[10:].strip() != b";"
            self.main.write(line)
            return
        if self._create is not None:
            self._create.append(line)
            if line.rstrip().endswith(b";"):  # no line inside the statement ends so
                self.main.write(self._without_secondary_keys(self._create))
                self._create = None
            return
        if line.startswith(b"-- "):
            match = _SECTION.match(line)
            if match:
                self._in_header = False
                self._in_data = match.group(1) == b"Dumping data for table"
                if not self._in_data:  # the rows of any table before are all in
                    self._rows_done()
            self.main.write(line)
            return
        if not line.strip():
            self.main.write(line)
            return
        if self._in_data and _TABLE_LOCK.match(line):
            if line.startswith(b"UNLOCK"):
                self._rows_done()
            return
        if not self._in_data and _CREATE_TABLE.match(line):
            self._create = [line]
            return
        if self._loading:
            self._finish_inserts()
        if line.startswith(b"DELIMITER "):
            self._in_delimiter = line[10:].strip() != b";"
        if self._in_header:
            self._header.append(line)
        self.main.write(line)

    def _without_secondary_keys(self, lines: list[bytes]) -> bytes:
        statement, table, keys = defer_secondary_keys(lines)
        if table is not None:
            self._deferred[table] = keys
        return statement

    def _rows_done(self) -> None:
        """Wait for the workers' rows, then add back the keys deferred so far."""
        if self._loading:
            self._finish_inserts()
        for table, keys in self._deferred.items():
            additions = b", ".join(b"ADD " + key for key in keys)
            self.main.write(b"ALTER TABLE `" + table + b"` " + additions + b";\n")
        self._deferred.clear()

    def _insert(self, statement: bytes) -> None:
        if not self._loading:
            self.main.sync()  # the table exists before its rows arrive
            if not self._feeders:
                self._start_workers()
            self._loading = True
        if any(feeder.failed for feeder in self._feeders):
            raise _ClientGone
        self._statements.put(statement)

    def _finish_inserts(self) -> None:
        for _ in self._feeders:
            self._statements.put(b"")
        try:
            self._barrier.wait()
        except threading.BrokenBarrierError:
            raise _ClientGone from None
        self._loading = False

    def _start_workers(self) -> None:
        prologue = RESTORE_PROLOGUE + b"".join(self._header)
        for _ in range(INSERT_WORKERS):
            client = _BarrierClient(self._start_client())
            client.write(prologue)
            feeder = _InsertFeeder(client, self._statements, self._barrier)
            feeder.start()
            self._feeders.append(feeder)

    def close(self) -> None:
        """Stop the feeders and end every client's input; safe to call twice."""
        self._barrier.abort()
        for feeder in self._feeders:
            if feeder.is_alive():
                self._statements.put(None)
        for feeder in self._feeders:
            feeder.join()
            feeder.client.close()
        self._feeders = []
        self.main.close()


def _run_parallel_restore(command: list[str], url: URL, chunks: Iterable[bytes]) -> None:
    """Load a mysqldump stream with its ``INSERT`` statements over several connections."""
    client_gone = False
    with contextlib.ExitStack() as stack:

        def start_client() -> subprocess.Popen[bytes]:
            return stack.enter_context(
                _tool_process(
                    command, url, "restore into", stdin=subprocess.PIPE, stdout=subprocess.PIPE
                )
            )

        loader = _ParallelLoader(start_client)
        # Registered before any worker starts, so it runs after the workers are
        # waited for (or killed): no feeder is then left blocked on a pipe.
        stack.callback(loader.close)
        try:
            loader.load(chunks)
        except _ClientGone:
            client_gone = True
        loader.close()
    if client_gone:  # every client exited 0, yet one stopped reading early
        raise BackupError(
            f"the restore into {safe_url_text(url)} stopped early: a client connection "
            "closed before the whole backup was sent"
        )
