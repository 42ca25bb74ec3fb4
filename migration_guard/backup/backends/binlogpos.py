"""The binary-log coordinates a dump tool prints into its own stream.

With ``--master-data=2`` (MariaDB) or ``--source-data=2`` (MySQL 8.0.26+) the
dump tool writes, as SQL comments, the binlog file and position of the very
snapshot it dumps, and MariaDB also the GTID position at its end. Reading them
from the stream (rather than from a second connection) is what makes an
incremental backup start exactly where the full backup's rows stop: a write
committed while the dump starts is either in the dump or after this position,
never both and never neither.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from migration_guard.errors import BackupError

#: How much of the head and of the tail of the stream is kept for parsing.
_WINDOW = 64 * 1024

_POSITION = re.compile(
    rb"^-- CHANGE (?:MASTER|REPLICATION SOURCE) TO (?:MASTER|SOURCE)_LOG_FILE='([^']+)', "
    rb"(?:MASTER|SOURCE)_LOG_POS=(\d+);",
    re.MULTILINE,
)
_GTID = re.compile(rb"^-- SET GLOBAL gtid_slave_pos='([^']*)';", re.MULTILINE)


def dump_source_options(oracle: bool) -> list[str]:
    """The dump-tool option that prints the snapshot's binlog coordinates as a comment."""
    return ["--source-data=2"] if oracle else ["--master-data=2"]


def parse_coordinates(head: bytes, tail: bytes) -> dict[str, str] | None:
    """``{"file", "position", "gtid"}`` from a dump's head and tail, or ``None``."""
    found = _POSITION.search(head)
    if found is None:
        return None
    gtid = _GTID.search(tail) or _GTID.search(head)
    return {
        "file": found.group(1).decode("utf-8", "replace"),
        "position": found.group(2).decode("ascii"),
        "gtid": gtid.group(1).decode("utf-8", "replace") if gtid else "",
        "source": "dump stream",
    }


class _Writable(Protocol):
    def write(self, data: bytes) -> int | None: ...


class CoordinateWatcher:
    """A sink that passes every byte on and keeps the stream's head and tail."""

    def __init__(self, sink: _Writable) -> None:
        self._sink = sink
        self._head = bytearray()
        self._tail = bytearray()

    def write(self, data: bytes) -> int:
        """Pass ``data`` on; remember it if it is in the head or the tail window."""
        self._sink.write(data)
        if len(self._head) < _WINDOW:
            self._head += data[: _WINDOW - len(self._head)]
        self._tail += data[-_WINDOW:]
        if len(self._tail) > 2 * _WINDOW:
            del self._tail[:-_WINDOW]
        return len(data)

    def coordinates(self) -> dict[str, str] | None:
        """The coordinates printed in the stream, or ``None`` if it printed none."""
        return parse_coordinates(bytes(self._head), bytes(self._tail))


# -- stopping a replay ------------------------------------------------------------------------
_FILE = re.compile(r"^(?P<stem>[^\s:/\\]+)\.(?P<number>\d+)$")
_GTID_TEXT = re.compile(r"^(\d+)-(\d+)-(\d+)$")
#: Events a binlog file starts with (or a copy of it gets); never a stopping point.
HEADER_EVENTS = frozenset({4, 15, 161, 163, 164})  # rotate, format, checkpoint, gtid list, crypt
GTID_EVENT = 162  # MariaDB
_HEADER = 19


def file_key(name: str) -> tuple[str, int]:
    """Sort key of a binlog file name (``binlog.000012`` -> ``("binlog", 12)``)."""
    found = _FILE.match(name)
    if found is None:
        return (name, -1)
    return (found.group("stem"), int(found.group("number")))


def parse_position(text: str) -> tuple[str, int] | None:
    """``FILE:POS`` (``binlog.000003:1234``), or None when it is not of that form."""
    file, _, position = text.strip().rpartition(":")
    if not _FILE.match(file) or not position.isdigit() or int(position) < 4:
        return None
    return file, int(position)


def parse_gtid(text: str) -> tuple[int, int, int] | None:
    """A MariaDB GTID ``DOMAIN-SERVER-SEQ`` (``0-1-1234``), or None."""
    found = _GTID_TEXT.match(text.strip())
    if found is None:
        return None
    domain, server, seq = (int(part) for part in found.groups())
    return domain, server, seq


def gtid_seq(position: str, domain: int) -> int | None:
    """The sequence number of ``domain`` in a GTID position (``0-1-100,1-2-7``), or None."""
    for part in position.split(","):
        parsed = parse_gtid(part)
        if parsed is not None and parsed[0] == domain:
            return parsed[2]
    return None


@dataclass
class ReplayStop:
    """Where a replay of binlog events stops: before the first event at or after it.

    ``time`` (POSIX seconds) is compared with the events' timestamps, ``position``
    (file, offset) with where each event starts on the server, ``gtid`` (domain,
    server, sequence) with the GTID of each transaction (MariaDB): the
    transaction with that GTID, and everything after it, is left out. A
    transaction cut in its middle is never committed (the replay ends with a
    ROLLBACK). ``reached`` turns true once the stop was met; nothing after it is
    replayed, in this archive or the next ones of the chain.
    """

    time: float | None = None
    position: tuple[str, int] | None = None
    gtid: tuple[int, int, int] | None = None
    reached: bool = False

    def before_segment(self, name: str) -> bool:
        """Whether a whole binlog file ``name`` comes after the stop (by position)."""
        if self.position is not None and file_key(name) > file_key(self.position[0]):
            self.reached = True
        return self.reached

    def at_event(self, name: str, header: bytes, body: bytes) -> bool:
        """Whether the event (its 19-byte header and its body) is where the replay stops."""
        if self.reached:
            return True
        timestamp, kind, _ = struct.unpack_from("<IBI", header, 0)
        size, log_pos = struct.unpack_from("<II", header, 9)
        if kind in HEADER_EVENTS or log_pos == 0:
            return False
        if self.time is not None and timestamp >= self.time:
            self.reached = True
        if self.position is not None and name == self.position[0]:
            self.reached |= log_pos - size >= self.position[1]
        if self.gtid is not None and kind == GTID_EVENT and len(body) >= 12:
            seq, domain = struct.unpack_from("<QI", body, 0)
            self.reached |= domain == self.gtid[0] and seq >= self.gtid[2]
        return self.reached


def walk_events(
    read: Callable[[int], bytes], size: int, name: str, stop: ReplayStop
) -> Iterator[bytes]:
    """The bytes of a raw binlog file of ``size`` bytes up to ``stop``; all of it is read."""
    left = size
    magic = read(min(4, left))
    left -= len(magic)
    if not stop.before_segment(name):
        yield magic
    while left >= _HEADER:
        header = read(_HEADER)
        event_size = struct.unpack_from("<I", header, 9)[0]
        if event_size < _HEADER or event_size - _HEADER > left - _HEADER:
            raise BackupError(f"the binlog copy {name} in the archive has a malformed event")
        body = read(event_size - _HEADER)
        left -= event_size
        if not stop.at_event(name, header, body):
            yield header + body
    if left:
        read(left)


GTID_LIST_EVENT = 163  # MariaDB: the GTID state at the start of a binlog file


class GtidState:
    """The MariaDB GTID position after the events of raw binlog copies, without asking
    the server (``BINLOG_GTID_POS`` reads the binlog file from its start: slow on a
    large file, and the events at hand say the same).

    Starts from the position where the copy starts (the parent backup's end). Each
    GTID event sets its domain's last transaction; a GTID list event (a file's
    header: the state at that file's start) adds the domains it names and never moves
    one back, since the copy of the first file may start after its header.
    """

    def __init__(self, start: str) -> None:
        self._domains: dict[int, tuple[int, int]] = {}
        for part in start.split(","):
            parsed = parse_gtid(part)
            if parsed is not None:
                self._merge(parsed[0], parsed[1], parsed[2])

    def _merge(self, domain: int, server: int, seq: int) -> None:
        known = self._domains.get(domain)
        if known is None or seq >= known[1]:
            self._domains[domain] = (server, seq)

    def feed(self, handle: BinaryIO, size: int, name: str = "") -> int:
        """Read the events of one raw binlog file of ``size`` bytes (magic included);
        the largest end position (``log_pos``) of its events. Only the bodies of GTID
        and GTID list events are read; the others are skipped."""
        end = 0
        left = size - len(handle.read(min(4, size)))
        while left >= _HEADER:
            header = handle.read(_HEADER)
            kind = header[4]
            server, event_size, log_pos = struct.unpack_from("<III", header, 5)
            if event_size < _HEADER or event_size > left:
                raise BackupError(f"the binlog copy {name} has a malformed event")
            left -= event_size
            end = max(end, log_pos)
            if kind not in (GTID_EVENT, GTID_LIST_EVENT):
                handle.seek(event_size - _HEADER, 1)
                continue
            body = handle.read(event_size - _HEADER)
            if kind == GTID_EVENT and len(body) >= 12:
                seq, domain = struct.unpack_from("<QI", body, 0)
                self._domains[domain] = (server, seq)
            elif kind == GTID_LIST_EVENT and len(body) >= 4:
                count = struct.unpack_from("<I", body, 0)[0] & 0x0FFFFFFF
                for index in range(min(count, (len(body) - 4) // 16)):
                    domain, origin, seq = struct.unpack_from("<IIQ", body, 4 + 16 * index)
                    self._merge(domain, origin, seq)
        return end

    @property
    def position(self) -> str:
        """``DOMAIN-SERVER-SEQ`` per domain, by domain, comma separated."""
        return ",".join(
            f"{domain}-{server}-{seq}" for domain, (server, seq) in sorted(self._domains.items())
        )
