"""The interface every backup backend implements.

A backend turns a live database into a *plain* stream (SQL text or a database
file) written to a binary sink, and back. Compression, encryption, manifests
and the catalog are the engine's business, not the backend's.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO, ClassVar

from sqlalchemy.engine import URL

from migration_guard.dialects.base import TableStats

__all__ = ["CHUNK_SIZE", "Backend", "DumpResult", "ProgressCallback", "TableStats"]

#: Bytes moved per read/write between processes, files and sinks.
CHUNK_SIZE = 1024 * 1024

#: Called with the number of bytes just written (dump) or read (restore).
ProgressCallback = Callable[[int], None]


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


class Backend(abc.ABC):
    """One way of dumping and restoring a database (``mysqldump``, ``native``, ``sqlite``...)."""

    name: ClassVar[str]
    dialects: ClassVar[frozenset[str]]
    #: The ``stream_format`` values :meth:`restore` accepts.
    stream_formats: ClassVar[frozenset[str]]

    @abc.abstractmethod
    def dump(
        self,
        url: URL,
        sink: BinaryIO,
        *,
        tables: Sequence[str] | None = None,
        progress: ProgressCallback | None = None,
    ) -> DumpResult:
        """Write a consistent dump of ``url`` (or just ``tables``) into ``sink``."""

    @abc.abstractmethod
    def restore(
        self,
        url: URL,
        source: BinaryIO,
        *,
        stream_format: str,
        tables: Sequence[str] | None = None,
        progress: ProgressCallback | None = None,
    ) -> None:
        """Load a stream produced by :meth:`dump` into ``url``'s (existing) database.

        With ``tables`` only those tables are restored; the rest of the target
        is left as it is.
        """

    def available(self) -> str | None:
        """``None`` when the backend can run here, else the reason it cannot."""
        return None
