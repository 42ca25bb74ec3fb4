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
from typing import Protocol

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
