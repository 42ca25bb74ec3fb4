"""Incremental backups: the changes since the previous backup of the same source.

A chain is one full backup (its root, whose manifest records the binlog
coordinates of its snapshot) and the incrementals after it, each naming its
``parent`` and holding the events from the parent's end coordinates to its own
(``binlog.start`` and ``binlog.file``/``position``). Taking one needs a backend
with ``dump_since`` (``binlog`` for MySQL/MariaDB); restoring one restores the
root and replays each incremental up to the one asked for, in order.

This module is also where :func:`create` and :func:`restore` of the engine
dispatch on the backup type, so the full-backup paths stay untouched.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, BinaryIO

from migration_guard import __version__
from migration_guard.backup import creation, restoration
from migration_guard.backup.catalog import Catalog
from migration_guard.backup.events import backup_event, run_reported
from migration_guard.backup.load import load_checked
from migration_guard.backup.manifest import (
    Artifact,
    Manifest,
    created_by,
    format_time,
    new_backup_id,
    redact_url,
    utc_now,
)
from migration_guard.backup.pins import pinning
from migration_guard.backup.publish import publish_archive
from migration_guard.backup.scratch import clean_up_after_killed_runs
from migration_guard.backup.settings import backup_settings
from migration_guard.backup.streams import (
    HashingSource,
    ProgressCallback,
)
from migration_guard.backup.trust import check_before_restore, checked_archive, recheck_digest
from migration_guard.backup.verification import archive_key
from migration_guard.config import Config
from migration_guard.errors import (
    BackupError,
    EncryptionKeyError,
    MigrationGuardError,
    RestoreFailed,
    UsageError,
)
from migration_guard.urls import resolve_url

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

    from migration_guard.backup.backends.base import RestoreOptions
    from migration_guard.backup.keys import UserKey
    from migration_guard.events import EventSink

INCREMENTAL = "incremental"
#: The backend that takes the incrementals of each dialect family.
INCREMENTAL_BACKEND = "binlog"
CHAIN_TYPES = ("full", INCREMENTAL)


def create(config: Config, *, type: str = "full", **options: Any) -> Manifest:
    """:func:`migration_guard.backup.creation.create`, and ``type="incremental"``."""
    if type != INCREMENTAL:
        return creation.create(config, type=type, **options)
    if options.get("tables"):
        raise UsageError("--type incremental backs up whole databases; drop --tables")
    on_event = options.get("on_event")
    return run_reported(
        on_event,
        lambda result, error, seconds: backup_event(INCREMENTAL, result, error, seconds),
        lambda: create_incremental(
            config,
            url=options.get("url"),
            encrypt=options.get("encrypt"),
            compress=options.get("compress"),
            level=options.get("level"),
            progress=options.get("progress"),
            labels=options.get("labels"),
        ),
    )


def chain_end(catalog: Catalog, source: str) -> Manifest | None:
    """The newest full or incremental backup of ``source`` that records binlog coordinates."""
    candidates = [
        m
        for m in catalog.list()
        if m.source_url == source and m.type in CHAIN_TYPES and m.binlog and m.binlog.get("file")
    ]
    return max(candidates, key=lambda m: (m.finished_at, m.id), default=None)


def create_incremental(
    config: Config,
    *,
    url: str | URL | None,
    encrypt: bool | None = None,
    compress: str | None = None,
    level: int | None = None,
    progress: ProgressCallback | None = None,
    labels: Mapping[str, Any] | None = None,
) -> Manifest:
    """Archive the changes since the previous backup of the same source.

    :class:`UsageError` (exit 2) when the dialect has no incremental backend,
    the server keeps no binary log, or no full backup of the source exists yet;
    :class:`BackupError` (exit 1) naming the gap when the changes since the
    parent can no longer be read (purged binlogs).
    """
    from migration_guard.backup import archive
    from migration_guard.backup.backends import get_backend
    from migration_guard.backup.keys import KEY_ENV_HINT, load_user_key

    settings = backup_settings(config)
    target = resolve_url(config, url)
    dialect = target.get_backend_name()
    backend = get_backend(INCREMENTAL_BACKEND)
    dump_since = getattr(backend, "dump_since", None)
    if dialect.split("+", 1)[0] not in backend.dialects or dump_since is None:
        raise UsageError(
            f"incremental backups of {dialect} databases are not supported; they read the "
            "binary log of MySQL/MariaDB. Take full backups (--type full) instead"
        )
    compression = compress or settings.compress
    if compression not in archive.COMPRESSIONS:
        raise UsageError(f"unknown compression {compression!r}")
    check_source = getattr(backend, "check_source", None)
    if check_source is not None:
        check_source(target)  # no binary log: the server's problem comes first
    catalog = Catalog.for_config(config)
    source = redact_url(target)
    parent = chain_end(catalog, source)
    key = load_user_key()
    if encrypt is True and key is None:
        raise EncryptionKeyError(
            f"--encrypt needs a key and none is configured; set {KEY_ENV_HINT}"
        )
    if encrypt is False:
        key = None
    if parent is not None and parent.encrypted and key is None:
        raise EncryptionKeyError(
            f"the chain's backups are encrypted, but no key is configured; set {KEY_ENV_HINT}"
        )
    catalog.ensure()
    clean_up_after_killed_runs(catalog)
    started = utc_now()
    backup_id = new_backup_id(INCREMENTAL, started)

    def describe(result: Any, artifact: Artifact, finished: datetime) -> Manifest:
        assert parent is not None and parent.binlog is not None
        artifact.stream_format = result.stream_format
        return Manifest(
            id=backup_id,
            type=INCREMENTAL,
            source_url=source,
            dialect=dialect,
            started_at=format_time(started),
            finished_at=format_time(finished),
            artifact=artifact,
            backend=INCREMENTAL_BACKEND,
            tool_version=__version__,
            created_by=created_by(),
            parent=parent.id,
            server_version=parent.server_version,
            binlog=dict(result.binlog or {}),
            labels=dict(labels or {}),
            extra={"database_options": parent.extra.get("database_options", {})},
        )

    manifest = publish_archive(
        catalog,
        backup_id,
        dump=lambda sink: _dump(dump_since, target, sink, parent),
        describe=describe,
        writer_options={
            "compression": compression,
            "level": level if level is not None else settings.level,
            "key": key,
            "threads": settings.threads,
        },
        progress=progress,
        quick_verify=settings.verify_after_backup == "quick",
    )
    return manifest


def _dump(dump_since: Any, target: URL, sink: Any, parent: Manifest | None) -> Any:
    """The backend's copy of the changes after ``parent``; exit 2 when there is none."""
    if parent is None:
        raise UsageError(
            f"there is no full backup of {redact_url(target)} with binlog coordinates yet: "
            "take a full backup first (migration-guard backup --type full); incremental "
            "backups hold the changes since it"
        )
    assert parent.binlog is not None
    start = {
        "file": str(parent.binlog["file"]),
        "position": str(parent.binlog["position"]),
        "gtid": str(parent.binlog.get("gtid", "")),
    }
    return dump_since(target, sink, start, None)


def chain_of(catalog: Catalog, manifest: Manifest) -> list[Manifest]:
    """The backups from the root full backup to ``manifest``, oldest first, checked whole.

    Each incremental must start exactly where its parent ended.
    """
    chain = [manifest]
    while chain[-1].type == INCREMENTAL:
        current = chain[-1]
        if not current.parent:
            raise BackupError(f"incremental backup {current.id} names no parent")
        try:
            parent = catalog.get(current.parent)
        except MigrationGuardError:
            raise BackupError(
                f"the chain of {manifest.id} is broken: its backup {current.parent} is missing"
            ) from None
        start = (current.binlog or {}).get("start") or {}
        ends = parent.binlog or {}
        if (str(start.get("file")), str(start.get("position"))) != (
            str(ends.get("file")),
            str(ends.get("position")),
        ):
            raise BackupError(
                f"the chain of {manifest.id} is broken: {current.id} starts at "
                f"{start.get('file')}:{start.get('position')} but its parent {parent.id} ends "
                f"at {ends.get('file')}:{ends.get('position')}"
            )
        chain.append(parent)
        if len(chain) > 100_000:
            raise BackupError(f"the chain of {manifest.id} loops")
    return list(reversed(chain))


@pinning("restore")
def restore(
    config: Config,
    backup_id: str,
    *,
    url: str | URL | None,
    tables: Sequence[str] | None = None,
    yes: bool = False,
    dry_run: bool = False,
    confirm: Callable[[str], bool] | None = None,
    safety_backup: bool = True,
    progress: ProgressCallback | None = None,
    on_event: EventSink | None = None,
    allow_unencrypted: bool = False,
    until: str | None = None,
    options: RestoreOptions | None = None,
) -> restoration.RestoreResult:
    """:func:`migration_guard.backup.restoration.restore`, and incremental backups.

    An incremental is restored into a new or empty database: the root full
    backup first, then every incremental of the chain up to ``backup_id``. All
    archives of the chain are checked whole before the first statement runs.
    ``until`` (UTC, ISO 8601) replays only the changes logged before that moment.
    """
    catalog = Catalog.for_config(config)
    manifest = catalog.get(backup_id)
    stop = parse_until(until) if until is not None else None
    if stop is not None and manifest.type != INCREMENTAL:
        raise UsageError(
            f"--until replays the binary log of an incremental backup's chain, and {manifest.id} "
            "is a full backup: name the newest incremental backup taken after that moment"
        )
    if manifest.type != INCREMENTAL:
        return restoration.restore(
            config,
            backup_id,
            url=url,
            tables=tables,
            yes=yes,
            dry_run=dry_run,
            confirm=confirm,
            safety_backup=safety_backup,
            progress=progress,
            on_event=on_event,
            allow_unencrypted=allow_unencrypted,
            options=options,
        )
    if tables:
        raise UsageError("an incremental backup restores whole databases; drop --tables")
    if url is None:
        raise UsageError("restore needs the target: pass --url TARGET_URL")
    target = resolve_url(config, url)
    chain = chain_of(catalog, manifest)
    incrementals = chain[1:]
    if stop is not None and stop < chain[0].finished:
        raise UsageError(
            f"--until {format_time(stop)} is before the full backup {chain[0].id} of this chain "
            f"finished ({chain[0].finished_at}); restore a backup of an older chain instead"
        )
    keys = {}
    for member in incrementals:
        keys[member.id] = archive_key(member, catalog.archive_path(member.id))
        check_before_restore(catalog, member, keys[member.id], allow_unencrypted=allow_unencrypted)
    from migration_guard.backup.database import dialect_ops

    ops = dialect_ops(target)
    if ops.database_exists(target) and not ops.is_empty(target):
        raise UsageError(
            f"restoring incremental backup {manifest.id} needs a new or empty database, and "
            f"{ops.database_name(target)!r} holds tables; restore into another database"
        )
    with contextlib.ExitStack() as stack:
        # Every archive of the chain is read whole and checked before anything is written.
        handles = {
            member.id: stack.enter_context(checked_archive(catalog, member, keys[member.id]))
            for member in incrementals
        }
        result = restoration.restore(
            config,
            chain[0].id,
            url=target,
            dry_run=dry_run,
            progress=progress,
            on_event=on_event,
            allow_unencrypted=allow_unencrypted,
        )
        if dry_run or not result.ok:
            result.notes.append(
                f"would replay {len(incrementals)} incremental backup(s) up to {manifest.id}"
                if dry_run
                else "the incremental backups were not replayed"
            )
            return result
        for member in incrementals:
            try:
                _replay(member, handles[member.id], keys[member.id], target, stop, progress)
            except MigrationGuardError as exc:
                raise RestoreFailed(
                    f"replaying incremental backup {member.id} into {result.database!r} failed: "
                    f"{exc.message}. The database holds the full backup {chain[0].id} and part "
                    "of the changes after it: drop it and restore again",
                    target_state="partial",
                    safety_backup_id=None,
                    exit_code=exc.exit_code,
                ) from exc
            result.notes.append(f"replayed incremental backup {member.id}")
    if stop is not None:
        result.notes.append(f"changes logged from {format_time(stop)} on were not replayed")
    result.backup_id = manifest.id
    return result


def parse_until(text: str) -> datetime:
    """``--until`` as an aware UTC time; exit 2 naming the expected form otherwise."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise UsageError(
            f"--until {text!r} is not a UTC time in ISO 8601; write it like "
            "2026-12-06T20:00:00Z (the Z, or +00:00, is required)"
        )
    return moment.astimezone(timezone.utc)


def _replay(
    member: Manifest,
    handle: BinaryIO,
    key: UserKey | None,
    target: URL,
    stop: datetime | None,
    progress: ProgressCallback | None,
) -> None:
    """Replay one checked incremental archive, up to ``stop`` when given."""
    if stop is None:
        load_checked(member, handle, key, target, None, progress)
        return
    from migration_guard.backup import archive
    from migration_guard.backup.backends import get_backend

    replayer = get_backend(member.backend)
    source = HashingSource(handle, progress, os.fstat(handle.fileno()).st_size)
    reader = archive.open_reader(source, key=key)
    replayer.restore(  # type: ignore[call-arg]
        target,
        reader,  # type: ignore[arg-type]
        stream_format=member.artifact.stream_format,
        stop_before=stop,
    )
    recheck_digest(member, source)
