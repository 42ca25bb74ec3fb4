"""The interface of a storage: where offsite copies of backups live.

A storage is one location (``s3://bucket/prefix``, ``file:///srv/copies``)
holding objects by name. The interface is kept small so that a third-party
backend (an entry point in ``migration_guard.storage``) is a short class:
``put`` streams a local file up, ``get`` streams an object down, ``head``
says how big an object is and which SHA-256 was recorded for it, ``list``
and ``delete``.

A storage only ever sees what the backup directory holds: encrypted archives
(when a key is configured) and manifests, which hold no secrets.
"""

from __future__ import annotations

import abc
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from migration_guard.errors import BackupError


class StorageError(BackupError):
    """A storage could not be reached or refused an operation (exit 1)."""


@dataclass(frozen=True)
class ObjectInfo:
    """What ``head`` tells about an object: its size and the SHA-256 recorded at ``put``."""

    size: int
    sha256: str | None


class Storage(abc.ABC):
    """One location of objects; ``url`` names it in messages and never holds a secret."""

    def __init__(self, url: str) -> None:
        self.url = url

    @abc.abstractmethod
    def put(self, name: str, path: Path, *, sha256: str) -> None:
        """Store the file ``path`` as ``name``, streaming it; all or nothing.

        ``sha256`` (the file's digest, known by the caller) is recorded with
        the object. An interrupted put leaves no object and no partial upload.
        """

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
