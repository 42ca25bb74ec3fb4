"""The interface of a storage: where offsite copies of backups live.

A storage is one location (``s3://bucket/prefix``, ``file:///srv/copies``)
holding objects by name. The interface is kept small so that a third-party
backend (an entry point in ``migration_guard.storage``) is a short class:
``put`` streams a local file up, ``get`` streams an object down, ``head``
says how big an object is, which SHA-256 was recorded for it and until when
it is locked, ``list`` and ``delete``. Optional parts: ``open_upload``
(an upload fed while the archive is being written, published only by
``commit``, and told by ``close`` that no more data comes) and ``check_lock``
(whether the location can hold objects under a retention lock; storages that
cannot, refuse).

A storage only ever sees what the backup directory holds: encrypted archives
(when a key is configured) and manifests, which hold no secrets.
"""

from __future__ import annotations

import abc
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from migration_guard.errors import BackupError


class StorageError(BackupError):
    """A storage could not be reached or refused an operation (exit 1)."""


@dataclass(frozen=True)
class ObjectInfo:
    """What ``head`` tells about an object: its size, the SHA-256 recorded at ``put``
    (None for an object written by a streamed upload: its manifest holds it) and the
    moment until which a retention lock keeps it (None: not locked)."""

    size: int
    sha256: str | None
    retain_until: datetime | None = None


class Upload(abc.ABC):
    """An object being written while its content is produced; invisible until :meth:`commit`."""

    @abc.abstractmethod
    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Add ``data``. Never raises for a storage failure: :meth:`commit` reports it."""

    def close(self) -> None:
        """No more data comes: send what is left, without publishing anything yet (the
        caller still has to check the local copy). Never raises; :meth:`commit` calls it
        when the caller did not. The default does nothing."""
        return

    @abc.abstractmethod
    def commit(self) -> None:
        """Publish the object whole; :class:`StorageError` if any part of it failed."""

    @abc.abstractmethod
    def abort(self) -> None:
        """Give up: nothing of the object remains. Never raises."""


class Storage(abc.ABC):
    """One location of objects; ``url`` names it in messages and never holds a secret."""

    def __init__(self, url: str) -> None:
        self.url = url

    @abc.abstractmethod
    def put(
        self, name: str, path: Path, *, sha256: str, retain_until: datetime | None = None
    ) -> None:
        """Store the file ``path`` as ``name``, streaming it; all or nothing.

        ``sha256`` (the file's digest, known by the caller) is recorded with
        the object. An interrupted put leaves no object and no partial upload.
        ``retain_until`` locks the object against deletion and overwriting until
        then (only called after :meth:`check_lock` passed).
        """

    def open_upload(self, name: str, *, retain_until: datetime | None = None) -> Upload | None:
        """Start writing ``name`` while its content is produced, or None when this storage
        cannot (the caller then uses :meth:`put` once the file is complete)."""
        return None

    def check_lock(self) -> None:
        """Raise :class:`StorageError` unless objects here can be locked (``retain_until``)."""
        raise StorageError(
            f"{self.url} cannot lock objects against deletion; offsite_lock_days needs an "
            "S3 bucket with Object Lock (see docs/backups.md, Setting up the bucket)"
        )

    @abc.abstractmethod
    def get(self, name: str) -> AbstractContextManager[BinaryIO]:
        """The object ``name`` as a readable stream; :class:`StorageError` if missing."""

    @abc.abstractmethod
    def head(self, name: str) -> ObjectInfo | None:
        """Size and recorded SHA-256 of ``name``, or None when there is no such object."""

    @abc.abstractmethod
    def list(self) -> list[str]:
        """The names of all objects in this location, sorted."""

    @abc.abstractmethod
    def delete(self, name: str) -> None:
        """Remove ``name`` (no error when it is already gone)."""

    def describe(self, name: str) -> str:
        """Where object ``name`` lives, for messages."""
        return f"{self.url.rstrip('/')}/{name}"
