"""Stream an archive from the catalog through its backend into a database."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from migration_guard.backup.catalog import Catalog
from migration_guard.backup.manifest import Manifest
from migration_guard.backup.streams import HashingSource, ProgressCallback
from migration_guard.errors import BackupError

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

    from migration_guard.backup.backends.base import RestoreOutcome
    from migration_guard.backup.keys import UserKey


def stream_restore(
    manifest: Manifest,
    catalog: Catalog,
    key: UserKey | None,
    url: URL,
    tables: Sequence[str] | None,
    progress: ProgressCallback | None,
) -> RestoreOutcome:
    """Load backup ``manifest`` (or just ``tables`` of it) into ``url``'s existing database."""
    from migration_guard.backup import archive
    from migration_guard.backup.backends import get_backend

    loader = get_backend(manifest.backend)
    path = catalog.archive_path(manifest.id)
    if not path.is_file():
        raise BackupError(f"the archive of backup {manifest.id} is missing: {path}")
    with path.open("rb") as handle:
        source = HashingSource(handle, progress, path.stat().st_size)
        reader = archive.open_reader(source, key=key)
        return loader.restore(
            url,
            reader,  # type: ignore[arg-type]
            stream_format=manifest.artifact.stream_format,
            tables=list(tables) if tables else None,
        )
