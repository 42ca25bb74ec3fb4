"""Offsite copies uploaded while the backup is written, published only once it is complete.

:class:`StreamedCopies` is the ``tee`` of
:func:`~migration_guard.backup.publish.publish_archive`: it opens one upload
per offsite location (``Storage.open_upload``) when the archive file is
created and hands each of them every byte the archive writer stores, so the
upload overlaps the dump instead of following it; when the archive ends,
:meth:`StreamedCopies.close` lets the last part go up while the local file is
fsynced and checked.

Nothing becomes visible in a location before :meth:`StreamedCopies.finish`,
which the backup calls only after the local archive and manifest are
published and verified: it commits each archive upload (for S3: completes the
multipart upload), then uploads the manifest, so a copy exists only once its
archive is complete. A failed or interrupted backup calls
:meth:`StreamedCopies.abort` instead, which removes every upload (for S3:
aborts the multipart upload). A location that fails (endpoint down,
credentials refused, bucket missing, no Object Lock where
``offsite_lock_days`` asks for it) never stops the dump or the local backup:
:meth:`~StreamedCopies.finish` reports it like
:func:`~migration_guard.backup.offsite.copy_backup` does. A storage without
``open_upload`` is copied from the finished local file.

With ``backup_dir`` in object storage (``s3://BUCKET/PREFIX``) that location is
the *primary*: the archive is written only to its upload (``keep_local`` is
False, no local file), a failure there fails the backup (exit 1) and removes
its manifest from the local cache, so nothing claims a backup that does not
exist; the other locations are copies as usual.
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING

from migration_guard.backup.catalog import ARCHIVE_SUFFIX, Catalog, remote_backup_dir
from migration_guard.backup.offsite import (
    conclude,
    copy_failure,
    put_manifest,
    retain_until,
    upload_copy,
)
from migration_guard.backup.storage import Storage, Upload, open_storage
from migration_guard.config import Config
from migration_guard.errors import BackupError

if TYPE_CHECKING:
    from datetime import datetime

    from migration_guard.backup.manifest import Manifest
    from migration_guard.events import EventSink

log = logging.getLogger("migration_guard.backup")


class StreamedCopies:
    """The offsite copies of one backup being written."""

    def __init__(self, config: Config, on_event: EventSink | None, *, required: bool) -> None:
        self._config = config
        self._on_event = on_event
        #: ``backup_dir`` when it is in object storage: the only place the archive goes.
        self.primary = remote_backup_dir(config)
        self.keep_local = self.primary is None
        self._required = required or self.primary is not None
        self._retain: datetime | None = None
        self._uploads: list[tuple[str, Storage, Upload]] = []
        self._later: list[tuple[str, Storage]] = []
        self._failures: list[str] = []

    def __call__(self, backup_id: str) -> StreamedCopies:
        """Open the uploads of ``backup_id``'s archive (``publish_archive`` calls this)."""
        self._retain = retain_until(self._config)
        name = f"{backup_id}{ARCHIVE_SUFFIX}"
        for location in self._config.offsite:
            try:
                storage = open_storage(location)
                if self._retain is not None:
                    storage.check_lock()
                upload = storage.open_upload(name, retain_until=self._retain)
            except BackupError as exc:
                if location == self.primary:
                    raise BackupError(f"cannot write the backup to {location}: {exc}") from None
                self._failures.append(f"{location}: {exc}")
                continue
            if upload is None and location == self.primary:
                raise BackupError(
                    f"backup_dir {location}: this storage cannot take an archive while it is "
                    "written; use a local backup_dir and list the location in offsite"
                )
            if upload is None:
                self._later.append((location, storage))
            else:
                self._uploads.append((location, storage, upload))
        return self

    def write(self, data: bytes | bytearray | memoryview) -> None:
        for _location, _storage, upload in self._uploads:
            upload.write(data)

    def close(self) -> None:
        """The archive is complete: every upload may send what it still holds."""
        for _location, _storage, upload in self._uploads:
            upload.close()

    def abort(self) -> None:
        """The backup failed: nothing of it may remain in any location."""
        uploads, self._uploads = self._uploads, []
        for _location, _storage, upload in uploads:
            with contextlib.suppress(Exception):
                upload.abort()

    def finish(self, catalog: Catalog, manifest: Manifest) -> None:
        """Publish every copy of the complete, verified backup ``manifest``; report failures.

        Raises :class:`~migration_guard.backup.offsite.OffsiteError` when a copy
        failed (the local backup is kept), unless the copies are not required.
        """
        failures = list(self._failures)  # never the primary's: that one raised at once
        lost: str | None = None
        while self._uploads:
            location, storage, upload = self._uploads[0]
            try:
                upload.commit()
                put_manifest(storage, catalog, manifest, self._retain)
            except (BackupError, OSError) as exc:
                failures.append(copy_failure(location, exc))
                if location == self.primary:
                    lost = failures[-1]
            except BaseException:  # Ctrl-C: the uploads not yet committed are removed
                self.abort()
                raise
            self._uploads.pop(0)
        for location, storage in self._later:  # never the primary: it must stream
            try:
                upload_copy(storage, catalog, manifest, self._retain)
            except (BackupError, OSError) as exc:
                failures.append(copy_failure(location, exc))
        if lost:
            catalog.delete(manifest.id)  # the cached manifest of a backup that does not exist
            conclude(catalog, manifest, failures, self._on_event, required=False)
            raise BackupError(
                f"backup {manifest.id} could not be written to {lost}. Nothing was kept; "
                "check the location and its AWS configuration and run the backup again"
            )
        conclude(catalog, manifest, failures, self._on_event, required=self._required)
