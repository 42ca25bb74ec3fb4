"""Keys and plain streams for the operator: ``keygen`` and ``decrypt``."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from migration_guard.backup.catalog import Catalog, fsync_directory
from migration_guard.backup.streams import is_out_of_space, remove_quietly, space_error
from migration_guard.config import Config
from migration_guard.errors import ArchiveError, InputError, MigrationGuardError, UsageError


def decrypt(
    config: Config,
    file: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    force: bool = False,
) -> int:
    """Write the plain stream of an archive (a path or a backup id) to ``out``; bytes written.

    The output appears atomically and only when complete; an existing ``out``
    is replaced only with ``force``. Use ``-`` for standard output.
    """
    import sys

    from migration_guard.backup import archive
    from migration_guard.backup.keys import key_for
    from migration_guard.backup.verification import check_passphrase

    source = Path(file)
    if not source.is_file():
        catalog = Catalog.for_config(config)
        try:
            source = catalog.archive_path(catalog.get(str(file)).id)
        except MigrationGuardError:
            raise InputError(f"{file}: no such archive file or backup id") from None
    with source.open("rb") as handle:
        try:
            header = archive.read_header(handle)
        except ArchiveError as exc:
            raise ArchiveError(f"{source}: {exc}", reason=exc.reason) from None
    key = key_for(header.key_fingerprint if header.encrypted else None, str(source))
    check_passphrase(source, key, str(source))
    if str(out) == "-":
        with source.open("rb") as handle:
            return int(archive.copy_plain(handle, sys.stdout.buffer, key=key))
    target = Path(out)
    if target.exists() and not force:
        raise UsageError(f"{target} exists; remove it or pass --force to overwrite it")
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as output, source.open("rb") as handle:
            written = int(archive.copy_plain(handle, output, key=key))
            output.flush()
            os.fsync(output.fileno())
        os.replace(temporary, target)
    except BaseException as exc:
        remove_quietly(temporary)
        if is_out_of_space(exc):
            raise space_error(target.parent) from None
        if isinstance(exc, OSError) and not isinstance(exc, MigrationGuardError):
            raise InputError(f"cannot write {target}: {exc.strerror or exc}") from None
        raise
    fsync_directory(target.parent)
    return written


def keygen() -> str:
    """A new random 256-bit key in its text form (``mgk1:...``). Store it, never pass it in argv."""
    from migration_guard.backup.keys import generate_key

    return generate_key()


@dataclass(frozen=True, repr=False)
class NewIdentity:
    """A new X25519 key pair from :func:`keygen_x25519`. ``repr`` shows the public side only."""

    #: The public key, ``age1...``: what backup hosts get (MIGRATION_GUARD_RECIPIENTS).
    recipient: str
    fingerprint: str
    #: The identity file's text (age-keygen's format) when it was not written to a file.
    text: str | None = None
    #: Where it was written, when it was.
    path: str | None = None

    def __repr__(self) -> str:
        return f"NewIdentity(recipient={self.recipient!r}, path={self.path!r})"


def keygen_x25519(output: str | os.PathLike[str] | None = None) -> NewIdentity:
    """A new X25519 identity in age-keygen's format, written to ``output`` (a new 0600 file).

    The file is written under a temporary name (``O_EXCL | O_NOFOLLOW``, mode
    0600), fsynced and linked into place, so it appears whole or not at all and
    never replaces an existing file. Without ``output`` the text is returned
    for the caller to print.
    """
    from migration_guard.backup.x25519 import generate_identity, identity_file_text

    identity = generate_identity()
    text = identity_file_text(identity)
    recipient = identity.recipient
    if output is None:
        return NewIdentity(recipient.text, recipient.fingerprint, text=text)
    target = Path(os.path.expanduser(os.fspath(output)))
    _write_new_private_file(target, text)
    return NewIdentity(recipient.text, recipient.fingerprint, path=str(target))


def _write_new_private_file(target: Path, text: str) -> None:
    if os.path.lexists(target):
        raise UsageError(
            f"{target} exists; an identity file is never overwritten (its backups would "
            "become unreadable): choose another name, or remove it first"
        )
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        descriptor = os.open(temporary, flags | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise InputError(f"cannot write {target}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(descriptor, "w", encoding="ascii") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        # link, not rename: fails instead of replacing a file created meanwhile.
        os.link(temporary, target)
    except FileExistsError:
        raise UsageError(f"{target} exists; choose another name, or remove it first") from None
    except OSError as exc:
        raise InputError(f"cannot write {target}: {exc.strerror or exc}") from None
    finally:
        remove_quietly(temporary)
    fsync_directory(target.parent)
