"""Create a backup: stream ``backend.dump`` through the archive writer into the catalog.

The dump goes into ``<id>.mgb.partial``, which is fsynced and renamed; the
manifest is published last, so a backup either exists completely or not at all.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from migration_guard import __version__
from migration_guard.backup.catalog import Catalog, mirror_to_table
from migration_guard.backup.database import check_tables_exist, expand_critical
from migration_guard.backup.events import backup_event, run_reported
from migration_guard.backup.incremental import INCREMENTAL, incremental_job
from migration_guard.backup.manifest import (
    BACKUP_TYPES,
    Artifact,
    Manifest,
    TableEntry,
    created_by,
    format_time,
    new_backup_id,
    redact_url,
    utc_now,
)
from migration_guard.backup.pruning import prune
from migration_guard.backup.publish import ArchiveCopies, DumpJob, publish_archive
from migration_guard.backup.scratch import clean_up_after_killed_runs
from migration_guard.backup.settings import backup_settings
from migration_guard.backup.streams import ProgressCallback
from migration_guard.backup.verification import public_only_note, verify
from migration_guard.config import Config
from migration_guard.errors import (
    BackupError,
    EncryptionKeyError,
    UsageError,
)
from migration_guard.urls import resolve_plain_url, resolve_url, sqlalchemy_url

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

    from migration_guard.dialects.base import TableStats
    from migration_guard.events import EventSink

log = logging.getLogger("migration_guard.backup")

#: The backup types a user may ask for (``safety`` is internal).
USER_TYPES = ("full", "critical", "tables", INCREMENTAL)


def create(
    config: Config,
    *,
    url: str | URL | None = None,
    type: str = "full",
    tables: Sequence[str] | None = None,
    compress: str | None = None,
    level: int | None = None,
    encrypt: bool | None = None,
    backend: str | None = None,
    progress: ProgressCallback | None = None,
    labels: Mapping[str, Any] | None = None,
    server_checksums: bool | None = None,
    on_event: EventSink | None = None,
) -> Manifest:
    """Back up a database into the catalog and return its manifest.

    ``encrypt=None`` encrypts when a key is configured. ``type`` is ``full``,
    ``critical`` (the protected tables), ``tables`` (``tables`` only), ``safety``
    or ``incremental`` (the changes since the previous backup of the source,
    :mod:`~migration_guard.backup.incremental`); every type goes through the same
    steps afterwards.
    ``server_checksums`` (default: the ``server_checksums`` setting) also records
    the database's own per-table checksum beside the stream's row digests.
    ``on_event`` receives a ``backup.success``/``backup.failure`` event, and the
    events of the verification and pruning the settings ask for afterwards.
    With ``offsite`` locations configured the archive is uploaded to each while it
    is written, and the copies are published once the local backup is complete
    (:mod:`~migration_guard.backup.streamed`); a failed copy keeps the local
    backup and raises :class:`~migration_guard.backup.offsite.OffsiteError`
    (for a ``safety`` backup it is reported only).
    """
    copies = None
    if config.offsite:
        from migration_guard.backup.offsite import check_locations
        from migration_guard.backup.streamed import StreamedCopies

        check_locations(config)
        # A safety backup must not block the restore or upgrade that takes it.
        copies = StreamedCopies(config, on_event, required=type != "safety")
    try:
        manifest = run_reported(
            on_event,
            lambda result, error, seconds: backup_event(str(type), result, error, seconds),
            lambda: _create(
                config,
                url=url,
                type=type,
                tables=tables,
                compress=compress,
                level=level,
                encrypt=encrypt,
                backend=backend,
                progress=progress,
                labels=labels,
                server_checksums=server_checksums,
                on_event=on_event,
                tee=copies,
            ),
        )
    except BaseException:
        if copies is not None:
            copies.abort()
        raise
    if copies is not None:
        copies.finish(Catalog.for_config(config), manifest)
    return manifest


def _stats_entry(stats: TableStats) -> TableEntry:
    return TableEntry(
        rows=stats.rows,
        checksum=stats.checksum,
        size=stats.size_bytes,
        ddl_sha256=stats.ddl_sha256,
        content_sha256=stats.content_sha256,
    )


def _create(
    config: Config,
    *,
    url: str | URL | None,
    type: str,
    tables: Sequence[str] | None,
    compress: str | None,
    level: int | None,
    encrypt: bool | None,
    backend: str | None,
    progress: ProgressCallback | None,
    labels: Mapping[str, Any] | None,
    server_checksums: bool | None,
    on_event: EventSink | None,
    tee: ArchiveCopies | None = None,
) -> Manifest:
    from migration_guard.backup import archive
    from migration_guard.backup.keys import KEY_ENV_HINT, load_user_key

    settings = backup_settings(config)
    # An incremental backup of a plain URL needs no SQLAlchemy (see urls.PlainURL).
    target = resolve_plain_url(config, url) if type == INCREMENTAL else resolve_url(config, url)
    if type not in BACKUP_TYPES:
        raise UsageError(f"unknown backup type {type!r}; choose one of {', '.join(USER_TYPES)}")
    compression = compress or settings.compress
    if compression not in archive.COMPRESSIONS:
        raise UsageError(
            f"unknown compression {compression!r}; choose one of {', '.join(archive.COMPRESSIONS)}"
        )
    catalog = Catalog.for_config(config)
    if type == INCREMENTAL:
        job = incremental_job(catalog, target, tables=tables, backend=backend)
    else:
        job = _dump_job(
            sqlalchemy_url(target),
            type,
            tables,
            backend or settings.backend,
            settings.server_checksums if server_checksums is None else server_checksums,
            config,
        )

    key = load_user_key()
    if encrypt is True and key is None:
        raise EncryptionKeyError(
            f"--encrypt needs a key and none is configured; create one with "
            f"`migration-guard keygen` and set {KEY_ENV_HINT}"
        )
    if key is None or encrypt is False:
        _refuse_unencrypted(settings.require_encryption, encrypt, catalog)
    if encrypt is False:
        key = None
    public_only = public_only_note(key)
    level1_impossible = public_only is not None and settings.verify_after_backup == "full"

    dialect = target.get_backend_name()
    catalog.ensure()
    clean_up_after_killed_runs(catalog)

    started = utc_now()
    backup_id = new_backup_id(type, started)

    def describe(result: Any, artifact: Artifact, finished: datetime) -> Manifest:
        artifact.stream_format = result.stream_format
        return Manifest(
            id=backup_id,
            type=type,
            source_url=redact_url(target),
            dialect=dialect,
            started_at=format_time(started),
            finished_at=format_time(finished),
            artifact=artifact,
            backend=job.backend,
            tool_version=__version__,
            created_by=created_by(),
            labels=dict(labels or {}),
            **job.fields(result),
        )

    manifest = publish_archive(
        catalog,
        backup_id,
        dump=job.dump,
        describe=describe,
        writer_options={
            "compression": compression,
            "level": level if level is not None else settings.level,
            "key": key,
            "threads": settings.threads,
        },
        progress=progress,
        # A host with only public keys cannot verify at level 1: it re-reads (level 0).
        quick_verify=settings.verify_after_backup == "quick" or level1_impossible,
        tee=tee,
    )

    if level1_impossible:
        log.warning("backup %s: %s", backup_id, public_only)
        manifest.verification.details.append(f"verify_after_backup = level1: {public_only}")
        catalog.update(manifest)
    elif settings.verify_after_backup == "full" and (tee is None or tee.keep_local):
        # The copies are made afterwards (create): this checks the local archive only.
        verify(config.replace(offsite=()), backup_id, on_event=on_event)
        manifest = catalog.get(backup_id)
    if settings.catalog_table:
        try:
            mirror_to_table(
                sqlalchemy_url(target),
                settings.catalog_table,
                manifest,
                ok=manifest.verification.ok is not False,
            )
        except Exception as exc:  # the files are the catalog; the table is a convenience
            log.warning(
                "could not record backup %s in %s: %s",
                backup_id,
                settings.catalog_table,
                type_name(exc),
            )
    if manifest.verification.ok is False:
        # Recorded in the manifest (and the catalog table); the caller must see it too.
        raise BackupError(
            f"backup {backup_id} was written, but its verification after the backup failed: "
            f"{'; '.join(manifest.verification.details[:3])}. It stays in the catalog, "
            "marked as failed; check the storage and take a new backup"
        )
    if settings.auto_prune:
        try:
            plan = prune(config, on_event=on_event)
            for deleted, reason in plan.delete:
                log.info("auto_prune deleted %s (%s)", deleted, reason)
        except BackupError as exc:
            log.warning("auto_prune skipped: %s", exc)
    return manifest


def _dump_job(
    target: URL,
    type: str,
    tables: Sequence[str] | None,
    backend: str | None,
    server_checksums: bool,
    config: Config,
) -> DumpJob:
    """A full, critical, tables or safety backup: the backend's dump of (some) tables."""
    from migration_guard.backup.backends import default_backend, get_backend

    if type == "tables" and not tables:
        raise UsageError("--type tables needs the tables to back up: --tables T [--tables U]")
    selected: list[str] | None = None
    if type == "critical":
        selected = expand_critical(config, target)
    elif tables:
        selected = check_tables_exist(target, tables)
    backend_name = backend or default_backend(target.get_backend_name())
    dumper = get_backend(backend_name)

    def fields(result: Any) -> dict[str, Any]:
        return {
            "server_version": result.server_version,
            "binlog": dict(result.binlog) if result.binlog else None,
            "tables": {name: _stats_entry(s) for name, s in result.tables.items()},
            "objects": dict(result.objects or {}),
            "extra": dict(result.extra or {}),
        }

    return DumpJob(
        backend=backend_name,
        dump=lambda sink: dumper.dump(
            target,
            sink,  # type: ignore[arg-type]
            tables=selected,
            server_checksums=server_checksums,
        ),
        fields=fields,
    )


def _refuse_unencrypted(required: bool | None, encrypt: bool | None, catalog: Catalog) -> None:
    """Refuse a backup without a key where encryption is required.

    ``require_encryption = true`` always requires it; left unset, it is required
    once the catalog holds an encrypted backup (a key was configured before: a
    cron job that lost its key must not write plaintext), unless the caller
    opts out with ``encrypt=False`` (``--no-encrypt``).
    """
    from migration_guard.backup.keys import KEY_ENV_HINT

    if required is False or (required is None and encrypt is False):
        return
    if required is None and not any(m.encrypted for m in catalog.list()):
        return
    why = (
        "require_encryption = true" if required else f"the backups in {catalog.path} are encrypted"
    )
    opt_out = (
        "set require_encryption = false in [tool.migration_guard.backup]"
        if required
        else "pass --no-encrypt (encrypt=False), or set require_encryption = false in "
        "[tool.migration_guard.backup]"
    )
    raise EncryptionKeyError(
        f"refusing to write an unencrypted backup: {why}, but "
        + ("encryption was turned off" if encrypt is False else "no key is configured")
        + ". "
        f"Set {KEY_ENV_HINT} to the key of the earlier backups; to write unencrypted "
        f"backups on purpose, {opt_out}"
    )


def type_name(exc: BaseException) -> str:
    """An exception's class name only: driver messages may echo credentials."""
    return type(exc).__name__
