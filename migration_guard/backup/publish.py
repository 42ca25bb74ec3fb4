"""Writing one archive into the catalog: all of it, or nothing.

Every kind of backup (full, critical, tables, safety, incremental) goes through
:func:`publish_archive`: the archive is written to ``<id>.mgb.partial`` under the
backup's lock, closed, fsynced and renamed; only then is its manifest written,
and a backup exists only once its manifest does. An interrupted or failed
write leaves neither file behind.

A ``tee`` (the offsite copies, :mod:`~migration_guard.backup.streamed`) receives
every byte of the archive as it is written, so its uploads overlap the dump, and
is closed as soon as the archive ends, so its last piece goes up while the file
is fsynced and checked; it publishes nothing itself (the caller commits it once
the backup is complete) and is told to abort when the archive fails.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, Protocol, TypeVar

from migration_guard.backup.catalog import Catalog, fsync_directory
from migration_guard.backup.manifest import Artifact, Encryption, Manifest, seal_manifest, utc_now
from migration_guard.backup.streams import (
    CountingSink,
    ProgressCallback,
    is_out_of_space,
    remove_quietly,
    space_error,
)
from migration_guard.backup.verification import quick_verification
from migration_guard.errors import BackupError, MigrationGuardError

_Result = TypeVar("_Result")


@dataclass(frozen=True)
class DumpJob:
    """What one kind of backup dumps, and what its manifest records besides the common fields.

    ``dump(sink)`` writes the plain stream and returns the backend's result;
    ``fields(result)`` gives the type's own manifest fields (``tables``,
    ``binlog``, ``parent``...). Every kind of backup is then published, verified,
    copied and pruned by the same code (:func:`migration_guard.backup.creation.create`).
    """

    backend: str
    dump: Callable[[CountingSink], Any]
    fields: Callable[[Any], dict[str, Any]]


class ArchiveTee(Protocol):
    """What receives a copy of the archive while it is written."""

    def write(self, data: bytes | bytearray | memoryview) -> None: ...

    def close(self) -> None:
        """The archive is complete: no more writes (nothing is published yet)."""

    def abort(self) -> None: ...


class ArchiveCopies(Protocol):
    """Makes the tee of one archive; ``keep_local`` False: the tee is the only copy."""

    keep_local: bool

    def __call__(self, backup_id: str) -> ArchiveTee: ...


class _TeeFile:
    """The archive file, with every byte it accepts also handed to a tee."""

    def __init__(self, handle: BinaryIO, tee: ArchiveTee) -> None:
        self._handle = handle
        self._tee = tee

    def write(self, data: bytes | bytearray | memoryview) -> int:
        written = self._handle.write(data)
        size = len(data) if written is None else written
        self._tee.write(data if size == len(data) else memoryview(data)[:size])
        return size

    def flush(self) -> None:
        self._handle.flush()


def publish_archive(
    catalog: Catalog,
    backup_id: str,
    *,
    dump: Callable[[CountingSink], _Result],
    describe: Callable[[_Result, Artifact, datetime], Manifest],
    writer_options: dict[str, Any],
    progress: ProgressCallback | None,
    quick_verify: bool,
    tee: ArchiveCopies | None = None,
) -> Manifest:
    """Write ``dump``'s stream as the archive of ``backup_id`` and publish its manifest.

    ``dump(sink)`` writes the plain stream and returns what ``describe`` needs;
    ``writer_options`` go to :func:`~migration_guard.backup.archive.open_writer`
    (compression, level, key, threads). The manifest is sealed with the archive's
    key and, with ``quick_verify``, carries the re-read of the file just written.
    ``tee(backup_id)``, when given, returns what receives a copy of the archive's bytes;
    it is aborted when the archive is not published. When the tee does not
    ``keep_local`` (``backup_dir`` in object storage) the archive goes only to the
    tee: no local file, no re-read; the manifest is still published in the (cache)
    directory.
    """
    from migration_guard.backup import archive

    directory = catalog.ensure()
    partial = catalog.partial_path(backup_id)
    final = catalog.archive_path(backup_id)
    published = False
    keep_local = tee is None or tee.keep_local
    copy: ArchiveTee | None = None
    with catalog.lock(backup_id):
        try:
            descriptor = (
                os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                if keep_local
                else os.open(os.devnull, os.O_WRONLY)
            )
            with os.fdopen(descriptor, "wb") as handle:
                copy = tee(backup_id) if tee is not None else None
                target: Any = handle if copy is None else _TeeFile(handle, copy)
                writer = archive.open_writer(target, backup_id=backup_id, **writer_options)
                sink = CountingSink(writer, progress, None)  # type: ignore[arg-type]
                try:
                    result = dump(sink)
                except BaseException:
                    # Unfinished on purpose: an interrupted archive must read as truncated.
                    writer.abort()
                    raise
                writer.close()
                if copy is not None:
                    copy.close()
                handle.flush()
                if keep_local:
                    os.fsync(handle.fileno())
            if keep_local:
                os.replace(partial, final)
                fsync_directory(directory)
            artifact = _artifact(final, writer, writer_options, keep_local)
            manifest = describe(result, artifact, utc_now())
            seal_manifest(manifest, writer.manifest_key)
            if quick_verify and keep_local:
                manifest.verification = quick_verification(final, manifest)
            catalog.write_manifest(manifest)
            published = True
        except BaseException as exc:
            remove_quietly(partial)
            if not published:
                remove_quietly(final, catalog.manifest_path(backup_id))
                if copy is not None:
                    copy.abort()
            if is_out_of_space(exc):
                raise space_error(directory) from None
            if isinstance(exc, MigrationGuardError):
                raise
            if isinstance(exc, OSError):
                raise BackupError(
                    f"cannot write the backup to {directory}: {exc.strerror or exc}"
                ) from None
            raise
    return manifest


def _artifact(
    final: Path, writer: Any, writer_options: dict[str, Any], local: bool = True
) -> Artifact:
    """What the manifest says about the archive file just written (its stream format is
    the backend's, filled in by ``describe``)."""
    stats = writer.stats
    fingerprint = writer.header.key_fingerprint
    return Artifact(
        file=final.name,
        size=final.stat().st_size if local else stats.stored_bytes,
        sha256=stats.sha256,
        compression=writer_options["compression"],
        encryption=Encryption(key_fingerprint=fingerprint) if fingerprint else None,
        stream_format="",
        plain_size=stats.plain_bytes,
    )
