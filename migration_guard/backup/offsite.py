"""Offsite copies: every backup also kept in the locations of ``offsite``.

After a backup is written locally, :func:`copy_backup` uploads its archive and
then its manifest to each location, so a copy exists (has a manifest) only when
its archive is complete. An upload that fails leaves the local backup as it
is, hands an ``offsite.failure`` event to the sink and raises
:class:`OffsiteError` (exit 1) naming the location.

:func:`check_copies` compares every copy with the authenticated local manifest
(size and SHA-256 of the whole object, read back); :func:`fetch_missing`
brings back a backup whose local copy is gone from the first location whose
copy verifies, before a restore or a verification reads it.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from migration_guard.backup.catalog import MANIFEST_SUFFIX, TMP_SUFFIX, Catalog, fsync_directory
from migration_guard.backup.manifest import Manifest, ManifestError
from migration_guard.backup.storage import Storage, StorageError, open_storage
from migration_guard.backup.streams import READ_SIZE
from migration_guard.config import Config
from migration_guard.errors import BackupError, describe
from migration_guard.events import Event

if TYPE_CHECKING:
    from pathlib import Path

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


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(READ_SIZE):
            digest.update(chunk)
    return digest.hexdigest()


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
    for location in config.offsite:
        try:
            storage = open_storage(location)
            _upload(storage, catalog, manifest)
        except BackupError as exc:
            failures.append(f"{location}: {exc}")
            continue
        except OSError as exc:  # the local file went away meanwhile
            failures.append(f"{location}: cannot read the local backup: {describe(exc)}")
            continue
        copied.append(location)
    if failures:
        _report(on_event, manifest, failures)
        if not required:
            log.warning("backup %s not copied offsite: %s", manifest.id, "; ".join(failures))
            return copied
        raise OffsiteError(
            f"backup {manifest.id} was written to {catalog.path} but could not be copied "
            f"offsite: {'; '.join(failures)}. The local backup is kept; check the location "
            "and its AWS configuration, then run `migration-guard backups sync`"
        )
    return copied


def _upload(storage: Storage, catalog: Catalog, manifest: Manifest) -> None:
    archive = catalog.archive_path(manifest.id)
    storage.put(archive_name(manifest), archive, sha256=manifest.artifact.sha256)
    # The manifest last: a copy exists only once its archive is complete.
    manifest_path = catalog.manifest_path(manifest.id)
    storage.put(manifest_name(manifest.id), manifest_path, sha256=_file_sha256(manifest_path))


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


def prune_copies(config: Config, backup_ids: list[str]) -> list[str]:
    """Delete the offsite copies of backups retention deleted locally; what happened, per copy.

    The manifest goes first, as locally. A copy the storage refuses to delete
    (no ``s3:DeleteObject`` permission, an unreachable endpoint) is kept and
    said so; nothing else depends on it being gone.
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
            names = [first, *rest]
            if not present.intersection(names):
                continue
            try:
                for name in names:
                    storage.delete(name)
            except BackupError as exc:
                notes.append(f"kept the copy of {backup_id} in {location}: {exc}")
                continue
            notes.append(f"deleted the copy of {backup_id} in {location}")
    return notes


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
    for location in config.offsite:
        try:
            storage = open_storage(location)
            names = set(storage.list())
        except BackupError as exc:
            result.failures.append(f"{location}: {exc}")
            continue
        for manifest in reversed(manifests):  # oldest first
            if {archive_name(manifest), manifest_name(manifest.id)} <= names:
                continue
            try:
                _upload(storage, catalog, manifest)
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
        digest = hashlib.sha256()
        size = 0
        with storage.get(name) as stream:
            while chunk := stream.read(READ_SIZE):
                digest.update(chunk)
                size += len(chunk)
    except StorageError as exc:
        return CopyCheck(storage.url, False, [str(exc)])
    if size != manifest.artifact.size or digest.hexdigest() != manifest.artifact.sha256:
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


def _remote_manifest(storage: Storage, wanted: str) -> Manifest | None:
    names = [n for n in storage.list() if n.endswith(MANIFEST_SUFFIX) and n.startswith(wanted)]
    if len(names) != 1:
        return None
    with storage.get(names[0]) as stream:
        data = stream.read()
    manifest = Manifest.from_json(data, source=storage.describe(names[0]))
    if manifest_name(manifest.id) != names[0]:
        raise ManifestError(f"{storage.describe(names[0])} describes backup {manifest.id!r}")
    return manifest


def _download(storage: Storage, catalog: Catalog, manifest: Manifest, *, publish: bool) -> None:
    directory = catalog.ensure()
    final = catalog.archive_path(manifest.id)
    temporary = final.with_name(f"{final.name}.{os.getpid()}{TMP_SUFFIX}")
    digest = hashlib.sha256()
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as handle, storage.get(archive_name(manifest)) as stream:
            while chunk := stream.read(READ_SIZE):
                digest.update(chunk)
                handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        if digest.hexdigest() != manifest.artifact.sha256:
            raise StorageError(
                f"{storage.describe(archive_name(manifest))}: SHA-256 differs from its manifest"
            )
        os.replace(temporary, final)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    fsync_directory(directory)
    if publish:
        catalog.write_manifest(manifest)
    log.info("backup %s fetched from %s", manifest.id, storage.url)
