"""Loading a mysqldump stream over several client connections at once.

The statements that define tables run in order on one connection; the
``INSERT`` statements of a table are spread over :data:`INSERT_WORKERS`
connections, with barriers so that each table's rows are in before what
depends on them. Secondary keys are added after the rows.
"""

from __future__ import annotations

import contextlib
import queue
import re
import subprocess
import threading
from collections.abc import Callable, Iterable
from typing import IO

from sqlalchemy.engine import URL

from migration_guard.backup.backends.mysql_client import (
    tool_process,
)
from migration_guard.backup.backends.mysql_stream import (
    _SECTION,
    RESTORE_EPILOGUE,
    RESTORE_PROLOGUE,
)
from migration_guard.dialects.base import safe_url_text
from migration_guard.errors import (
    BackupError,
)

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
    row (myloader does the same; see docs/performance.md). Only plain
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


def run_parallel_restore(command: list[str], url: URL, chunks: Iterable[bytes]) -> None:
    """Load a mysqldump stream with its ``INSERT`` statements over several connections."""
    client_gone = False
    with contextlib.ExitStack() as stack:

        def start_client() -> subprocess.Popen[bytes]:
            return stack.enter_context(
                tool_process(
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
