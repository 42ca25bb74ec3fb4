"""Offsite copies: every backup also kept in the locations of ``offsite``.

:func:`copy_backup` uploads a finished backup's archive and then its manifest
to each location, so a copy exists (has a manifest) only when its archive is
complete (``backups sync``; a new backup is uploaded while it is written, see
:mod:`~migration_guard.backup.streamed`). An upload that fails leaves the
local backup as it is, hands an ``offsite.failure`` event to the sink and
raises :class:`OffsiteError` (exit 1) naming the location. With
``offsite_lock_days`` every object is uploaded under a retention lock, and
:func:`prune_copies` leaves locked copies alone, saying until when.

:func:`check_copies` compares every copy with the authenticated local manifest
(size and SHA-256 of the whole object, read back); bringing copies back is
:mod:`~migration_guard.backup.fetching`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from migration_guard.backup.catalog import (
    MANIFEST_SUFFIX,
    Catalog,
)
from migration_guard.backup.manifest import Manifest, format_time, utc_now
from migration_guard.backup.storage import Storage, StorageError, open_storage
from migration_guard.backup.streams import file_sha256, stream_sha256
from migration_guard.config import Config
from migration_guard.errors import BackupError, describe
from migration_guard.events import Event

if TYPE_CHECKING:
    from migration_guard.backup.verification import VerifyResult
    from migration_guard.events import EventSink

log = logging.getLogger("migration_guard.backup")


class OffsiteError(BackupError):
    """A backup was written locally but not copied to every offsite location (exit 1)."""


@dataclass
class CopyCheck:
    """The state of one offsite copy of a backup."""

    location: str
    ok: bool
    details: list[str] = field(default_factory=list)


def archive_name(manifest: Manifest) -> str:
    return manifest.artifact.file


def manifest_name(backup_id: str) -> str:
    return f"{backup_id}{MANIFEST_SUFFIX}"


def retain_until(config: Config) -> datetime | None:
    """Until when a copy written now is locked (``offsite_lock_days``), or None."""
    if not config.offsite_lock_days:
        return None
    return utc_now() + timedelta(days=config.offsite_lock_days)


def check_locations(config: Config) -> None:
    """Open every offsite location before a backup starts (no network yet).

    An unknown scheme or a missing boto3 is the user's to fix (exit 2), and is
    better said before the dump than after it.
    """
    for location in config.offsite:
        open_storage(location)


def copy_backup(
    config: Config,
    catalog: Catalog,
    manifest: Manifest,
    on_event: EventSink | None = None,
    *,
    required: bool = True,
) -> list[str]:
    """Copy ``manifest``'s backup to every offsite location; the locations copied to.

    Every location is tried; afterwards one :class:`OffsiteError` names those
    that failed. The local backup is never touched. With ``required=False``
    (safety backups, taken by a restore or an upgrade that must not be
    blocked by an unreachable bucket) a failure is reported and logged only.
    """
    copied: list[str] = []
    failures: list[str] = []
    retain = retain_until(config)
    for location in config.offsite:
        try:
            storage = open_storage(location)
            if retain is not None:
                storage.check_lock()
            upload_copy(storage, catalog, manifest, retain)
        except (BackupError, OSError) as exc:  # OSError: the local file went away meanwhile
            failures.append(copy_failure(location, exc))
            continue
        copied.append(location)
    conclude(catalog, manifest, failures, on_event, required=required)
    return copied


def copy_failure(location: str, exc: BackupError | OSError) -> str:
    """How a failed copy to ``location`` is reported (an OSError: reading the local file)."""
    if isinstance(exc, BackupError):
        return f"{location}: {exc}"
    return f"{location}: cannot read the local backup: {describe(exc)}"


def conclude(
    catalog: Catalog,
    manifest: Manifest,
    failures: list[str],
    on_event: EventSink | None,
    *,
    required: bool,
) -> None:
    """Report the copies of ``manifest``'s backup that failed; raise unless not ``required``."""
    if not failures:
        return
    _report(on_event, manifest, failures)
    if not required:
        log.warning("backup %s not copied offsite: %s", manifest.id, "; ".join(failures))
        return
    raise OffsiteError(
        f"backup {manifest.id} was written to {catalog.path} but could not be copied "
        f"offsite: {'; '.join(failures)}. The local backup is kept; check the location "
        "and its AWS configuration, then run `migration-guard backups sync`"
    )


def upload_copy(
    storage: Storage, catalog: Catalog, manifest: Manifest, retain: datetime | None
) -> None:
    """Upload ``manifest``'s archive, then its manifest, to ``storage`` (whose lock
    support the caller checked once, when ``retain`` is set)."""
    archive = catalog.archive_path(manifest.id)
    storage.put(
        archive_name(manifest), archive, sha256=manifest.artifact.sha256, retain_until=retain
    )
    put_manifest(storage, catalog, manifest, retain)


def put_manifest(
    storage: Storage, catalog: Catalog, manifest: Manifest, retain: datetime | None
) -> None:
    """Upload the manifest, last: a copy exists only once its archive is complete."""
    manifest_path = catalog.manifest_path(manifest.id)
    storage.put(
        manifest_name(manifest.id),
        manifest_path,
        sha256=file_sha256(manifest_path),
        retain_until=retain,
    )


def _report(on_event: EventSink | None, manifest: Manifest, failures: list[str]) -> None:
    if on_event is None:
        return
    event = Event(
        "offsite",
        "failure",
        f"backup {manifest.id} could not be copied to {len(failures)} offsite location(s)",
        details=failures,
        backup_id=manifest.id,
        data={"locations": [f.split(": ", 1)[0] for f in failures]},
    )
    try:
        on_event(event)
    except Exception as exc:  # reporting never changes the outcome
        log.warning("could not report an offsite failure: %s", exc)


def backup_locations(
    config: Config, catalog: Catalog, manifests: list[Manifest]
) -> tuple[dict[str, list[str]], list[str]]:
    """Where each backup is: the local directory, then every location holding a copy.

    A copy counts when both its archive and its manifest are listed (use
    ``backups verify`` to read it back). Returns the locations by backup id,
    and the locations that could not be listed, with the reason.
    """
    found = {
        m.id: [str(catalog.path)] if catalog.archive_path(m.id).exists() else [] for m in manifests
    }
    problems: list[str] = []
    for location in config.offsite:
        try:
            names = set(open_storage(location).list())
        except BackupError as exc:
            problems.append(f"{location}: {exc}")
            continue
        for manifest in manifests:
            if {archive_name(manifest), manifest_name(manifest.id)} <= names:
                found[manifest.id].append(location)
    return found, problems


def prune_copies(config: Config, backup_ids: list[str], *, dry_run: bool = False) -> list[str]:
    """Delete the offsite copies of backups retention deleted locally; what happened, per copy.

    The manifest goes first, as locally. A copy still under its retention lock
    (``offsite_lock_days``) is left alone, and said so with the date it can go:
    no delete is even tried (on a versioned bucket it would only hide the copy
    behind a delete marker). A copy the storage refuses to delete (no
    ``s3:DeleteObject`` permission, an unreachable endpoint) is kept and said
    so; nothing else depends on it being gone. ``dry_run`` deletes nothing and
    says what would happen.
    """
    notes: list[str] = []
    for location in config.offsite:
        try:
            storage = open_storage(location)
            present = set(storage.list())
        except BackupError as exc:
            notes.append(f"copies in {location} kept: {exc}")
            continue
        for backup_id in backup_ids:
            first = manifest_name(backup_id)
            rest = sorted(n for n in present if n.startswith(f"{backup_id}.") and n != first)
            names = [n for n in (first, *rest) if n in present]
            if not names:
                continue
            notes.append(_prune_copy(storage, location, backup_id, names, dry_run))
    return notes


def _prune_copy(
    storage: Storage, location: str, backup_id: str, names: list[str], dry_run: bool
) -> str:
    try:
        now = utc_now()
        locks = [info.retain_until for info in map(storage.head, names) if info is not None]
        held = [until for until in locks if until is not None and until > now]
        if held:
            return (
                f"kept the copy of {backup_id} in {location}: locked until "
                f"{format_time(max(held))} (offsite_lock_days)"
            )
        if dry_run:
            return f"would delete the copy of {backup_id} in {location}"
        for name in names:
            storage.delete(name)
    except BackupError as exc:
        return f"kept the copy of {backup_id} in {location}: {exc}"
    return f"deleted the copy of {backup_id} in {location}"


@dataclass
class SyncResult:
    """What :func:`sync` did: the copies made, and the ones that failed (with the reason)."""

    copied: list[tuple[str, str]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "copied": [{"id": i, "location": loc} for i, loc in self.copied],
            "failures": list(self.failures),
        }


def sync(config: Config, catalog: Catalog, on_event: EventSink | None = None) -> SyncResult:
    """Copy every local backup that a location lacks (archive or manifest) to that location.

    Retries the copies a failed upload left missing. Each location is listed
    once; a failure is reported as an ``offsite.failure`` event and in the result.
    """
    result = SyncResult()
    manifests = [m for m in catalog.list() if catalog.archive_path(m.id).exists()]
    retain = retain_until(config)
    for location in config.offsite:
        try:
            storage = open_storage(location)
            names = set(storage.list())
        except BackupError as exc:
            result.failures.append(f"{location}: {exc}")
            continue
        lock_checked = retain is None
        for manifest in reversed(manifests):  # oldest first
            if {archive_name(manifest), manifest_name(manifest.id)} <= names:
                continue
            try:
                if not lock_checked:  # once per location, before its first upload
                    storage.check_lock()
                    lock_checked = True
                upload_copy(storage, catalog, manifest, retain)
            except (BackupError, OSError) as exc:
                failure = f"{location}: {exc if isinstance(exc, BackupError) else describe(exc)}"
                result.failures.append(failure)
                _report(on_event, manifest, [failure])
                continue
            result.copied.append((manifest.id, location))
    return result


def check_copy(storage: Storage, manifest: Manifest) -> CopyCheck:
    """Read the copy in ``storage`` back whole: size and SHA-256 against ``manifest``."""
    name = archive_name(manifest)
    where = storage.describe(name)
    try:
        info = storage.head(name)
        if info is None:
            return CopyCheck(storage.url, False, [f"{where} is missing"])
        if storage.head(manifest_name(manifest.id)) is None:
            return CopyCheck(storage.url, False, [f"the manifest of {where} is missing"])
        if info.size != manifest.artifact.size:
            return CopyCheck(
                storage.url,
                False,
                [f"{where} has {info.size} bytes, the manifest says {manifest.artifact.size}"],
            )
        with storage.get(name) as stream:
            sha256, size = stream_sha256(stream)
    except StorageError as exc:
        return CopyCheck(storage.url, False, [str(exc)])
    if size != manifest.artifact.size or sha256 != manifest.artifact.sha256:
        return CopyCheck(
            storage.url, False, [f"{where}: SHA-256 differs from the manifest (tampered?)"]
        )
    return CopyCheck(storage.url, True, [f"{where}: {size} bytes, SHA-256 matches"])


def check_copies(config: Config, manifest: Manifest) -> list[CopyCheck]:
    """The state of every configured offsite copy of ``manifest``'s backup."""
    checks: list[CopyCheck] = []
    for location in config.offsite:
        try:
            storage = open_storage(location)
        except BackupError as exc:
            checks.append(CopyCheck(location, False, [f"{location}: {exc}"]))
            continue
        checks.append(check_copy(storage, manifest))
    return checks


def add_copy_checks(config: Config, manifest: Manifest, result: VerifyResult) -> None:
    """Add the state of every offsite copy to a verification; a bad copy fails it."""
    for check in check_copies(config, manifest):
        result.details.extend(check.details)
        if not check.ok:
            result.ok = False
            result.reason = result.reason or "offsite"
