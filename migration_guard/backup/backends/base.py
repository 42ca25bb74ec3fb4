"""The interface every backup backend implements.

A backend turns a live database into a *plain* stream (SQL text or a database
file) written to a binary sink, and back. Compression, encryption, manifests
and the catalog are the engine's business, not the backend's.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, BinaryIO, ClassVar, Protocol

from migration_guard.backup.backends.dumpscan import TableContent
from migration_guard.dialects.base import TableStats
from migration_guard.errors import BackupError, UsageError

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

__all__ = [
    "CHUNK_SIZE",
    "STREAM_HEAD_BYTES",
    "STREAM_TAIL_BYTES",
    "Backend",
    "ByteCounter",
    "CountingReader",
    "DumpResult",
    "Reader",
    "RestoreOptions",
    "RestoreOutcome",
    "Sink",
    "TableContent",
    "TableStats",
    "iter_lines",
    "read_chunks",
    "select_tables",
    "write_chunks",
]

#: Bytes moved per read/write between processes, files and sinks.
CHUNK_SIZE = 1024 * 1024

#: How much of each end of a plain stream :meth:`Backend.stream_problem` gets to see.
STREAM_HEAD_BYTES = 16
STREAM_TAIL_BYTES = 4096

#: Called with the number of bytes just written (dump) or read (restore); the engine
#: turns the counts into its ``ProgressCallback(done, total)``.
ByteCounter = Callable[[int], None]


class Reader(Protocol):
    """Anything with a binary ``read``."""

    def read(self, size: int = -1, /) -> bytes: ...


class Sink(Protocol):
    """Anything with a binary ``write``."""

    def write(self, data: bytes, /) -> int: ...


class CountingReader:
    """A reader that reports the bytes it hands out."""

    def __init__(self, source: Reader, progress: ByteCounter | None) -> None:
        self.source = source
        self.progress = progress

    def read(self, size: int = -1) -> bytes:
        data = self.source.read(size)
        if self.progress is not None and data:
            self.progress(len(data))
        return data


def read_chunks(source: Reader) -> Iterator[bytes]:
    """``source`` in blocks of :data:`CHUNK_SIZE` bytes, until it is exhausted."""
    return iter(lambda: source.read(CHUNK_SIZE), b"")


def write_chunks(chunks: Iterable[bytes], sink: Sink, progress: ByteCounter | None) -> None:
    """Write every chunk to ``sink``, reporting each one once it is written."""
    for chunk in chunks:
        sink.write(chunk)
        if progress is not None:
            progress(len(chunk))


def iter_lines(source: Reader) -> Iterator[bytes]:
    """The lines of ``source`` (newline included), read in 1 MiB blocks."""
    pending = b""
    for block in read_chunks(source):
        pending += block
        start = 0
        while True:
            end = pending.find(b"\n", start)
            if end < 0:
                break
            yield pending[start : end + 1]
            start = end + 1
        pending = pending[start:]
    if pending:
        yield pending


def select_tables(existing: Sequence[str], tables: Sequence[str]) -> list[str]:
    """``tables`` without repeats; :class:`UsageError` naming any not in ``existing``."""
    missing = sorted(set(tables) - set(existing))
    if missing:
        raise UsageError(
            f"no such table(s) in the database: {', '.join(missing)}; "
            f"existing tables: {', '.join(existing) or '(none)'}"
        )
    return list(dict.fromkeys(tables))


@dataclass
class DumpResult:
    """What a dump produced, for the manifest.

    ``stream_format`` tells the restore how to read the stream back:
    ``mysql-sql`` (mysqldump/mariadb-dump output), ``mysql-native`` (the native
    backend's statement stream), ``sqlite-db`` (a database file) or
    ``sqlite-sql`` (SQL for selected SQLite tables). ``binlog`` holds ``file``,
    ``position`` and ``gtid`` when the server writes a binary log. ``objects``
    names the views, triggers, procedures, functions and events included.
    """

    tables: dict[str, TableStats]
    server_version: str
    stream_format: str
    binlog: dict[str, str] | None = None
    objects: dict[str, list[str]] = field(default_factory=dict)
    extra: dict[str, object] = field(default_factory=dict)


@dataclass
class RestoreOutcome:
    """What a backend saw while restoring.

    ``content`` holds, per table, the rows of the stream it loaded and their
    digest (backends whose manifests record ``content_sha256``); empty otherwise.
    ``measured`` holds, per table, the row count and checksum the backend read
    from the target itself once the rows were in (while it built the indexes,
    say): the engine compares those with the manifest instead of reading every
    table again, and still reads each table's definition at the end.
    """

    content: dict[str, TableContent] = field(default_factory=dict)
    measured: dict[str, TableStats] = field(default_factory=dict)


@dataclass(frozen=True)
class RestoreOptions:
    r"""What a restore does with the roles an archive names.

    ``owners`` gives every object its owner from the source (those roles must
    exist on the target; otherwise the restoring role owns everything);
    ``grants`` restores the ``GRANT``\s (privileges) of the source.
    """

    owners: bool = False
    grants: bool = True


class Backend(abc.ABC):
    """One way of dumping and restoring a database (``mysqldump``, ``native``, ``sqlite``...)."""

    name: ClassVar[str]
    dialects: ClassVar[frozenset[str]]
    #: The ``stream_format`` values :meth:`restore` accepts.
    stream_formats: ClassVar[frozenset[str]]
    #: Why the databases of this backend's dialects have no incremental backups, and
    #: what to do instead (the ``binlog`` backend takes them for MySQL/MariaDB).
    no_incremental: ClassVar[str] = (
        "incremental backups read the binary log of MySQL/MariaDB, which this database "
        "does not have; take full backups (--type full) as often as you need recovery points"
    )

    @abc.abstractmethod
    def dump(
        self,
        url: URL,
        sink: BinaryIO,
        *,
        tables: Sequence[str] | None = None,
        progress: ByteCounter | None = None,
        server_checksums: bool = False,
    ) -> DumpResult:
        """Write a consistent dump of ``url`` (or just ``tables``) into ``sink``.

        ``server_checksums`` asks for the database's own per-table checksum
        (``CHECKSUM TABLE``) as well, where the backend would otherwise rely on
        cheaper digests of its stream; backends that always take it ignore it.
        """

    @abc.abstractmethod
    def restore(
        self,
        url: URL,
        source: BinaryIO,
        *,
        stream_format: str,
        tables: Sequence[str] | None = None,
        progress: ByteCounter | None = None,
    ) -> RestoreOutcome:
        """Load a stream produced by :meth:`dump` into ``url``'s (existing) database.

        With ``tables`` only those tables are restored; the rest of the target
        is left as it is.
        """

    def configured(self, options: RestoreOptions) -> Backend:
        """This backend restoring with ``options``; :class:`UsageError` for options
        it cannot honour (the default options are always fine)."""
        if options != RestoreOptions():
            raise UsageError(
                f"the {self.name} backend restores no object owners or grants; drop "
                "--keep-owners / --no-grants (they apply to PostgreSQL backups)"
            )
        return self

    def planned(self, table_sizes: Mapping[str, int | None]) -> Backend:
        """This backend restoring an archive whose tables take ``table_sizes`` bytes (the
        manifest's), for a backend that plans its restore by them; the default ignores them."""
        del table_sizes
        return self

    def digesting(self, recorded: object) -> Backend:
        """This backend measuring the rows it restores (:attr:`RestoreOutcome.measured`)
        with the row digest method a manifest recorded (``recorded``: its
        ``row_digest_method``, None when it names none); the default measures nothing."""
        del recorded
        return self

    def overwrite_problem(
        self, extra: Mapping[str, object], tables: Sequence[str] | None
    ) -> str | None:
        """Why a backup whose manifest ``extra`` is this must not be restored (whole, or
        only ``tables``) over a database that holds tables, or None (the default: it may)."""
        del extra, tables
        return None

    def content_digests(self, url: URL, tables: Sequence[str]) -> dict[str, TableContent] | None:
        """The rows and ``content_sha256`` of ``tables`` as they are now in ``url``.

        ``None`` when the backend records no content digests. Used after a
        restore test, to prove the database holds the rows the backup holds.
        """
        del url, tables
        return None

    def available(self) -> str | None:
        """``None`` when the backend can run here, else the reason it cannot."""
        return None

    def stream_problem(self, stream_format: str, head: bytes, tail: bytes) -> str | None:
        """What is wrong with the shape of a plain ``stream_format`` stream, or None.

        ``head`` holds at least the first :data:`STREAM_HEAD_BYTES` bytes of the
        stream, ``tail`` the last :data:`STREAM_TAIL_BYTES`; verification asks
        after checking the archive's hash, to catch a dump that ended early.
        """
        del stream_format, head, tail
        return None

    def stream_coordinates(
        self, stream_format: str, head: bytes, tail: bytes
    ) -> dict[str, str] | None:
        """The binary-log coordinates (``file``, ``position``, ``gtid``) the stream itself
        records, or None; verification compares them with the manifest's ``binlog``.

        ``head`` and ``tail`` are as for :meth:`stream_problem`.
        """
        del stream_format, head, tail
        return None

    def check_stream_format(self, stream_format: str, hint: str = "") -> None:
        """:class:`BackupError` when :meth:`restore` cannot read ``stream_format``.

        ``hint`` (``"; use ..."``) is appended to the message.
        """
        if stream_format not in self.stream_formats:
            raise BackupError(
                f"the {self.name} backend cannot restore a {stream_format!r} stream{hint}"
            )
