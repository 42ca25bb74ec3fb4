"""Incremental backups of MySQL/MariaDB: the binary log since the parent backup.

Taking one: ``mariadb-binlog``/``mysqlbinlog --read-from-remote-server --raw``
copies the binlog events from the parent's end position up to the end of the
newest binlog file, over the replication protocol (no access to the server's
files; the account needs REPLICATION SLAVE, and BINLOG MONITOR or REPLICATION
CLIENT for ``SHOW BINARY LOGS``). ``--raw`` only writes files, so they go into
a private 0700 scratch directory (:mod:`..scratch`, removed whatever happens)
and are streamed from there into the archive, one segment per binlog file. The
end position is read from the events themselves (the ``log_pos`` of the last
one), so it is exactly where the copied events stop.

The stream (format ``mysql-binlog``)::

    -- migration-guard binlog stream 1
    -- database "<source database, JSON>"
    -- segment <binlog file name> <size>\\n<size raw bytes>   (repeated)
    -- coordinates {"file": ..., "position": ..., "gtid": ...}
    -- end

The coordinates line repeats where the copied events end (the manifest's
``binlog``), so that verification can compare an unauthenticated manifest with
the archive.

Restoring one: each segment is decoded by ``mariadb-binlog`` reading standard
input, keeping only the events of the source database (``--database``) and
renaming it to the target's (``--rewrite-db``), and piped into the ``mariadb``
client. The replayed statements leave out the source's GTID, server id and
domain id, so the target server logs them as its own transactions. A replay
can stop early (:class:`~.binlogpos.ReplayStop`: a time, a position or a GTID):
the raw events are then walked one by one and the decoder gets only those
before the stop.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, ClassVar

from migration_guard.backup.backends.base import (
    Backend,
    ByteCounter,
    DumpResult,
    RestoreOutcome,
)
from migration_guard.backup.backends.binlogpos import GtidState, ReplayStop, walk_events
from migration_guard.backup.backends.mysql_client import (
    CLIENT_TOOLS,
    defaults_file_text,
    find_tool,
    run_restore,
    tool_process,
)
from migration_guard.backup.scratch import scratch_directory
from migration_guard.config import MYSQL_FAMILY
from migration_guard.dialects.base import safe_url_text
from migration_guard.dialects.mysql_server import ServerQuestions, server_questions
from migration_guard.errors import BackupError, UsageError

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

    from migration_guard.urls import PlainURL

BINLOG_TOOLS = ("mariadb-binlog", "mysqlbinlog")
STREAM_FORMAT = "mysql-binlog"
MAGIC = b"-- migration-guard binlog stream 1\n"
END = b"-- end\n"
_SEGMENT = re.compile(rb"^-- segment (\S+) (\d+)\n$")
_DATABASE = re.compile(rb"^-- database (.+)\n$")
_COORDINATES = re.compile(rb"-- coordinates (\{[^\n]*\})\n-- end\n\Z")
_COPY_BLOCK = 1024 * 1024
#: Lines of the decoded events that carry the source server's GTID identity.
_IDENTITY_LINE = re.compile(
    rb"^/\*M?!\d+ SET @@session\.(?:gtid_seq_no|gtid_domain_id|server_id)=\d+\*//\*!\*/;\r?\n$"
)
_NOT_FOUND = re.compile(r"Could not find first log file name|binary log index", re.IGNORECASE)


def log_bin_off_message(url: URL | PlainURL) -> str:
    return (
        f"the server of {safe_url_text(url)} does not write a binary log (log_bin is OFF), so "
        "there is nothing to take an incremental backup from. Turn it on in the server's "
        "configuration ([mysqld] log_bin=binlog, binlog_format=ROW, server_id=1), restart "
        "the server, then take a full backup: incrementals start from it"
    )


def purged_message(start: Mapping[str, str], oldest: str | None) -> str:
    return (
        f"the binary log the backup chain needs was purged on the server: the chain ends at "
        f"{start.get('file')}:{start.get('position')}, but the server's oldest binlog file is "
        f"{oldest or '(none)'} (binlog_expire_logs_seconds / expire_logs_days, or PURGE BINARY "
        "LOGS). The changes in that gap cannot be backed up any more: take a new full backup, "
        "and keep binlogs longer than the interval between incremental backups"
    )


@contextlib.contextmanager
def _binlog_defaults_file(url: URL | PlainURL, directory: Path) -> Iterator[Path]:
    """The connection settings for the binlog tool (which knows no character-set option)."""
    path = directory / "client.cnf"
    text = defaults_file_text(url).replace("\ndefault-character-set=utf8mb4\n", "\n")
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


def _order(names: Sequence[str]) -> dict[str, int]:
    return {name: index for index, name in enumerate(names)}


def read_binlog_since(
    url: URL | PlainURL,
    start: Mapping[str, str],
    sink: BinaryIO,
    progress: ByteCounter | None,
) -> dict[str, object]:
    """Copy the binlog from ``start`` to its current end into ``sink``; the coordinates.

    :class:`UsageError` when the server has no binary log; :class:`BackupError`
    naming the gap when the files from ``start`` on were purged.
    """
    tool = find_tool(BINLOG_TOOLS, "take incremental backups")
    # One login for every question to the server (each login costs a TLS handshake).
    with server_questions(url) as server:
        if not server.log_bin_enabled():
            raise UsageError(log_bin_off_message(url))
        names = [name for name, _ in server.binary_logs()]
        if start.get("file") not in names:
            raise BackupError(purged_message(start, names[0] if names else None))
        with scratch_directory("binlog") as directory:
            raw = directory / "raw"
            raw.mkdir(mode=0o700)
            _copy_raw_binlogs(tool, url, start, directory, raw)
            order = _order(names)
            files = sorted(raw.iterdir(), key=lambda p: (order.get(p.name, len(order)), p.name))
            if not files:
                raise BackupError(f"{Path(tool).name} copied no binlog file from {start['file']}")
            sink.write(MAGIC)
            sink.write(b"-- database " + json.dumps(url.database or "").encode() + b"\n")
            # The GTID position after the copy, read from its own events (BINLOG_GTID_POS
            # would read the server's binlog file from its start), and the end position.
            gtids = GtidState(str(start.get("gtid") or ""))
            for path in files:
                _copy_segment(path, sink, progress)
                with path.open("rb") as handle:
                    position = gtids.feed(handle, path.stat().st_size, path.name)
            last = files[-1]
            if last.name == start["file"]:
                position = max(position, int(start["position"]))
            position = max(position, 4)
            gtid = gtids.position if start.get("gtid") else _gtid_at(server, last.name, position)
            end = {"file": last.name, "position": str(position), "gtid": gtid}
            sink.write(b"-- coordinates " + json.dumps(end, sort_keys=True).encode() + b"\n")
            sink.write(END)
    return {**end, "start": dict(start), "files": [path.name for path in files]}


def _copy_raw_binlogs(
    tool: str, url: URL | PlainURL, start: Mapping[str, str], directory: Path, raw: Path
) -> None:
    """``tool --raw`` copies the binlog files from ``start`` to the newest into ``raw``."""
    with _binlog_defaults_file(url, directory) as defaults:
        command = [
            tool,
            f"--defaults-extra-file={defaults}",
            "--read-from-remote-server",
            "--raw",
            f"--result-file={raw}{os.sep}",
            f"--start-position={int(start['position'])}",
            "--to-last-log",
            str(start["file"]),
        ]
        try:
            with tool_process(
                command,
                url,
                "read the binary log of",
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
            ):
                pass
        except BackupError as exc:
            if _NOT_FOUND.search(exc.message):
                raise BackupError(purged_message(start, None)) from None
            raise


def _copy_segment(path: Path, sink: BinaryIO, progress: ByteCounter | None) -> None:
    size = path.stat().st_size
    sink.write(f"-- segment {path.name} {size}\n".encode())
    with path.open("rb") as handle:
        left = size
        while left:
            block = handle.read(min(_COPY_BLOCK, left))
            if not block:
                raise BackupError(f"the binlog copy {path.name} shrank while it was archived")
            sink.write(block)
            left -= len(block)
            if progress is not None:
                progress(len(block))


def _gtid_at(server: ServerQuestions, file: str, position: int) -> str:
    """The GTID position at ``file:position`` (MariaDB), or empty where it cannot be read."""
    return server.gtid_at(file, position)


def _read_line(source: BinaryIO) -> bytes:
    line = bytearray()
    while not line.endswith(b"\n"):
        byte = source.read(1)
        if not byte:
            break
        line += byte
        if len(line) > 4096:
            break
    return bytes(line)


def _read_exact(source: BinaryIO, size: int) -> bytes:
    data = source.read(size)
    while len(data) < size:
        more = source.read(size - len(data))
        if not more:
            raise BackupError("the binlog stream ends inside a segment")
        data += more
    return data


def _segment_blocks(
    source: BinaryIO, size: int, segment: str, stop: ReplayStop | None
) -> Iterator[bytes]:
    """The next ``size`` bytes of ``source``, up to ``stop`` (all of them are read)."""
    if stop is not None:
        yield from walk_events(lambda n: _read_exact(source, n), size, segment, stop)
        return
    left = size
    while left:
        block = _read_exact(source, min(_COPY_BLOCK, left))
        left -= len(block)
        yield block


def _segment_chunks(
    tool: str,
    source: BinaryIO,
    size: int,
    names: tuple[str, str],
    url: URL,
    stop: ReplayStop | None,
    segment: str,
) -> Iterator[bytes]:
    """The SQL ``tool`` decodes from the next ``size`` raw bytes of ``source``.

    The whole segment is read from ``source`` even when the replay stops early
    (``stop``), so the next segment starts where it should.
    """
    source_db, target_db = names
    command = [tool, "--no-defaults", "--skip-annotate-row-events"]
    if source_db != target_db:
        command.append(f"--rewrite-db={source_db}->{target_db}")
    command += [f"--database={source_db}", "-"]  # the filter sees the names before rewriting
    with tool_process(
        command, url, "decode the binary log for", stdin=subprocess.PIPE, stdout=subprocess.PIPE
    ) as process:
        assert process.stdin is not None and process.stdout is not None
        failure: list[BaseException] = []

        def feed() -> None:
            assert process.stdin is not None
            listening = True
            try:
                for block in _segment_blocks(source, size, segment, stop):
                    if listening:
                        try:
                            process.stdin.write(block)
                        except BrokenPipeError:  # stopped early: skip the rest
                            listening = False
            except BaseException as exc:
                failure.append(exc)
            finally:
                with contextlib.suppress(OSError):
                    process.stdin.close()

        feeder = threading.Thread(target=feed, name="migration-guard-binlog-feed", daemon=True)
        feeder.start()
        with process.stdout:
            for line in process.stdout:
                if not _IDENTITY_LINE.match(line):
                    yield line
        feeder.join()
        if failure:
            raise failure[0]


class BinlogBackend(Backend):
    """Archives of binlog events (incremental backups); replays them on restore."""

    name: ClassVar[str] = "binlog"
    dialects: ClassVar[frozenset[str]] = MYSQL_FAMILY
    stream_formats: ClassVar[frozenset[str]] = frozenset({STREAM_FORMAT})

    def available(self) -> str | None:
        try:
            find_tool(BINLOG_TOOLS, "take incremental backups")
        except UsageError as exc:
            return exc.message
        return None

    def stream_problem(self, stream_format: str, head: bytes, tail: bytes) -> str | None:
        """A complete binlog stream starts with its magic line and ends with ``-- end``."""
        if head[: len(MAGIC)] != MAGIC[: len(head)] or not tail.endswith(END):
            return "the binlog stream is incomplete (no '-- end' line)"
        return None

    def stream_coordinates(
        self, stream_format: str, head: bytes, tail: bytes
    ) -> dict[str, str] | None:
        """Where the copied events end, as the stream's ``-- coordinates`` line says."""
        del stream_format, head
        found = _COORDINATES.search(tail)
        if found is None:
            return None
        try:
            data = json.loads(found.group(1))
        except ValueError:
            return None
        return {key: str(data.get(key, "")) for key in ("file", "position", "gtid")}

    def dump(
        self,
        url: URL,
        sink: BinaryIO,
        *,
        tables: Sequence[str] | None = None,
        progress: ByteCounter | None = None,
        server_checksums: bool = False,
    ) -> DumpResult:
        raise UsageError(
            "the binlog backend takes incremental backups only: use --type incremental"
        )

    def check_source(self, url: URL | PlainURL) -> None:
        """:class:`UsageError` saying how to turn the binary log on, when it is off."""
        with server_questions(url) as server:
            if not server.log_bin_enabled():
                raise UsageError(log_bin_off_message(url))

    def dump_since(
        self,
        url: URL | PlainURL,
        sink: BinaryIO,
        start: Mapping[str, str],
        progress: ByteCounter | None,
    ) -> DumpResult:
        """The binlog events after ``start`` (the parent's coordinates) into ``sink``."""
        binlog = read_binlog_since(url, start, sink, progress)
        return DumpResult(
            tables={},
            server_version="",
            stream_format=STREAM_FORMAT,
            binlog=binlog,  # type: ignore[arg-type]
        )

    def restore(
        self,
        url: URL,
        source: BinaryIO,
        *,
        stream_format: str,
        tables: Sequence[str] | None = None,
        progress: ByteCounter | None = None,
        stop: ReplayStop | None = None,
    ) -> RestoreOutcome:
        """Replay the stream's events of its source database into ``url``'s database.

        ``stop`` leaves out the events from that point on (the binlog's
        timestamps have whole seconds); once it was reached, the rest of the
        stream is read but not replayed.
        """
        self.check_stream_format(stream_format)
        if tables:
            raise UsageError("an incremental backup restores whole databases; drop --tables")
        target_db = url.database or ""
        if not target_db:
            raise UsageError(f"the URL {safe_url_text(url)} names no database to restore into")
        if _read_line(source) != MAGIC:
            raise BackupError("the archive does not hold a binlog stream")
        named = _DATABASE.match(_read_line(source))
        if named is None:
            raise BackupError("the binlog stream names no source database")
        source_db = str(json.loads(named.group(1)))
        decoder = find_tool(BINLOG_TOOLS, "restore incremental backups")
        client = find_tool(CLIENT_TOOLS, "restore incremental backups")
        from migration_guard.backup.backends.mysql_client import client_defaults_file
        from migration_guard.backup.backends.mysqldump import MysqldumpBackend

        with client_defaults_file(url) as defaults:
            command = MysqldumpBackend.restore_command(client, defaults, target_db)
            while True:
                line = _read_line(source)
                if line == END:
                    return RestoreOutcome()
                if line.startswith(b"-- coordinates "):
                    continue
                segment = _SEGMENT.match(line)
                if segment is None:
                    raise BackupError("the binlog stream is malformed (no segment header)")
                size, name = int(segment.group(2)), segment.group(1).decode("utf-8", "replace")
                if stop is not None and (stop.reached or stop.before_segment(name)):
                    for _ in _segment_blocks(source, size, name, None):
                        pass
                    continue
                chunks = _segment_chunks(
                    decoder, source, size, (source_db, target_db), url, stop, name
                )
                run_restore(command, url, chunks)
