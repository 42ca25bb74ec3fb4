"""``keygen``, ``backup``, ``backups list/show/verify/prune``, ``restore`` and ``decrypt``:
one plain function per command over :mod:`migration_guard.backup`.

``backup`` is :func:`create_backup` (``migration_guard.commands.backup`` names
this module); ``backups list/show/verify/prune`` are :func:`list_backups`,
:func:`show_backup`, :func:`verify_backup` and :func:`prune_backups`.

The CLI in :mod:`migration_guard.cli.backup` and :mod:`migration_guard.cli.restore`
only parses options and prints what these return, so a Python caller gets exactly
what the command does::

    from migration_guard.config import load_config
    from migration_guard.commands import create_backup, verify_backup

    config = load_config()
    manifest = create_backup(config, url="sqlite:///app.db")
    assert verify_backup(config, manifest.id).ok

The engine is imported inside each function: ``migration-guard backup --help``
must not pay for archives, compressors and drivers. The outcomes of ``backup``,
``backups verify`` and ``backups prune`` go to the event log and the configured
notifications; an engine operation that takes an ``on_event`` sink gets the one
built here (see :func:`_events`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from migration_guard.config import Config

if TYPE_CHECKING:
    import os

    from sqlalchemy.engine import URL

    from migration_guard.backup.engine import (
        NewIdentity,
        ProgressCallback,
        RestoreResult,
        VerifyResult,
    )
    from migration_guard.backup.manifest import Manifest, TableEntry
    from migration_guard.backup.offsite import SyncResult
    from migration_guard.backup.retention import PrunePlan
    from migration_guard.events import EventSink

__all__ = [
    "Manifest",
    "ProgressCallback",
    "PrunePlan",
    "RestoreResult",
    "TableEntry",
    "VerifyResult",
    "backup_location",
    "create_backup",
    "decrypt",
    "keygen",
    "keygen_x25519",
    "list_backups",
    "prune_backups",
    "restore",
    "show_backup",
    "verify_backup",
]


# -- events -----------------------------------------------------------------------------------
def _event_sink(config: Config) -> EventSink:
    """Record an engine's event in the event log and send the notifications configured."""
    from migration_guard.monitoring.emit import sink

    return sink(config)


# -- commands ---------------------------------------------------------------------------------
def keygen() -> str:
    """A new random 256-bit key in its text form (``mgk1:...``), to store in a secret manager."""
    from migration_guard.backup.engine import keygen as generate

    return generate()


def keygen_x25519(output: str | os.PathLike[str] | None = None) -> NewIdentity:
    """A new X25519 key pair in age's format; the identity goes to ``output`` (a new 0600 file).

    The public key (``recipient``, ``age1...``) is what backup hosts get; the
    identity file is what restores need. Without ``output`` the identity's text
    is in ``text``: print it once, to a place only you can read.
    """
    from migration_guard.backup.engine import keygen_x25519 as generate

    return generate(output)


def create_backup(
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
) -> Manifest:
    """Back up a database into the backup directory and return the new backup's manifest.

    ``type`` is ``full``, ``critical`` (the protected tables), ``tables``
    (``tables`` only) or ``incremental`` (the changes since the previous backup of
    the source: MySQL/MariaDB binary log); ``encrypt=None`` encrypts when a key is
    configured. See :func:`migration_guard.backup.engine.create`.
    """
    # creation, not engine: a backup (an hourly incremental above all) does not
    # pay for importing the restore side.
    from migration_guard.backup.creation import create

    return create(
        config,
        url=url,
        type=type,
        tables=tables,
        compress=compress,
        level=level,
        encrypt=encrypt,
        backend=backend,
        progress=progress,
        on_event=_event_sink(config),
    )


def backup_location(config: Config) -> Path:
    """The directory the backups of ``config`` are kept in."""
    from migration_guard.backup.catalog import Catalog

    return Catalog.for_config(config).path


def list_backups(config: Config) -> list[Manifest]:
    """Every complete backup, newest first."""
    from migration_guard.backup.engine import list_backups as listing

    return listing(config)


def backup_chains(manifests: list[Manifest]) -> dict[str, dict[str, Any]]:
    """Per backup id: its ``parent``, ``chain_root``, ``binlog_start`` and ``binlog_end``
    (incremental backups and the full backups they build on)."""
    from migration_guard.backup.engine import chain_index

    return chain_index(manifests)


def backup_locations(
    config: Config, manifests: list[Manifest]
) -> tuple[dict[str, list[str]], list[str]]:
    """Where each of ``manifests`` is (the backup directory, then each offsite location
    holding a copy), and the offsite locations that could not be listed, with the reason."""
    from migration_guard.backup.catalog import Catalog
    from migration_guard.backup.offsite import backup_locations as where

    return where(config, Catalog.for_config(config), manifests)


def sync_backups(config: Config) -> SyncResult:
    """Copy every local backup that an offsite location lacks to that location."""
    from migration_guard.backup.catalog import Catalog
    from migration_guard.backup.offsite import sync
    from migration_guard.config import OFFSITE_ENV
    from migration_guard.errors import UsageError

    if not config.offsite:
        raise UsageError(
            "no offsite location is configured; set offsite in [tool.migration_guard] "
            f"or {OFFSITE_ENV}"
        )

    return sync(config, Catalog.for_config(config), _event_sink(config))


def show_backup(config: Config, backup_id: str) -> Manifest:
    """The manifest of one backup; an unambiguous id prefix is enough."""
    from migration_guard.backup.engine import show

    return show(config, backup_id)


def verify_backup(
    config: Config,
    backup_id: str,
    *,
    restore_test: bool = False,
    scratch_url: str | None = None,
    progress: ProgressCallback | None = None,
) -> VerifyResult:
    """Decrypt, decompress and hash a backup; with ``restore_test`` also restore it into
    a scratch database and compare. The outcome is recorded in the backup's manifest."""
    from migration_guard.backup.engine import verify

    return verify(
        config,
        backup_id,
        restore_test=restore_test,
        scratch_url=scratch_url,
        progress=progress,
        on_event=_event_sink(config),
    )


def prune_backups(config: Config, *, dry_run: bool = False) -> PrunePlan:
    """Delete the backups the retention policy no longer keeps; ``dry_run`` only decides."""
    from migration_guard.backup.engine import prune

    return prune(config, dry_run=dry_run, on_event=_event_sink(config))


def restore(
    config: Config,
    backup_id: str,
    *,
    url: str | URL,
    tables: Sequence[str] | None = None,
    yes: bool = False,
    dry_run: bool = False,
    confirm: Callable[[str], bool] | None = None,
    progress: ProgressCallback | None = None,
    allow_unencrypted: bool = False,
    until: str | None = None,
    until_position: str | None = None,
    until_gtid: str | None = None,
    keep_owners: bool = False,
    grants: bool = True,
) -> RestoreResult:
    """Restore ``backup_id`` into the database at ``url`` and compare every table.

    A non-empty target is overwritten only with ``yes`` or when
    ``confirm(database_name)`` returns True, and only after a safety backup.
    An unencrypted backup is refused while a key is configured, unless
    ``allow_unencrypted``. ``until`` (UTC, ISO 8601), ``until_position``
    (``FILE:POS``) or ``until_gtid`` (``DOMAIN-SERVER-SEQ``) replays an incremental
    backup's chain only up to that point (point-in-time restore). ``keep_owners``
    gives every object its source owner, ``grants`` restores privileges
    (PostgreSQL backups).
    """
    from migration_guard.backup.backends.base import RestoreOptions
    from migration_guard.backup.engine import restore as run

    return run(
        config,
        backup_id,
        url=url,
        tables=tables,
        yes=yes,
        dry_run=dry_run,
        confirm=confirm,
        progress=progress,
        on_event=_event_sink(config),
        allow_unencrypted=allow_unencrypted,
        until=until,
        until_position=until_position,
        until_gtid=until_gtid,
        options=RestoreOptions(owners=keep_owners, grants=grants),
    )


def decrypt(
    config: Config,
    file: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    force: bool = False,
) -> int:
    """Write the plain stream of an archive (a ``.mgb`` path or a backup id) to ``out``
    (``-`` for standard output); returns the number of bytes written."""
    from migration_guard.backup.engine import decrypt as run

    return run(config, file, out, force=force)
