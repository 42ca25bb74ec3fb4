"""Storages for offsite copies, one registry loaded from ``migration_guard.storage``.

``file`` (a directory) and ``s3`` (S3 and S3-compatible services) are built in
and declared as entry points like third-party storages; a location's URL
scheme picks the storage (a plain path is ``file``).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from migration_guard.backup.storage.base import ObjectInfo, Storage, StorageError, Upload
from migration_guard.registry import Registry

STORAGES: Registry[type[Storage]] = Registry(
    "migration_guard.storage",
    "storage",
    {
        "file": "migration_guard.backup.storage.file:FileStorage",
        "s3": "migration_guard.backup.storage.s3:S3Storage",
    },
)


def open_storage(location: str) -> Storage:
    """The storage of ``location`` (``s3://bucket/prefix``, ``file:///dir``, ``/dir``)."""
    scheme = urlsplit(location).scheme or "file"
    return STORAGES.get(scheme)(location)


__all__ = ["STORAGES", "ObjectInfo", "Storage", "StorageError", "Upload", "open_storage"]
