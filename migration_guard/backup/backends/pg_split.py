"""The largest table of a pg_dump archive loaded over two ``COPY`` connections.

Reading its stdin, ``pg_restore`` loads a table in one ``COPY``: one server
process, one core, however many the server has. Into a new or empty database,
when one table is big enough (:func:`split_table`), the decrypted stream is fed
to these instead of one ``pg_restore``:

1. ``pg_restore --list`` and ``pg_restore --section=pre-data``, which read the
   archive's table of contents at its head and stop: the list of its entries,
   and every definition created (the table exists, and nothing more of the
   pre-data section will ask for a lock on it while its rows load);
2. ``pg_restore --section=data --use-list=REST`` into the database: every other
   entry of the data section (other tables' rows, sequence values, large objects);
3. ``pg_restore --section=data --use-list=BIG --file=-``: the big table's rows
   as a ``COPY ... FROM stdin;`` script, whose settings are run on two
   connections and whose rows, cut at line ends (:func:`.pg_script.row_blocks`), go in
   blocks to whichever of the two ``COPY`` statements takes them first.

All three read the same bytes; the first two's, up to the end of the table of
contents, are written to the scratch file first (all that post-data reads), the
rows are not (as in :func:`.pg_feed.stream_into`, whose :func:`.pg_feed.tee` feeds
them all). Both connections commit only when every part succeeded; any failure
stops the others (no process, thread or connection is left behind) and raises.
The row order within the table is not kept; the restore's proof (counts and
order-independent digests) still sees every row.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import queue
import subprocess
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import URL

from migration_guard.backup.backends.base import ByteCounter, Reader
from migration_guard.backup.backends.pg_feed import (
    Exited,
    Stopped,
    checked_stream,
    tee,
    toc_lister,
)
from migration_guard.backup.backends.pg_load import (
    restoring_stdin,
    scratch_file,
    write_scratch,
    written_back,
)
from migration_guard.backup.backends.pg_script import (
    RowsCut,
    Script,
    parse_script,
    row_blocks,
    toc_codec,
    toc_lists,
)
from migration_guard.dialects.base import database_unavailable, guard_engine
from migration_guard.errors import BackupError, MigrationGuardError

#: The smallest table (its manifest size, in bytes) loaded over two connections:
#: the split costs about 0.2 s before the first row (the table of contents, four
#: pg_restore starts, two logins), about what it saves on a table of this size.
SPLIT_MIN_BYTES = 64 * 1024 * 1024
#: Connections the big table's rows are loaded over.
SPLIT_CONNECTIONS = 2
#: The bytes read from pg_restore's output at a time (rows are cut from these).
BLOCK_SIZE = 1024 * 1024
#: Blocks of rows waiting for a connection: bounds the memory, keeps both busy.
QUEUE_BLOCKS = 4
#: How often a waiting thread looks whether another part failed (seconds).
_POLL = 0.1


def split_table(table_sizes: Mapping[str, int | None], jobs: int) -> str | None:
    """The table to load over two connections: the largest, if it is big enough and
    there is more than one CPU (``jobs``); else None (unknown sizes count as nothing)."""
    sized = [(size, name) for name, size in table_sizes.items() if size]
    if jobs < SPLIT_CONNECTIONS or not sized:
        return None
    size, name = max(sized)
    return name if size >= SPLIT_MIN_BYTES else None


def split_available() -> bool:
    """Whether the driver the split load uses (psycopg 3) is installed."""
    return importlib.util.find_spec("psycopg") is not None


class CommandFor(Protocol):
    """The argv of a ``pg_restore`` of its stdin into the target database."""

    def __call__(self, *, sections: Sequence[str], use_list: Path | None = None) -> list[str]: ...


@dataclass
class _Load:
    """The split load's shared state: the rows between the threads, the first failure."""

    rows: queue.Queue[bytes | None] = field(default_factory=lambda: queue.Queue(QUEUE_BLOCKS))
    script: Script | None = None
    ready: threading.Event = field(default_factory=threading.Event)
    failed: threading.Event = field(default_factory=threading.Event)
    #: What failed, in order: the first is the cause, the rest its consequences.
    errors: list[BaseException] = field(default_factory=list)
    #: The exit errors of the pg_restore processes, by pid.
    exits: dict[int, BaseException] = field(default_factory=dict)
    stop_hooks: list[Callable[[], None]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail(self, exc: BaseException) -> None:
        """Record ``exc`` and stop every part (the processes are killed: nothing blocks)."""
        with self.lock:
            self.errors.append(exc)
            if self.failed.is_set():
                return
            self.failed.set()
        for hook in self.stop_hooks:
            with contextlib.suppress(Exception):
                hook()

    def check(self) -> None:
        if self.failed.is_set():
            raise Stopped

    def put(self, block: bytes | None) -> None:
        while True:
            self.check()
            with contextlib.suppress(queue.Full):
                self.rows.put(block, timeout=_POLL)
                return

    def get(self) -> bytes | None:
        while True:
            self.check()
            with contextlib.suppress(queue.Empty):
                return self.rows.get(timeout=_POLL)

    def error(self, table: str) -> BaseException | None:
        """The error to report: the first failure's (a process's own exit error)."""
        if not self.errors:
            return None
        first = self.errors[0]
        if isinstance(first, Exited):
            return self.exits.get(first.pid, BackupError("pg_restore failed"))
        if isinstance(first, MigrationGuardError) or not isinstance(first, Exception):
            return first
        return BackupError(f"cannot load the rows of {table} over two connections: {first}")


def _read_script(load: _Load, process: subprocess.Popen[bytes]) -> None:
    """Parse the script on ``process``'s stdout; its rows into ``load.rows`` in blocks."""
    assert process.stdout is not None
    descriptor = process.stdout.fileno()

    def reads() -> Iterator[bytes]:
        while data := os.read(descriptor, BLOCK_SIZE):
            yield data

    output = reads()
    try:
        try:
            head = b""
            script = None
            while script is None:
                data = next(output, b"")
                if not data:
                    raise RowsCut("pg_restore's script of the table's rows ended before them")
                head += data
                script = parse_script(head)
            load.script = script
            load.ready.set()
            for block in row_blocks(head[script.rows_at :], output):
                if block:
                    load.put(block)
        except RowsCut:
            if process.wait() != 0:
                raise Exited(process.pid) from None  # its own error says why
            raise
        for _ in range(SPLIT_CONNECTIONS):  # row_blocks read the script to its end
            load.put(None)
    except Stopped:
        pass
    except BaseException as exc:  # recorded: the main thread raises it
        load.fail(exc)


def _copy_rows(load: _Load, connection: Any) -> None:
    """Run the script's settings and ``COPY`` on ``connection`` (psycopg 3) with the
    blocks of rows it takes; not committed (the caller commits when all succeeded)."""
    try:
        while not load.ready.wait(_POLL):
            load.check()
        script = load.script
        assert script is not None
        with connection.cursor() as cursor:
            for setting in script.settings:
                cursor.execute(setting)
            with cursor.copy(script.copy) as copy:
                while (block := load.get()) is not None:
                    copy.write(block)
    except Stopped:
        pass
    except BaseException as exc:  # recorded: the main thread raises it
        load.fail(exc)


@contextlib.contextmanager
def _connections(url: URL, count: int) -> Iterator[list[Any]]:
    """``count`` psycopg 3 connections to ``url`` (its credentials, in this process only),
    each in a transaction; closed afterwards (rolled back unless committed)."""
    engine = guard_engine(url.set(drivername="postgresql+psycopg"))
    opened: list[Any] = []
    try:
        for _ in range(count):
            try:
                opened.append(engine.raw_connection())
            except sa.exc.DBAPIError as exc:
                raise database_unavailable(url, exc) from None
        yield [connection.driver_connection for connection in opened]
    finally:
        for connection in opened:
            with contextlib.suppress(Exception):
                connection.close()
        engine.dispose()


def stream_split(
    tool: str,
    command_for: CommandFor,
    url: URL,
    source: Reader,
    path: Path,
    table: str,
    extra_env: Mapping[str, str],
    progress: ByteCounter | None,
) -> None:
    """Load the plaintext of ``source`` into the empty database at ``url``, ``table``'s
    rows over two connections, while writing it to the new private file ``path``
    (whose directory takes the entry lists too).

    Without exactly one ``TABLE DATA`` entry of ``table`` in the archive, every row
    loads through one ``pg_restore`` as in :func:`.pg_feed.stream_into`.
    """
    stream = checked_stream(source)  # nothing runs on a non-archive
    with scratch_file(path) as handle, contextlib.ExitStack() as stack:
        # The two connections are opened before anything is written: a server or role
        # that takes no more sessions (a connection limit, a pooler) or a driver that
        # does not load means the usual load, not a failure after the definitions.
        connections: list[Any] | None = None
        with contextlib.suppress(MigrationGuardError, ImportError, sa.exc.SQLAlchemyError):
            connections = stack.enter_context(_connections(url, SPLIT_CONNECTIONS))
        toc = _read_toc(tool, command_for, url, stream, handle, extra_env, progress)
        codec = toc_codec(toc)  # the lists are written back in it
        lists = toc_lists(toc.decode(codec), table) if connections is not None else None
        # The file holds the table of contents now, all that post-data reads: the rows
        # go to the database only.
        if lists is None or connections is None:
            with restoring_stdin(command_for(sections=("data",)), url, extra_env) as loading:
                tee([loading], written_back(path, handle), stream, None, progress)
            return
        rest_list, table_list = path.with_name("rest.list"), path.with_name("table.list")
        for list_path, text in ((rest_list, lists[0]), (table_list, lists[1])):
            with scratch_file(list_path) as list_file:
                write_scratch(list_file, text.encode(codec))
        script = [
            tool,
            "--format=custom",
            "--exit-on-error",
            "--section=data",
            f"--use-list={table_list}",
            "--file=-",
        ]
        others = command_for(sections=("data",), use_list=rest_list)
        written = written_back(path, handle)
        _split_load(table, url, connections, others, script, written, stream, extra_env, progress)


def _read_toc(
    tool: str,
    command_for: CommandFor,
    url: URL,
    stream: Iterator[bytes],
    handle: BinaryIO,
    extra_env: Mapping[str, str],
    progress: ByteCounter | None,
) -> bytes:
    """The archive's entry list, and its pre-data section restored, from the stream's
    head (both stop reading after the table of contents; what they read stays in the
    file for the loads that follow)."""
    listed = bytearray()
    with (
        toc_lister(tool, url, subprocess.PIPE) as lister,
        restoring_stdin(command_for(sections=("pre-data",)), url, extra_env) as defining,
    ):
        output = lister.stdout
        assert output is not None
        reader = threading.Thread(
            target=lambda: listed.extend(output.read()), name="migration-guard-toc", daemon=True
        )
        reader.start()
        tee([lister, defining], (), stream, handle, progress, until_done=True)
        reader.join()
    return bytes(listed)


@contextlib.contextmanager
def _part(
    load: _Load, context: contextlib.AbstractContextManager[subprocess.Popen[bytes]]
) -> Iterator[subprocess.Popen[bytes]]:
    """A process of the split load whose own failure is recorded in ``load`` (the first
    failure is reported, not the processes killed because of it)."""
    finished = False
    process: subprocess.Popen[bytes] | None = None
    try:
        with context as process:
            load.stop_hooks.append(process.kill)
            yield process
            finished = True
    except MigrationGuardError as exc:
        if not finished or process is None:
            raise
        load.exits[process.pid] = exc
        load.fail(Exited(process.pid))


def _split_load(
    table: str,
    url: URL,
    connections: list[Any],
    others_command: list[str],
    script_command: list[str],
    written: Iterable[bytes],
    stream: Iterator[bytes],
    extra_env: Mapping[str, str],
    progress: ByteCounter | None,
) -> None:
    """The stream (``written``, from the file, then the rest) into ``others_command`` and
    ``script_command``, the latter's rows over two connections; both committed once
    all succeeded."""
    load = _Load()
    threads: list[threading.Thread] = []
    try:
        with (
            _part(load, restoring_stdin(others_command, url, extra_env)) as others,
            _part(
                load, restoring_stdin(script_command, url, extra_env, output=subprocess.PIPE)
            ) as scripting,
        ):
            threads.append(
                threading.Thread(
                    target=_read_script,
                    args=(load, scripting),
                    name="migration-guard-rows",
                    daemon=True,
                )
            )
            threads += [
                threading.Thread(
                    target=_copy_rows,
                    args=(load, connection),
                    name=f"migration-guard-copy-{number}",
                    daemon=True,
                )
                for number, connection in enumerate(connections)
            ]
            # A COPY the server does not take (a lock) stops too: nothing waits.
            load.stop_hooks += [
                getattr(connection, "cancel_safe", connection.cancel)  # psycopg < 3.2
                for connection in connections
            ]
            for thread in threads:
                thread.start()
            try:
                tee([others, scripting], written, stream, None, progress, load)
            except BaseException as exc:  # the stream's: first, before the kills
                load.fail(exc)
                raise
            for thread in threads:  # every row sent, or a part failed
                thread.join()
    except BaseException as exc:
        if not load.errors:
            load.fail(exc)
        elif not isinstance(exc, Exception):
            with load.lock:  # Ctrl-C stays Ctrl-C, whatever failed because of it first
                load.errors.insert(0, exc)
    finally:
        for thread in threads:
            thread.join()
    error = load.error(table)
    if error is not None:
        raise error from (None if error is load.errors[0] else load.errors[0])
    try:
        for connection in connections:
            connection.commit()
    except Exception as exc:  # the first may have committed: partly loaded
        raise BackupError(f"cannot commit the rows of {table}: {exc}") from exc
