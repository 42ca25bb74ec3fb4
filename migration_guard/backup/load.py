"""Stream an archive from the catalog through its backend into a database.

All or nothing: the whole archive is checked first
(:func:`~migration_guard.backup.trust.checked_archive`),
then the same open file is streamed into the backend, re-hashed on the way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, BinaryIO

from migration_guard.backup.catalog import Catalog
from migration_guard.backup.manifest import ROW_DIGEST_METHOD, Manifest
from migration_guard.backup.streams import HashingSource, ProgressCallback
from migration_guard.backup.trust import checked_archive, recheck_digest

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

    from migration_guard.backup.backends.base import RestoreOptions, RestoreOutcome
    from migration_guard.backup.keys import UserKey


def load_checked(
    manifest: Manifest,
    handle: BinaryIO,
    key: UserKey | None,
    url: URL,
    tables: Sequence[str] | None,
    progress: ProgressCallback | None,
    options: RestoreOptions | None = None,
) -> RestoreOutcome:
    """Load the archive ``handle`` (checked by ``checked_archive``) into ``url``'s database,
    with the backend's restore ``options`` (owners, grants) when given."""
    import os

    from migration_guard.backup import archive
    from migration_guard.backup.backends import get_backend

    loader = get_backend(manifest.backend)
    if options is not None:
        loader = loader.configured(options)
    loader = loader.planned({name: entry.size for name, entry in manifest.tables.items()})
    loader = loader.digesting(manifest.extra.get(ROW_DIGEST_METHOD))
    source = HashingSource(handle, progress, os.fstat(handle.fileno()).st_size)
    reader = archive.open_reader(source, key=key)
    outcome = loader.restore(
        url,
        reader,  # type: ignore[arg-type]
        stream_format=manifest.artifact.stream_format,
        tables=list(tables) if tables else None,
    )
    recheck_digest(manifest, source)
    return outcome


def stream_restore(
    manifest: Manifest,
    catalog: Catalog,
    key: UserKey | None,
    url: URL,
    tables: Sequence[str] | None,
    progress: ProgressCallback | None,
) -> RestoreOutcome:
    """Load backup ``manifest`` (or just ``tables`` of it) into ``url``'s existing database.

    Nothing reaches the database unless the whole archive passed its check.
    """
    with checked_archive(catalog, manifest, key) as handle:
        return load_checked(manifest, handle, key, url, tables, progress)
