"""pg_restore's script of one table's rows, and its list of entries: pure parsing.

``pg_restore --file=-`` of one ``TABLE DATA`` entry prints settings, a
``COPY ... FROM stdin;`` statement, the rows in COPY's text format, the
end-of-rows line and closing comments. :func:`parse_script` reads the head,
:func:`row_blocks` cuts the rows into blocks of whole rows, and
:func:`toc_lists` splits ``pg_restore --list`` output around one entry, for
:mod:`.pg_split`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from migration_guard.errors import BackupError

#: The line that ends the rows of a ``COPY ... FROM stdin`` in text format. Data
#: never holds it: COPY text escapes a backslash as two and a newline as ``\n``.
END_OF_ROWS = b"\\.\n"
#: The bytes of the script held back until more follow (see :func:`row_blocks`).
HELD_BACK = 64 * 1024
#: The fewest bytes (beyond those held back) given out as a block.
MIN_BLOCK = 256 * 1024
#: The end of the statement that starts the rows in pg_restore's script.
_COPY_END = b" FROM stdin;"


class RowsCut(BackupError):
    """The rows of a ``COPY ... FROM stdin`` script ended without the end-of-rows line."""


def row_blocks(
    pending: bytes,
    reads: Iterable[bytes],
    held_back: int = HELD_BACK,
    min_block: int = MIN_BLOCK,
) -> Iterator[bytes]:
    """The rows of pg_restore's script from ``pending`` (a line's start) on and then
    of ``reads``, in blocks of whole rows, up to the end-of-rows line and nothing
    after it.

    The rows are not searched for that line (a search costs more than the rest of
    the cutting): no row is one, and the script ends a few hundred bytes after it
    (its closing comments). So only bytes that at least ``held_back`` more follow
    are given out, and at the script's end the bytes held back must hold that line;
    else :class:`RowsCut` (the script was cut short, or ended unlike a script, and
    the load must fail). A block is cut once ``min_block`` bytes are gathered, at
    the last line end that may go out, so it is shorter only before a longer row
    and at the end. Every byte is searched and copied about once, however long a
    row (a row longer than a read is gathered, not searched again with each read).
    """
    held: list[bytes] = [pending]
    size = len(pending)
    clean = 0  # the held bytes before this offset hold no line end that may go out
    for data in reads:
        held.append(data)
        size += len(data)
        if size < held_back + min_block:
            continue  # a short read: gathered, not copied again and again
        # Mostly the cut falls in the last read: its rows go out copied once.
        whole = data.rfind(b"\n", 0, max(0, len(data) - held_back)) + 1
        if whole:
            yield b"".join([*held[:-1], memoryview(data)[:whole]])
            held, size, clean = [data[whole:]], len(data) - whole, 0
            continue
        limit = size - held_back
        cut = _last_line_end(held, clean, limit)
        if cut < 0:
            clean = limit  # a long row: nothing to give out yet
            continue
        buffer = b"".join(held)
        yield buffer[: cut + 1]
        held, size, clean = [buffer[cut + 1 :]], size - cut - 1, 0
    rest = b"".join(held)
    if rest.startswith(END_OF_ROWS):
        return
    end = rest.find(b"\n" + END_OF_ROWS)
    if end < 0:
        raise RowsCut("pg_restore's script of the table's rows ended without their end")
    yield rest[: end + 1]


def _last_line_end(pieces: Sequence[bytes], start: int, stop: int) -> int:
    """The offset, in the concatenation of ``pieces``, of its last ``\\n`` in
    ``[start, stop)``; -1 if there is none. Only the pieces over that range are read."""
    end = sum(len(piece) for piece in pieces)
    for piece in reversed(pieces):
        offset = end - len(piece)
        if end > start and offset < stop:
            found = piece.rfind(b"\n", max(0, start - offset), min(len(piece), stop - offset))
            if found >= 0:
                return offset + found
        if offset <= start:
            break
        end = offset
    return -1


@dataclass(frozen=True)
class Script:
    """The head of pg_restore's ``--file=-`` script of one table's rows."""

    #: The settings before the rows (``SET ...;``, ``SELECT pg_catalog.set_config(...);``).
    settings: tuple[bytes, ...]
    #: ``COPY schema.table (columns) FROM stdin`` (without its semicolon).
    copy: bytes
    #: Where the rows start in the bytes parsed.
    rows_at: int


def parse_script(head: bytes) -> Script | None:
    """The settings and ``COPY`` statement at the head of pg_restore's script, or None
    while ``head`` does not reach the end of the ``COPY`` statement yet.

    Comments, blank lines and psql meta-commands (``\\restrict``) are skipped; a
    statement may span lines (a quoted identifier may hold a newline).
    """
    settings: list[bytes] = []
    statement = b""
    position = 0
    while True:
        newline = head.find(b"\n", position)
        if newline < 0:
            return None
        line = head[position:newline]
        position = newline + 1
        if not statement and (not line.strip() or line.startswith((b"--", b"\\"))):
            continue
        statement += line if not statement else b"\n" + line
        if statement.startswith(b"COPY ") and statement.endswith(_COPY_END):
            return Script(tuple(settings), statement[:-1], position)
        if statement.endswith(b";") and not statement.startswith(b"COPY "):
            settings.append(statement)
            statement = b""


def toc_lists(toc: str, table: str) -> tuple[str, str] | None:
    """``pg_restore --list`` output ``toc`` split into (every entry but ``table``'s rows,
    ``table``'s rows), or None unless exactly one ``TABLE DATA`` entry is ``table``'s.

    ``table`` is a manifest name: ``schema.table``, or ``table`` in the dump's current
    schema. The list prints schema, name and owner unquoted and space-separated; a
    name that could be read two ways may match twice, and then the table is not split
    (loaded whole). Splitting another table than meant would only be slower.
    """
    schema, dot, bare = table.partition(".")
    matches = []
    lines = toc.splitlines(keepends=True)
    for number, line in enumerate(lines):
        if line.startswith(";"):
            continue
        _, marker, entry = line.partition(" TABLE DATA ")
        names = entry.rstrip("\n").rpartition(" ")[0]  # without the owner
        if marker and ((dot and names == f"{schema} {bare}") or names.endswith(f" {table}")):
            matches.append(number)
    if len(matches) != 1:
        return None
    rest = "".join(line for number, line in enumerate(lines) if number != matches[0])
    return rest, lines[matches[0]]


def toc_codec(toc: bytes) -> str:
    """The codec to read ``pg_restore --list`` output ``toc`` with: its names are in
    the dump's encoding; UTF-8, else most likely LATIN1 (read losslessly either way,
    and so written back unchanged)."""
    try:
        toc.decode("utf-8")
    except UnicodeDecodeError:
        return "latin-1"
    return "utf-8"
