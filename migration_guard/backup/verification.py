"""Verify backups: level 1 reads the archive back, level 2 restores it into a scratch database.

The outcome is recorded in the backup's manifest (``verification``).
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from migration_guard.backup.catalog import Catalog
from migration_guard.backup.compare import (
    compare_content,
    compare_objects,
    compare_stats,
    measure_checksums,
    recorded_digest,
)
from migration_guard.backup.database import (
    connection,
    create_database,
    database_options,
    dialect_ops,
    drop_database,
    scratch_target,
)
from migration_guard.backup.events import run_reported, verify_event
from migration_guard.backup.load import stream_restore
from migration_guard.backup.manifest import Manifest, Verification, format_time, utc_now
from migration_guard.backup.pins import pinning
from migration_guard.backup.scratch import scratch_directory
from migration_guard.backup.streams import READ_SIZE, HashingSource, ProgressCallback, file_sha256
from migration_guard.backup.trust import check_header, check_manifest_mac
from migration_guard.config import Config
from migration_guard.errors import (
    ArchiveError,
    BackupError,
    EncryptionKeyError,
    MigrationGuardError,
)

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

    from migration_guard.backup.keys import UserKey
    from migration_guard.events import EventSink

log = logging.getLogger("migration_guard.backup")
#: How much of the plain stream's head verification keeps (a dump's binlog coordinates).
_HEAD_BYTES = 64 * 1024


@dataclass
class VerifyResult:
    """Outcome of :func:`verify`. ``reason`` is an :class:`ArchiveError` reason or a check name."""

    backup_id: str
    ok: bool
    level: int
    reason: str | None = None
    details: list[str] = field(default_factory=list)
    restore_test: bool = False
    restore_test_ok: bool | None = None
    verified_at: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.backup_id,
            "ok": self.ok,
            "level": self.level,
            "reason": self.reason,
            "details": self.details,
            "restore_test": self.restore_test,
            "restore_test_ok": self.restore_test_ok,
            "verified_at": self.verified_at,
        }


def fingerprint(manifest: Manifest) -> str | None:
    """The fingerprint of the key ``manifest``'s archive was sealed with (None: not encrypted)."""
    encryption = manifest.artifact.encryption
    return encryption.key_fingerprint if encryption else None


def archive_key(manifest: Manifest, archive_file: Path | None = None) -> UserKey | None:
    """The configured key, when ``manifest``'s archive needs one and it is the right one.

    A passphrase archive's fingerprint is its own (its salt's), so a passphrase is
    tried on the header of ``archive_file`` instead: a wrong one is refused here,
    before anything else happens (such as a restore's safety backup).
    """
    from migration_guard.backup.keys import key_for

    key = key_for(fingerprint(manifest), f"backup {manifest.id}")
    if archive_file is not None:
        check_passphrase(archive_file, key, f"backup {manifest.id}")
    return key


def check_passphrase(archive_file: Path, key: UserKey | None, what: str) -> None:
    """Refuse a wrong passphrase for ``archive_file`` now, with EncryptionKeyError (exit 2).

    A generated key is checked by its fingerprint (:func:`keys.key_for`); a
    passphrase has none of its own, so it is tried on the archive's header.
    """
    from migration_guard.backup import archive

    if key is None or key.kind != "passphrase":
        return
    try:
        with contextlib.suppress(FileNotFoundError), archive_file.open("rb") as handle:
            archive.open_reader(handle, key=key).close()
    except ArchiveError as exc:
        if exc.reason == "wrong-key":
            raise EncryptionKeyError(f"{what}: {exc}") from None
        raise


def public_only_note(key: UserKey | None) -> str | None:
    """Why this host cannot verify at level 1 (None: it can): it holds only public keys."""
    if key is None or key.can_decrypt:
        return None
    return (
        "level 1 not run: this host holds only public keys (X25519 recipients), which "
        "write backups but cannot read them; run `migration-guard backups verify ID` "
        "where the private key (identity) is configured"
    )


def _verify_level0(catalog: Catalog, manifest: Manifest, note: str) -> VerifyResult:
    """Size and SHA-256 of the archive against the manifest: all a public-key host can check.

    Not recorded in the manifest: it is no verification for retention or
    ``verify_within``, and must not replace an earlier level-1 result.
    """
    path = catalog.archive_path(manifest.id)
    result = VerifyResult(manifest.id, ok=False, level=0, verified_at=format_time(utc_now()))
    try:
        size = path.stat().st_size
        sha256 = file_sha256(path)
    except FileNotFoundError:
        result.reason = "missing"
        result.details = [f"the archive {path.name} is missing", note]
        return result
    problems = []
    if size != manifest.artifact.size:
        problems.append(f"size {size} differs from the manifest's {manifest.artifact.size} bytes")
    if sha256 != manifest.artifact.sha256:
        problems.append("SHA-256 of the archive differs from the manifest")
    if problems:
        result.reason = "corrupted"
        result.details = [*problems, note]
        return result
    result.ok = True
    result.details = [f"level 0: archive {size} bytes, SHA-256 matches the manifest", note]
    return result


def quick_verification(path: Path, manifest: Manifest) -> Verification:
    """Re-read the archive just written; a differing SHA-256 discards the backup."""
    ok = file_sha256(path) == manifest.artifact.sha256
    detail = (
        "artifact re-read after writing: SHA-256 matches"
        if ok
        else "artifact re-read after writing: SHA-256 differs from what was written"
    )
    if not ok:
        raise BackupError(
            f"backup {manifest.id}: the file on disk differs from what was written "
            "(storage error?); the backup was discarded"
        )
    return Verification(last_verified_at=format_time(utc_now()), level=0, ok=True, details=[detail])


def _stream_problem(manifest: Manifest, head: bytes, tail: bytes, size: int) -> str | None:
    """A problem with the plain stream's shape, or None."""
    from migration_guard.backup.backends import get_backend

    if size == 0:
        return "the plain stream is empty"
    backend = get_backend(manifest.backend)
    return backend.stream_problem(manifest.artifact.stream_format, head, tail)


def _coordinates_problem(manifest: Manifest, head: bytes, tail: bytes) -> str | None:
    """Binlog coordinates in the stream that differ from the manifest's, or None.

    An encrypted backup's manifest is authenticated as a whole; this also catches
    an edited ``binlog`` in an unencrypted one, where the stream records it.
    """
    from migration_guard.backup.backends import get_backend

    found = get_backend(manifest.backend).stream_coordinates(
        manifest.artifact.stream_format, head, tail
    )
    if not found:
        return None
    recorded = manifest.binlog or {}
    for key in ("file", "position", "gtid"):
        if found.get(key) and str(recorded.get(key, "")) != found[key]:
            return (
                f"the manifest's binlog {key} {recorded.get(key)!r} differs from the archive's "
                f"{found[key]!r}: the manifest was edited, so the chain cannot be trusted"
            )
    return None


def _verify_chain(
    catalog: Catalog, manifest: Manifest, progress: ProgressCallback | None
) -> tuple[bool, list[str]]:
    """An incremental's chain: each backup starts where its parent ended, every archive intact."""
    from migration_guard.backup.chain import chain_of

    try:
        chain = chain_of(catalog, manifest)
    except BackupError as exc:
        return False, [exc.message]
    for member in chain[:-1]:
        key = archive_key(member, catalog.archive_path(member.id))
        ok, _, details = _verify_level1(catalog, member, key, progress)
        if not ok:
            return False, [f"{member.id} (in the chain of {manifest.id}): {d}" for d in details]
    return True, [
        f"chain of {len(chain)} backup(s) from {chain[0].id}: each starts where its parent "
        "ended, every archive intact"
    ]


def _verify_level1(
    catalog: Catalog,
    manifest: Manifest,
    key: UserKey | None,
    progress: ProgressCallback | None,
) -> tuple[bool, str | None, list[str]]:
    from migration_guard.backup import archive
    from migration_guard.backup.backends.base import STREAM_TAIL_BYTES

    path = catalog.archive_path(manifest.id)
    details: list[str] = []
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return False, "missing", [f"the archive {path.name} is missing"]
    if size != manifest.artifact.size:
        details.append(f"size {size} differs from the manifest's {manifest.artifact.size} bytes")
    head = b""
    tail = b""
    plain = 0
    with path.open("rb") as handle:
        source = HashingSource(handle, progress, size)
        try:
            reader = archive.open_reader(source, key=key)
            check_header(manifest, reader.header)
            warning = check_manifest_mac(manifest, reader.header, reader.manifest_key)
            if warning:
                details.append(f"warning: {warning}")
            while chunk := reader.read(READ_SIZE):
                if len(head) < _HEAD_BYTES:
                    head += chunk[: _HEAD_BYTES - len(head)]
                # Only the chunk's own tail is joined: no copy of each whole chunk.
                tail = (tail + chunk[-STREAM_TAIL_BYTES:])[-STREAM_TAIL_BYTES:]
                plain += len(chunk)
            source.drain()
        except ArchiveError as exc:
            return False, exc.reason, [*details, str(exc)]
    if source.digest.hexdigest() != manifest.artifact.sha256:
        details.append("SHA-256 of the archive differs from the manifest")
        return False, "corrupted", details
    if any(not detail.startswith("warning: ") for detail in details):
        return False, "corrupted", details
    if manifest.artifact.plain_size is not None and plain != manifest.artifact.plain_size:
        return (
            False,
            "corrupted",
            [f"plain stream has {plain} bytes, the manifest says {manifest.artifact.plain_size}"],
        )
    problem = _stream_problem(manifest, head, tail, plain)
    if problem:
        return False, "structure", [problem]
    problem = _coordinates_problem(manifest, head, tail)
    if problem:
        return False, "coordinates", [problem]
    return (
        True,
        None,
        [
            *details,
            f"archive intact: {size} bytes, SHA-256 matches, {plain} plain bytes",
        ],
    )


def _restore_test(
    config: Config,
    catalog: Catalog,
    manifest: Manifest,
    key: UserKey | None,
    scratch_url: str | None,
) -> tuple[bool, list[str]]:
    # A scratch database in a file is the backup in plaintext: it goes into a
    # private directory, which the next run removes if this one is killed.
    with scratch_directory("verify") as private:
        return _restore_test_into(config, catalog, manifest, key, scratch_url, private)


def _restore_test_into(
    config: Config,
    catalog: Catalog,
    manifest: Manifest,
    key: UserKey | None,
    scratch_url: str | None,
    private: Path,
) -> tuple[bool, list[str]]:
    from migration_guard.backup.backends import get_backend

    scratch = scratch_target(config, manifest, scratch_url, private)
    ops = dialect_ops(scratch)
    digest = recorded_digest(ops, manifest)  # an unknown method: before any scratch database
    ops.check_server_digest(scratch, digest)  # a server too old for it: the same
    created = False
    try:
        create_database(ops, scratch, database_options(manifest))
        created = True
        if manifest.type == "incremental":  # the chain: its root, then each incremental
            return _restore_test_chain(config, manifest, scratch)
        outcome = stream_restore(manifest, catalog, key, scratch, None, None)
        tables = list(manifest.tables)
        with connection(scratch) as conn:
            actual = ops.table_stats(
                conn, tables, checksums=measure_checksums(manifest.tables), digest=digest
            )
            objects = ops.objects(conn)
        mismatches = compare_stats(manifest.tables, actual, digest)
        mismatches += compare_content(manifest.tables, outcome.content, "the restored stream")
        redumped = get_backend(manifest.backend).content_digests(scratch, tables)
        if redumped is not None:
            mismatches += compare_content(
                manifest.tables, redumped, "a new dump of the restored database"
            )
        mismatches += compare_objects(manifest.objects, objects)
    finally:
        if created:
            try:
                drop_database(ops, scratch)
            except MigrationGuardError as exc:
                log.warning("could not drop the scratch database: %s", exc)
    if mismatches:
        return False, mismatches
    return True, [f"restore test into a scratch database: {len(manifest.tables)} tables equal"]


def verify(
    config: Config,
    backup_id: str,
    *,
    restore_test: bool = False,
    scratch_url: str | None = None,
    progress: ProgressCallback | None = None,
    on_event: EventSink | None = None,
) -> VerifyResult:
    """Check a backup and record the outcome in its manifest.

    Level 1 decrypts, decompresses and hashes the whole archive against the
    manifest and checks the stream's structure. ``restore_test`` (level 2) also
    restores into a scratch database, compares every table and drops it again.
    ``on_event`` receives a ``verify.success``/``verify.failure`` event.
    """
    return run_reported(
        on_event,
        lambda result, error, seconds: verify_event(backup_id, result, error, seconds),
        lambda: _verify(config, backup_id, restore_test, scratch_url, progress),
    )


@pinning("verify")  # prune keeps a backup while it is verified
def _verify(
    config: Config,
    backup_id: str,
    restore_test: bool,
    scratch_url: str | None,
    progress: ProgressCallback | None,
) -> VerifyResult:
    from migration_guard.backup.keys import load_user_key

    catalog = Catalog.for_config(config)
    manifest = catalog.get(backup_id)
    note = public_only_note(load_user_key()) if manifest.encrypted else None
    if note is not None and not restore_test:
        return _verify_level0(catalog, manifest, note)
    # A wrong key is the caller's mistake, not the backup's: refused, never recorded.
    key = archive_key(manifest, catalog.archive_path(manifest.id))
    ok, reason, details = _verify_level1(catalog, manifest, key, progress)
    if ok and manifest.parent:
        ok, chain_details = _verify_chain(catalog, manifest, progress)
        details.extend(chain_details)
        reason = None if ok else "chain"
    result = VerifyResult(
        backup_id=manifest.id,
        ok=ok,
        level=1,
        reason=reason,
        details=details,
        verified_at=format_time(utc_now()),
    )
    if restore_test:
        result.restore_test = True
        result.level = 2
        if ok:
            test_ok, test_details = _restore_test(config, catalog, manifest, key, scratch_url)
            result.restore_test_ok = test_ok
            result.details.extend(test_details)
            if not test_ok:
                result.ok = False
                result.reason = "restore-test"
        else:
            result.restore_test_ok = False
            result.details.append("restore test skipped: the archive failed level 1")
    if config.offsite:
        from migration_guard.backup.offsite import add_copy_checks

        add_copy_checks(config, manifest, result)
    manifest.verification = Verification(
        last_verified_at=result.verified_at,
        level=result.level,
        ok=result.ok,
        restore_test_at=(
            result.verified_at if restore_test else manifest.verification.restore_test_at
        ),
        restore_test_ok=(
            result.restore_test_ok if restore_test else manifest.verification.restore_test_ok
        ),
        details=result.details,
    )
    catalog.update(manifest)
    return result


def _restore_test_chain(config: Config, manifest: Manifest, scratch: URL) -> tuple[bool, list[str]]:
    from migration_guard.backup.chain import restore

    try:
        result = restore(config, manifest.id, url=scratch, yes=True)
    except MigrationGuardError as exc:
        return False, [f"restore test of the chain failed: {exc.message}"]
    if not result.ok:
        return False, result.mismatches
    return True, [
        f"restore test into a scratch database: the chain restored ({len(result.notes)} notes)"
    ]
