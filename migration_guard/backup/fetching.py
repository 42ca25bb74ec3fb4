"""Bringing backups back from their offsite copies.

:func:`fetch_missing` brings back a backup whose local copy is gone from the
first location whose copy verifies, before a restore, a verification or a
drill reads it; :func:`newest_copy` names the newest backup the locations
hold (a drill on a host that lost its disk); :func:`refresh_cache` keeps the
local cache of a ``backup_dir`` in object storage in step with the bucket.
"""

from __future__ import annotations

import hashlib
import logging

from migration_guard.backup.catalog import (
    ARCHIVE_SUFFIX,
    MANIFEST_SUFFIX,
    Catalog,
    atomic_file,
    remote_backup_dir,
)
from migration_guard.backup.manifest import ID_PATTERN, Manifest, ManifestError
from migration_guard.backup.offsite import archive_name, manifest_name
from migration_guard.backup.storage import Storage, StorageError, open_storage
from migration_guard.backup.streams import READ_SIZE
from migration_guard.config import Config
from migration_guard.errors import BackupError

log = logging.getLogger("migration_guard.backup")


def fetch_missing(config: Config, catalog: Catalog, backup_id: str) -> Manifest | None:
    """Bring back a backup whose local copy is gone, from the first offsite copy that verifies.

    A backup whose manifest is still local but whose archive is gone gets its
    archive back (checked against the local manifest); one that is gone
    entirely gets both. Returns None when nothing was missing or no location
    holds a copy that verifies (the caller then reports the problem as usual).
    The archive goes to a temp file, is checked, fsynced and renamed; the
    manifest is written last.
    """
    wanted = backup_id.strip()
    ids = catalog.ids()
    local = [i for i in ids if i == wanted] or [i for i in ids if wanted and i.startswith(wanted)]
    if len(local) > 1 or (local and catalog.archive_path(local[0]).exists()):
        return None
    known = catalog.get(local[0]) if local else None
    for location in config.offsite:
        try:
            storage = open_storage(location)
            manifest = known or _remote_manifest(storage, wanted)
            if manifest is None:
                continue
            _download(storage, catalog, manifest, publish=known is None)
        except BackupError as exc:
            log.warning("offsite copy in %s not usable: %s", location, exc)
            continue
        return manifest
    return None


def newest_copy(config: Config) -> str | None:
    """The id of the newest backup (safety backups aside) held in any offsite location."""
    found: list[str] = []
    for location in config.offsite:
        try:
            names = open_storage(location).list()
        except BackupError as exc:
            log.warning("cannot list the offsite copies in %s: %s", location, exc)
            continue
        for name in names:
            match = ID_PATTERN.match(name[: -len(MANIFEST_SUFFIX)])
            if name.endswith(MANIFEST_SUFFIX) and match and match["type"] != "safety":
                found.append(match.group(0))
    return max(found, default=None)


def refresh_cache(config: Config, catalog: Catalog) -> None:
    """With ``backup_dir`` in object storage: make the local cache list what the bucket holds.

    Manifests the cache lacks are fetched (a backup of another host, a wiped
    cache); cached ones whose backup is gone from the bucket are dropped, except
    while their backup is being written. A bucket that cannot be listed is an
    error (exit 1): the cache alone must not pass for the catalog.
    """
    remote = remote_backup_dir(config)
    if remote is None:
        return
    storage = open_storage(remote)
    names = set(storage.list())
    held = {
        backup_id
        for name in names
        if name.endswith(MANIFEST_SUFFIX)
        and f"{(backup_id := name[: -len(MANIFEST_SUFFIX)])}{ARCHIVE_SUFFIX}" in names
    }
    cached = set(catalog.ids())
    for backup_id in sorted(held - cached):
        try:
            catalog.write_manifest(_manifest_named(storage, backup_id))
        except BackupError as exc:
            log.warning("cannot cache the manifest of %s from %s: %s", backup_id, remote, exc)
    for backup_id in cached - held:
        if not catalog.lock_path(backup_id).exists():
            catalog.delete(backup_id)


def _manifest_named(storage: Storage, backup_id: str) -> Manifest:
    name = manifest_name(backup_id)
    with storage.get(name) as stream:
        data = stream.read()
    manifest = Manifest.from_json(data, source=storage.describe(name))
    if manifest.id != backup_id:
        raise ManifestError(f"{storage.describe(name)} describes backup {manifest.id!r}")
    return manifest


def _remote_manifest(storage: Storage, wanted: str) -> Manifest | None:
    names = [n for n in storage.list() if n.endswith(MANIFEST_SUFFIX) and n.startswith(wanted)]
    if len(names) != 1:
        return None
    return _manifest_named(storage, names[0][: -len(MANIFEST_SUFFIX)])


def _download(storage: Storage, catalog: Catalog, manifest: Manifest, *, publish: bool) -> None:
    catalog.ensure()
    digest = hashlib.sha256()
    with (
        atomic_file(catalog.archive_path(manifest.id)) as handle,
        storage.get(archive_name(manifest)) as stream,
    ):
        while chunk := stream.read(READ_SIZE):
            digest.update(chunk)
            handle.write(chunk)
        if digest.hexdigest() != manifest.artifact.sha256:
            raise StorageError(
                f"{storage.describe(archive_name(manifest))}: SHA-256 differs from its manifest"
            )
    if publish:
        catalog.write_manifest(manifest)
    log.info("backup %s fetched from %s", manifest.id, storage.url)
