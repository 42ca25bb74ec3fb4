"""The PostgreSQL backend: ``pg_dump -Fc`` out, ``pg_restore --jobs N`` in.

Dump: a connection opens a ``REPEATABLE READ`` transaction and exports its
snapshot (``pg_export_snapshot()``); the per-table row counts, checksums and
definition hashes for the manifest are read in that transaction, and
``pg_dump --snapshot`` dumps exactly the same snapshot while it stays open. So
the counts a restore proves describe the very rows in the archive. pg_dump
writes the custom format (uncompressed: the archive compresses with zstd) to
its stdout, which goes straight into the encrypted archive; no plaintext file.

Restore: ``pg_restore`` reads only a seekable file in parallel, so the decrypted
stream is written into a private 0700 scratch directory (removed afterwards,
and by the next run after a SIGKILL). Into a new or empty database it runs in
two steps: the definitions and rows (``pre-data``, ``data``; from the stream,
only its head, the table of contents, written to the file; or with ``--jobs N``
from the whole file when many like tables make that pay: :mod:`.pg_load`; a big
table's rows from the stream over two ``COPY`` connections: :mod:`.pg_split`),
then the indexes, constraints and triggers (``post-data``, ``--jobs N``), once
one connection has counted and digested every table (with the server's parallel
workers), measures the engine compares with the manifest instead of reading the
tables again. Into a database that holds
tables it runs once with ``--clean --if-exists --single-transaction``: one
transaction that drops and recreates the archive's objects, so any failure (a
damaged stream, a lost connection, a full disk, a killed process) leaves the
target exactly as it was (:class:`LoadRolledBack`); the engine measures after it.
Owners are left out unless :class:`RestoreOptions` ``owners``; grants are
restored unless not ``grants``. The engine then counts and checksums every
table of the target and compares them with the manifest.

Credentials: :mod:`.pg_client` (a 0600 ``PGPASSFILE``, never argv or environment).
"""

from __future__ import annotations

import contextlib
import copy
import os
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO, ClassVar

from sqlalchemy.engine import URL, Connection

from migration_guard.backup.backends.base import (
    Backend,
    ByteCounter,
    CountingReader,
    DumpResult,
    RestoreOptions,
    RestoreOutcome,
    TableStats,
)
from migration_guard.backup.backends.mysql_client import (
    run_dump,
    tool_process,
    tool_version,
)
from migration_guard.backup.backends.pg_client import (
    DUMP_TOOL,
    RESTORE_TOOL,
    conninfo,
    find_pg_tool,
    pg_credentials,
    tool_major,
    version_problem,
)
from migration_guard.backup.backends.pg_feed import stream_into
from migration_guard.backup.backends.pg_load import CUSTOM_MAGIC, stream_pays, write_file
from migration_guard.backup.backends.pg_split import split_available, split_table, stream_split
from migration_guard.backup.backends.pg_tables import restore_tables
from migration_guard.backup.manifest import ROW_DIGEST_METHOD
from migration_guard.backup.scratch import scratch_directory
from migration_guard.config import Dialect
from migration_guard.dialects import get_dialect_ops
from migration_guard.dialects.base import connect_engine, connected, safe_url_text
from migration_guard.dialects.digests import digest_method
from migration_guard.dialects.postgresql import (
    PostgreSQLDialectOps,
    quote_postgresql_identifier,
)
from migration_guard.dialects.postgresql_database import database_extensions, database_locale
from migration_guard.dialects.postgresql_digest import RECORD_DIGEST, TEXT_DIGEST
from migration_guard.errors import (
    BackupError,
    LoadRolledBack,
    MigrationGuardError,
    ToolMissingError,
    UsageError,
)

#: What each row digest method is, for a person reading the manifest (``row_digest``).
ROW_DIGESTS = {
    TEXT_DIGEST: "count(*) and sum(hashtextextended(row::text, 0))",
    RECORD_DIGEST: "count(*) and sum(hashtextextended(hash_record_extended(ROW(columns), "
    "0)::text, 0)); columns as stored or by their text, see docs/backups.md",
}

#: The ``stream_format`` of a pg_dump custom-format archive.
STREAM_FORMAT = "postgresql-custom"
#: Parallel ``pg_restore`` workers (at most this many, at most the CPU count).
MAX_RESTORE_JOBS = 4


def restore_jobs() -> int:
    """How many ``pg_restore`` workers: the CPU count, at most :data:`MAX_RESTORE_JOBS`."""
    return max(1, min(MAX_RESTORE_JOBS, os.cpu_count() or 1))


def _ops(url: URL) -> PostgreSQLDialectOps:
    ops = get_dialect_ops(url.get_backend_name())
    if not isinstance(ops, PostgreSQLDialectOps):
        raise UsageError(
            f"the pgdump backend backs up PostgreSQL databases, not {url.get_backend_name()}"
        )
    return ops


@contextlib.contextmanager
def exported_snapshot(url: URL) -> Iterator[tuple[Connection, str]]:
    """A ``REPEATABLE READ`` transaction and the id of its exported snapshot.

    The snapshot stays importable (``pg_dump --snapshot``) until the body ends.
    """
    engine = connect_engine(url)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            try:
                snapshot = str(conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one())
                yield conn, snapshot
            finally:
                with contextlib.suppress(Exception):
                    conn.rollback()
    finally:
        engine.dispose()


def table_pattern(schema: str, table: str) -> str:
    """A pg_dump table pattern matching exactly ``schema.table`` (quoted: no wildcards)."""
    return f"{quote_postgresql_identifier(schema)}.{quote_postgresql_identifier(table)}"


class PgdumpBackend(Backend):
    """Streams ``pg_dump --format=custom``; restores with ``pg_restore --jobs N``."""

    name: ClassVar[str] = "pgdump"
    dialects: ClassVar[frozenset[str]] = frozenset({Dialect.POSTGRESQL.value})
    stream_formats: ClassVar[frozenset[str]] = frozenset({STREAM_FORMAT})

    #: Owners left out (the restoring role owns all) and grants restored, by default.
    options: RestoreOptions = RestoreOptions()
    #: The bytes of each table of the archive to restore (its manifest's), when known.
    table_sizes: Mapping[str, int | None] = {}
    #: The row digest method the archive's manifest records (None: it names none).
    recorded_digest: object = None

    def configured(self, options: RestoreOptions) -> PgdumpBackend:
        """A copy of this backend that restores with ``options``."""
        backend = copy.copy(self)
        backend.options = options
        return backend

    def planned(self, table_sizes: Mapping[str, int | None]) -> PgdumpBackend:
        """A copy of this backend that plans its restore by ``table_sizes`` (:mod:`.pg_load`)."""
        backend = copy.copy(self)
        backend.table_sizes = dict(table_sizes)
        return backend

    def digesting(self, recorded: object) -> PgdumpBackend:
        """A copy of this backend that measures the restored rows with the method
        ``recorded`` (a manifest's ``row_digest_method``)."""
        backend = copy.copy(self)
        backend.recorded_digest = recorded
        return backend

    def overwrite_problem(
        self, extra: Mapping[str, object], tables: Sequence[str] | None
    ) -> str | None:
        """A ``critical`` or ``tables`` archive holds every table's definition but the
        rows of some only: restored whole over a live database it would recreate the
        others empty. Selected ``tables`` replace only themselves (``pg_tables``)."""
        if tables or not extra.get("tables_without_data"):
            return None
        return (
            "this pgdump backup holds the rows of only some tables (a critical or tables "
            "backup) and the definitions of all; restored over a database that holds tables "
            "it would empty the others. Restore it into a new database (it is created) and "
            "copy the tables from there; nothing was changed"
        )

    def available(self) -> str | None:
        try:
            find_pg_tool(DUMP_TOOL, "take backups")
            find_pg_tool(RESTORE_TOOL, "restore backups")
        except ToolMissingError as exc:
            return exc.message
        return None

    def stream_problem(self, stream_format: str, head: bytes, tail: bytes) -> str | None:
        """A custom-format archive starts with ``PGDMP``."""
        del tail
        if stream_format == STREAM_FORMAT and not head.startswith(CUSTOM_MAGIC):
            return "the stream is not a pg_dump custom-format archive (no PGDMP header)"
        return None

    @staticmethod
    def dump_command(
        tool: str, url: URL, snapshot: str, without_data: Sequence[str] | None
    ) -> list[str]:
        """The argv of a dump (no password: that is in the PGPASSFILE).

        ``without_data`` holds ``--exclude-table-data`` patterns of the tables a
        selective backup leaves out: their definitions stay in the archive, with
        the types, sequences and functions the selected tables need, so that it
        restores into an empty database (``--table`` would leave those out).
        """
        command = [
            tool,
            "--format=custom",
            "--compress=0",
            "--no-password",
            f"--snapshot={snapshot}",
        ]
        command += [f"--exclude-table-data={pattern}" for pattern in without_data or ()]
        command.append(f"--dbname={conninfo(url)}")
        return command

    def restore_command(
        self,
        tool: str,
        url: URL,
        path: Path | None,
        *,
        replace: bool = False,
        sections: Sequence[str] = (),
        use_list: Path | None = None,
    ) -> list[str]:
        """The argv of a restore of the archive file ``path`` (``None``: of its stdin).

        ``replace``: the target holds objects; they are dropped and recreated in
        one transaction (``--single-transaction`` cannot run in parallel), all
        sections at once. ``sections``: only these sections (all if none). From
        stdin pg_restore runs one job. ``use_list``: only the entries of this list
        file (``pg_restore --list`` output).
        """
        command = [tool, "--format=custom", "--no-password", "--exit-on-error"]
        command += [f"--section={section}" for section in sections]
        if use_list is not None:
            command.append(f"--use-list={use_list}")
        if replace:
            command += ["--clean", "--if-exists", "--single-transaction"]
        elif path is not None:
            command.append(f"--jobs={restore_jobs()}")
        if not self.options.owners:
            command.append("--no-owner")
        if not self.options.grants:
            command.append("--no-privileges")
        command.append(f"--dbname={conninfo(url)}")
        if path is not None:
            command += ["--", str(path)]
        return command

    def dump(
        self,
        url: URL,
        sink: BinaryIO,
        *,
        tables: Sequence[str] | None = None,
        progress: ByteCounter | None = None,
        server_checksums: bool = False,
    ) -> DumpResult:
        del server_checksums  # the checksums are always read, in the dump's snapshot
        ops = _ops(url)
        if not url.database:
            raise UsageError(f"the URL {safe_url_text(url)} names no database to back up")
        tool = find_pg_tool(DUMP_TOOL, "take backups")
        with exported_snapshot(url) as (conn, snapshot):
            server_num = ops.server_version_num(conn)
            problem = version_problem(tool, tool_major(tool), server_num)
            if problem is not None:
                raise ToolMissingError(problem)
            every = ops.backup_tables(conn)
            names = every
            if tables is not None:
                missing = [t for t in tables if t not in every]
                if missing:
                    raise UsageError(
                        f"no such table(s) in the database: {', '.join(missing)}; "
                        f"existing tables: {', '.join(every) or '(none)'}"
                    )
                names = list(dict.fromkeys(tables))
            unselected = [name for name in every if name not in names]
            without_data = [table_pattern(*pair) for pair in ops.resolve_tables(conn, unselected)]
            object_hashes = ops.objects(conn) if tables is None else {}
            database_options: dict[str, object] = dict(database_locale(conn))
            database_options["extensions"] = database_extensions(conn)
            server_version = ops.server_version(conn)
            digest = ops.newest_digest(conn)
            # The counts and checksums are read in the exported snapshot while pg_dump
            # dumps it: the server does both at once, and the backup takes as long as
            # the slower of the two rather than their sum.
            with ThreadPoolExecutor(1, thread_name_prefix="migration-guard-stats") as pool:
                measured = pool.submit(ops.table_stats, conn, names, digest=digest)
                with pg_credentials(url) as extra_env:
                    command = self.dump_command(tool, url, snapshot, without_data)
                    run_dump(command, url, sink, progress, output_buffer=False, extra_env=extra_env)
                stats = measured.result()
        return DumpResult(
            tables=stats,
            server_version=server_version,
            stream_format=STREAM_FORMAT,
            objects={kind: sorted(hashes) for kind, hashes in object_hashes.items()},
            extra={
                "tool": tool_version(tool),
                "database_options": database_options,
                "object_sha256": object_hashes,
                "tables_without_data": sorted(unselected),
                "snapshot": "pg_export_snapshot (REPEATABLE READ); counts and checksums "
                "read in the dump's snapshot",
                "row_digest": ROW_DIGESTS[digest],
                ROW_DIGEST_METHOD: digest,
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
        ops = _ops(url)
        if not url.database:
            raise UsageError(f"the URL {safe_url_text(url)} names no database to restore into")
        tool = find_pg_tool(RESTORE_TOOL, "restore backups")
        digest = digest_method(ops, self.recorded_digest)  # unknown: before any byte is written
        with connected(url) as conn:  # a clear error before any byte is written
            present = ops.backup_tables(conn)
            ops.check_digest(conn, digest)
        counted = CountingReader(source, progress)
        try:
            measured = self._restore_file(
                tool,
                url,
                counted,
                tables=tables,
                replace=bool(present),
                progress=progress,
                digest=digest,
            )
        except MigrationGuardError as exc:
            explained = _explained(exc, rolled_back=bool(present))
            if explained is exc:
                raise
            raise explained from exc
        return RestoreOutcome(measured=measured)

    def _restore_file(
        self,
        tool: str,
        url: URL,
        source: CountingReader,
        *,
        tables: Sequence[str] | None,
        replace: bool,
        progress: ByteCounter | None,
        digest: str | None = None,
    ) -> dict[str, TableStats]:
        """Write the stream to a private file and run pg_restore on it: the whole
        archive, or only ``tables`` into the live database in one transaction.

        Into an empty database the rows are counted and digested (by the
        manifest's method ``digest``) before pg_restore builds the indexes and
        constraints (its post-data section), and returned; over a live database
        (one transaction) nothing is measured here.
        """
        # pg_restore runs in parallel only from a seekable file: the plaintext lives
        # in a private 0700 directory for the duration of the restore (pg_load).
        with scratch_directory("restore") as directory, pg_credentials(url) as extra_env:
            path = directory / "dump.pgc"
            if tables is None and not replace and stream_pays(self.table_sizes, restore_jobs()):
                # Into an empty database the rows load while the stream is decrypted;
                # a big table's over two connections (pg_split).
                split = split_table(self.table_sizes, restore_jobs())
                if split is not None and split_available():

                    def command_for(
                        *, sections: Sequence[str], use_list: Path | None = None
                    ) -> list[str]:
                        return self.restore_command(
                            tool, url, None, sections=sections, use_list=use_list
                        )

                    stream_split(tool, command_for, url, source, path, split, extra_env, progress)
                else:
                    loading = self.restore_command(tool, url, None, sections=LOAD_SECTIONS)
                    stream_into(tool, loading, url, source, path, extra_env, progress)
                return self._finish(tool, url, path, extra_env, progress, digest)
            write_file(source, path)
            if tables is not None:  # into the live database, in one transaction
                restore_tables(url, path, tables, extra_env)
                return {}
            if replace:
                command = self.restore_command(tool, url, path, replace=True)
                _run_quietly(command, url, extra_env, progress)
                return {}
            loading = self.restore_command(tool, url, path, sections=LOAD_SECTIONS)
            _run_quietly(loading, url, extra_env, progress)
            return self._finish(tool, url, path, extra_env, progress, digest)

    def _finish(
        self,
        tool: str,
        url: URL,
        path: Path,
        extra_env: Mapping[str, str],
        progress: ByteCounter | None,
        digest: str | None = None,
    ) -> dict[str, TableStats]:
        """The loaded rows counted and digested (by the method ``digest``), then the
        indexes, constraints and triggers (post-data) restored from ``path``; those measures.

        One after the other, not side by side: the digest's scan would hold back the
        primary key's ``ACCESS EXCLUSIVE`` lock anyway, and alone it has both cores
        for its parallel workers instead of sharing them with the index builds
        (docs/performance.md measures both orders). Post-data changes no row, so the
        measures are those of the finished tables.
        """
        measured = _loaded_rows(url, digest)
        finishing = self.restore_command(tool, url, path, sections=FINISH_SECTIONS)
        _run_quietly(finishing, url, extra_env, progress)
        return measured


#: The sections restored before the rows are measured (definitions and rows) ...
LOAD_SECTIONS = ("pre-data", "data")
#: ... and those restored after (indexes, constraints, triggers, grants).
FINISH_SECTIONS = ("post-data",)


def _loaded_rows(url: URL, digest: str | None) -> dict[str, TableStats]:
    """The row count and digest (by the method ``digest``) of every table of the
    database at ``url``."""
    ops = _ops(url)
    with connected(url) as conn:
        stats = ops.table_stats(conn, ops.backup_tables(conn), digest=digest)
        conn.rollback()
        return stats


#: pg_restore's complaint about a role the target server lacks.
_MISSING_ROLE = 'role "'


def _explained(exc: MigrationGuardError, *, rolled_back: bool) -> MigrationGuardError:
    """``exc`` with what to do about a missing role, and whether the server rolled back."""
    message = str(exc)
    if _MISSING_ROLE in message and "does not exist" in message:
        message += (
            "; the backup names a role this server lacks: create it, or restore without "
            "owners (the default, no --keep-owners) and without grants (--no-grants)"
        )
    if not rolled_back:
        return BackupError(message) if message != str(exc) and type(exc) is BackupError else exc
    return LoadRolledBack(
        f"{message}. Nothing was committed: the restore runs in one transaction "
        "(pg_restore --single-transaction), which the server rolled back",
        exit_code=exc.exit_code,
    )


def _run_quietly(
    command: list[str], url: URL, extra_env: Mapping[str, str], progress: ByteCounter | None
) -> None:
    """Run a client program to its end; its failure becomes a clear error."""
    with tool_process(
        command,
        url,
        "restore into",
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        extra_env=extra_env,
    ) as process:
        if progress is not None:
            # Lets a caller look at the running child (tests watch /proc).
            while process.poll() is None:
                progress(0)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=0.05)
