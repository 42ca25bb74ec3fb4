"""The trust boundaries of a restore: manifest, archive header and archive bytes agree.

Checked before the first statement of a restore (and by ``verify``):

1. the policy on unencrypted backups: refused while a key is configured, unless
   the caller allows them (``--allow-unencrypted``);
2. the archive header against the manifest: the backup id, whether it is
   encrypted, the key fingerprint (:func:`check_header`);
3. the manifest's MAC, keyed from the archive's data key (:func:`check_manifest_mac`);
4. the whole archive, in a first pass over the file descriptor the load then
   reads again: its size and SHA-256 against the manifest, every chunk's tag
   and the trailer (:func:`checked_archive`). The load re-hashes what it
   streams and compares again at the end.

See docs/backups.md ("All-or-nothing restore") and docs/format.md ("The manifest MAC").
"""

from __future__ import annotations

import contextlib
import hmac
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, BinaryIO

from migration_guard.backup.catalog import Catalog
from migration_guard.backup.manifest import (
    MAC_SCHEME,
    Manifest,
    mac_matches,
)
from migration_guard.backup.streams import HashingSource
from migration_guard.errors import ArchiveError, UsageError

if TYPE_CHECKING:
    from migration_guard.backup.archive import ArchiveHeader
    from migration_guard.backup.keys import UserKey

#: ``ArchiveError.reason`` of an archive that is intact but belongs elsewhere.
MISMATCH = "mismatch"
#: ``ArchiveError.reason`` of a manifest that fails its MAC.
MANIFEST_MODIFIED = "manifest"


def check_unencrypted_policy(manifest: Manifest, *, allow_unencrypted: bool) -> str | None:
    """Refuse an unencrypted backup while a key is configured; a warning when it is allowed.

    With a key configured every backup is expected to be encrypted, so an
    unencrypted one may have been put in place of the real one: its archive and
    manifest can be rewritten by anyone who can write the backup directory.
    """
    from migration_guard.backup.keys import load_user_key

    if manifest.encrypted:
        return None
    warning = (
        f"backup {manifest.id} is not encrypted: its archive and manifest are not "
        "authenticated, only checksummed"
    )
    if allow_unencrypted or load_user_key() is None:
        return warning
    raise UsageError(
        f"backup {manifest.id} is not encrypted, but a key is configured: an unencrypted "
        "archive and its manifest can be replaced by anyone who can write the backup "
        "directory. If you know it is genuine, pass --allow-unencrypted "
        "(allow_unencrypted=True in Python)"
    )


def check_header(manifest: Manifest, header: ArchiveHeader) -> None:
    """The archive header names this backup, with the encryption the manifest records."""
    if header.backup_id != manifest.id:
        raise ArchiveError(
            f"the archive file of backup {manifest.id} holds backup {header.backup_id}: it "
            f"was replaced by another backup's archive. Put the original {manifest.id}.mgb "
            f"back, or restore {header.backup_id} under its own id",
            reason=MISMATCH,
        )
    recorded = manifest.artifact.encryption
    if header.encrypted != (recorded is not None):
        said, found = ("encrypted", "is not") if recorded is not None else ("unencrypted", "is")
        raise ArchiveError(
            f"the manifest of backup {manifest.id} says its archive is {said}, but the "
            f"archive file {found} encrypted: one of the two was replaced or edited; "
            "restore both files from a copy of the backup directory",
            reason=MISMATCH,
        )
    if recorded is not None and header.key_fingerprint != recorded.key_fingerprint:
        raise ArchiveError(
            f"the archive of backup {manifest.id} was sealed with key fingerprint "
            f"{header.key_fingerprint}, its manifest records {recorded.key_fingerprint}: one "
            "of the two was replaced or edited; restore both files from a copy of the "
            "backup directory",
            reason=MISMATCH,
        )


def check_manifest_mac(
    manifest: Manifest, header: ArchiveHeader, manifest_key: bytes | None
) -> str | None:
    """Refuse an edited manifest of an encrypted backup; a warning for an unauthenticated one.

    An archive whose (authenticated) header announces a manifest MAC needs one
    that matches, so deleting the MAC is refused like editing the content.
    Manifests of archives from before manifest MACs still open, with a warning.
    """
    if not header.encrypted or manifest_key is None:
        return None
    announced = header.manifest_mac is not None
    if announced and header.manifest_mac != MAC_SCHEME:
        raise ArchiveError(
            f"the archive of backup {manifest.id} uses manifest authentication "
            f"{header.manifest_mac!r}, which this migration-guard does not know; upgrade "
            "migration-guard",
            reason="unsupported-version",
        )
    if not announced and manifest.authentication is None:
        return (
            f"the manifest of backup {manifest.id} was written before manifests were "
            "authenticated: its content (tables, checksums, database options) is not "
            "authenticated; the archive itself is"
        )
    if not mac_matches(manifest, manifest_key):
        raise ArchiveError(
            f"the manifest of backup {manifest.id} was modified after the backup was "
            "written: it fails its authentication (HMAC-SHA256 keyed from the backup's "
            "key), so nothing in it is trusted and the backup is refused. Put back the "
            f"original {manifest.id}.manifest.json from a copy of the backup directory; "
            f"`migration-guard decrypt {manifest.id} -o FILE` still gives the archive's "
            "authenticated plain stream",
            reason=MANIFEST_MODIFIED,
        )
    return None


def check_before_restore(
    catalog: Catalog, manifest: Manifest, key: UserKey | None, *, allow_unencrypted: bool
) -> list[str]:
    """The cheap checks (1-3 above) that need only the header; returns warnings.

    Runs before anything else of a restore, the safety backup included.
    """
    from migration_guard.backup import archive

    warnings = [check_unencrypted_policy(manifest, allow_unencrypted=allow_unencrypted)]
    handle = _open_archive(catalog, manifest)
    with handle:
        reader = archive.open_reader(handle, key=key)
        check_header(manifest, reader.header)
        warnings.append(check_manifest_mac(manifest, reader.header, reader.manifest_key))
    return [warning for warning in warnings if warning]


def _open_archive(catalog: Catalog, manifest: Manifest) -> BinaryIO:
    """The archive file of ``manifest``, open for reading; ``missing`` when it is gone."""
    try:
        return catalog.archive_path(manifest.id).open("rb")
    except FileNotFoundError:
        raise ArchiveError(
            f"the archive of backup {manifest.id} is missing from {catalog.path}",
            reason="missing",
        ) from None


@contextlib.contextmanager
def checked_archive(
    catalog: Catalog, manifest: Manifest, key: UserKey | None
) -> Iterator[BinaryIO]:
    """The archive file, open and positioned at its start, once all of it has been checked.

    Checks the size, the SHA-256 of every byte, every chunk's tag and the trailer
    (and again the header and the manifest MAC) in one pass over the open file,
    then rewinds the same descriptor: a file renamed over the archive meanwhile
    is not read. Raises :class:`ArchiveError` before the caller does anything.
    """
    from migration_guard.backup import archive

    handle = _open_archive(catalog, manifest)
    with handle:
        size = os.fstat(handle.fileno()).st_size
        if size != manifest.artifact.size:
            raise ArchiveError(
                f"the archive of backup {manifest.id} has {size} bytes, its manifest records "
                f"{manifest.artifact.size}: it was "
                + ("cut short" if size < manifest.artifact.size else "changed")
                + "; nothing was restored from it",
                reason="truncated" if size < manifest.artifact.size else "corrupted",
            )
        source = HashingSource(handle, None, size)
        try:
            checked = archive.authenticate(source, key=key)
            source.drain()
        except ArchiveError as exc:
            raise ArchiveError(
                f"the archive of backup {manifest.id} failed its check: {exc}; nothing was "
                "restored from it",
                reason=exc.reason,
            ) from None
        check_header(manifest, checked.header)
        check_manifest_mac(manifest, checked.header, checked.manifest_key)
        if not hmac.compare_digest(source.digest.hexdigest(), manifest.artifact.sha256):
            raise ArchiveError(
                f"the SHA-256 of the archive of backup {manifest.id} differs from its "
                "manifest's: the file was changed; nothing was restored from it",
                reason="corrupted",
            )
        handle.seek(0)
        yield handle


def recheck_digest(manifest: Manifest, source: HashingSource) -> None:
    """After the load: the bytes streamed were the ones the first pass checked."""
    source.drain()
    if not hmac.compare_digest(source.digest.hexdigest(), manifest.artifact.sha256):
        raise ArchiveError(
            f"the archive of backup {manifest.id} changed on disk while it was being "
            "restored (its SHA-256 differs from the manifest's at the end of the load)",
            reason="corrupted",
        )
