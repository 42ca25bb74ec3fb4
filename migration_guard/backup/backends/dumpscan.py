"""Row counts and content digests of a ``mariadb-dump``/``mysqldump`` stream, read as it passes.

Asking the server for ``COUNT(*)`` and ``CHECKSUM TABLE`` while the dump runs
reads every table two more times; on a busy two-core machine that costs more
than the dump itself. The dump already prints every row, so the backup counts
and hashes them on their way into the archive instead, at memory speed.

The digest of a table is the SHA-256 of its rows exactly as the dump prints
them, each row followed by ``,\\n`` (row-per-line format, ``mariadb-dump``
10.x) or ``,`` (one-line format, Oracle ``mysqldump``). It does not depend on
how the rows are split into ``INSERT`` statements, so a later dump of a
restored copy with the same tool gives the same digest when, and only when,
every row is the same. Row counts come from the row-per-line format (newlines
inside values are always escaped, so one row is one line); a one-line dump
leaves the count to the caller (``rows is None``).

Only ``INSERT`` statements inside a data section (after ``-- Dumping data for
table``) count: lines of trigger or routine bodies that happen to start with
``(`` or ``INSERT INTO`` are never taken for rows.

The scanner also notes the ``AUTO_INCREMENT`` counter each table's ``CREATE
TABLE`` (after ``-- Table structure for table``) carries: the dump tool reads it
at its own moment, and a restore sets exactly that counter, so the definition a
backup records must carry it too (:meth:`DumpScanner.auto_increments`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ["DIGEST_METHOD", "DumpScanner", "TableContent", "scanned"]

#: Recorded in manifests beside the digests: what the digests are a hash of.
DIGEST_METHOD = "sha256 of the rows as the dump tool prints them"

_OPEN_PAREN = ord("(")
_WINDOW = 128 * 1024
_SEMICOLON = ord(";")
#: The newline before a line that does not start a row.
_NON_ROW_LINE = re.compile(rb"\n[^(]")
_INSERT_HEADER = re.compile(rb"INSERT INTO `((?:[^`]|``)*)` VALUES ?")
_DATA_SECTION = re.compile(rb"-- Dumping data for table `((?:[^`]|``)*)`\s*$")
_STRUCTURE_SECTION = re.compile(rb"-- Table structure for table `((?:[^`]|``)*)`\s*$")
_CREATE_TABLE = re.compile(rb"CREATE TABLE `((?:[^`]|``)*)` \($")
#: The table options line that closes a CREATE TABLE; the counter follows the engine.
_COUNTER = re.compile(rb"\) ENGINE=[^ \n]+ AUTO_INCREMENT=(\d+)\b")
#: Lines a data section holds besides its INSERT statements.
_DATA_SECTION_LINES = (b"LOCK TABLES ", b"/*!40000 ALTER TABLE ")


@dataclass(frozen=True)
class TableContent:
    """A table's rows as the dump printed them: how many, and their digest."""

    rows: int | None
    sha256: str


def _name(quoted: bytes) -> str:
    return quoted.replace(b"``", b"`").decode("utf-8", "surrogateescape")


class DumpScanner:
    """Feed it the dump's bytes in any pieces; :meth:`result` gives every table's content."""

    def __init__(self) -> None:
        self._carry = b""
        self._in_data = False
        #: The table whose INSERT statement is open (its rows come one per line).
        self._table: str | None = None
        self._hashes: dict[str, Any] = {}
        self._rows: dict[str, int] = {}
        self._uncounted: set[str] = set()
        #: The table whose CREATE TABLE comes next (or is being read), and whether it began.
        self._structure: str | None = None
        self._in_create = False
        self._counters: dict[str, int | None] = {}

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Scan the next piece of the stream."""
        if not isinstance(data, bytes):
            data = bytes(data)
        start = 0
        if self._carry:  # finish the line the previous piece ended in
            newline = data.find(b"\n")
            if newline < 0:
                self._carry += data
                return
            line = self._carry + data[: newline + 1]
            self._carry = b""
            self._scan(line, 0, len(line))
            start = newline + 1
        cut = data.rfind(b"\n") + 1
        if cut > start:
            self._scan(data, start, cut)
        self._carry = data[max(cut, start) :]

    def result(self) -> dict[str, TableContent]:
        """Every table the dump held data for (empty tables included)."""
        if self._carry:
            self._line(self._carry)
            self._carry = b""
        return {
            name: TableContent(
                rows=None if name in self._uncounted else self._rows[name],
                sha256=digest.hexdigest(),
            )
            for name, digest in self._hashes.items()
        }

    def auto_increments(self) -> dict[str, int | None]:
        """Every table whose ``CREATE TABLE`` the dump held, with the ``AUTO_INCREMENT``
        counter it printed (None: it printed none, the counter is at its start)."""
        return dict(self._counters)

    # -- scanning ------------------------------------------------------------------------------
    def _scan(self, block: bytes, position: int, end: int) -> None:
        """Scan the whole lines ``block[position:end]``."""
        view = memoryview(block)
        while position < end:
            if self._table is not None and block[position] == _OPEN_PAREN:
                stop = self._rows_end(block, position, end)
                self._row_lines(block, view, position, stop)
                position = stop
            else:
                newline = block.index(b"\n", position, end)
                self._line(block[position : newline + 1])
                position = newline + 1

    @staticmethod
    def _rows_end(block: bytes, position: int, end: int) -> int:
        """Where the run of row lines starting at ``position`` ends, or a line end
        within :data:`_WINDOW` bytes: each pass over the data then stays in the
        CPU cache (measured in docs/performance.md)."""
        limit = min(end, position + _WINDOW)
        found = _NON_ROW_LINE.search(block, position, limit)
        if found is not None:
            return found.start() + 1
        if limit == end:
            return end
        stop = block.rfind(b"\n", position, limit) + 1
        if stop > position:
            return stop
        found = _NON_ROW_LINE.search(block, position, end)  # one row longer than the window
        return found.start() + 1 if found is not None else end

    def _row_lines(self, block: bytes, view: memoryview, start: int, stop: int) -> None:
        table = self._table
        assert table is not None
        self._rows[table] += block.count(b"\n", start, stop)
        digest = self._hashes[table]
        if stop - start >= 2 and view[stop - 2] == _SEMICOLON:
            digest.update(view[start : stop - 2])
            digest.update(b",\n")
            self._table = None  # the statement ended with its last row
        else:
            digest.update(view[start:stop])

    def _line(self, line: bytes) -> None:
        self._table = None
        if self._structure is not None and self._definition_line(line):
            return
        if self._in_data and line.startswith(b"INSERT INTO `"):
            header = _INSERT_HEADER.match(line)
            if header is None:
                self._in_data = False
                return
            table = self._register(_name(header.group(1)))
            rest = line[header.end() :]
            if rest in (b"\n", b"\r\n"):
                self._table = table
            else:  # one line holds every row of the statement
                self._uncounted.add(table)
                body = rest.rstrip(b"\r\n")
                if body.endswith(b";"):
                    body = body[:-1]
                self._hashes[table].update(body)
                self._hashes[table].update(b",")
            return
        if line.startswith(b"-- "):
            section = _DATA_SECTION.match(line)
            self._in_data = section is not None
            if section is not None:
                self._register(_name(section.group(1)))
            structure = _STRUCTURE_SECTION.match(line)
            self._structure = None if structure is None else _name(structure.group(1))
            self._in_create = False
            return
        if line.strip() in (b"", b"--") or line.startswith(_DATA_SECTION_LINES):
            return
        self._in_data = False

    def _definition_line(self, line: bytes) -> bool:
        """Follow the ``CREATE TABLE`` of a table-structure section; whether ``line`` was
        part of it. Its lines before the closing one start with spaces (names, keys and
        comments are printed escaped, one per line), the closing one with ``)``."""
        if not self._in_create:
            header = _CREATE_TABLE.match(line.rstrip(b"\r\n"))
            if header is None or _name(header.group(1)) != self._structure:
                return False
            self._in_create = True
            return True
        if line.startswith(b")"):
            assert self._structure is not None
            counter = _COUNTER.match(line)
            self._counters[self._structure] = None if counter is None else int(counter.group(1))
            self._structure = None
            self._in_create = False
        return True

    def _register(self, table: str) -> str:
        if table not in self._hashes:
            self._hashes[table] = hashlib.sha256()
            self._rows[table] = 0
        return table


#: Small pieces (single lines of a filtered stream) are fed in blocks of this size.
_FEED_BLOCK = 256 * 1024


def scanned(chunks: Iterable[bytes], scanner: DumpScanner) -> Iterator[bytes]:
    """``chunks`` unchanged, each one fed to ``scanner`` on its way through.

    The scanner has seen everything once the iterator is exhausted.
    """
    pending: list[bytes] = []
    pending_size = 0
    for chunk in chunks:
        if not pending and len(chunk) >= _FEED_BLOCK:
            scanner.feed(chunk)
        else:
            pending.append(chunk)
            pending_size += len(chunk)
            if pending_size >= _FEED_BLOCK:
                scanner.feed(b"".join(pending))
                pending, pending_size = [], 0
        yield chunk
    if pending:
        scanner.feed(b"".join(pending))
