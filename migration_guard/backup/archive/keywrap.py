"""The per-archive data key: derived, wrapped for the user's key, and unwrapped again."""

from __future__ import annotations

import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from migration_guard.backup.archive.format import (
    WRAP_INFO,
    WRAP_NONCE,
    ArchiveHeader,
    corrupted,
)
from migration_guard.backup.keys import (
    ScryptParams,
    UserKey,
    archive_fingerprint,
    archive_root,
    fingerprint_of_root,
    new_scrypt_params,
)
from migration_guard.backup.x25519 import Stanza, unwrap_with, wrap_for
from migration_guard.config import KEY_ENV, KEY_FILE_ENV, PASSPHRASE_ENV
from migration_guard.errors import ArchiveError, EncryptionKeyError


def hkdf(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    """HKDF-SHA256 of ``ikm`` to a 32-byte key (see docs/format.md for the labels)."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(ikm)


@dataclass(frozen=True)
class WrappedKey:
    """A new archive's data key and what its header records about it."""

    data_key: bytes
    wrap_salt: bytes
    wrapped_key: bytes
    #: The scrypt parameters and salt of a passphrase archive (None for a generated key).
    kdf: ScryptParams | None
    #: The archive's key fingerprint: the key's own, or per archive for a passphrase,
    #: or the recipients' fingerprints, comma-separated.
    fingerprint: str
    #: The data key wrapped for each recipient (X25519 only; then wrap_salt and
    #: wrapped_key are empty).
    stanzas: tuple[Stanza, ...] = ()


def wrap_data_key(key: UserKey) -> WrappedKey:
    """A new random data key, wrapped for ``key``.

    The key-encryption key comes from the archive's root and a fresh salt, so it
    is used once, which is what makes the fixed wrap nonce safe. A passphrase
    gets fresh scrypt parameters with a random salt, so its root, and the
    fingerprint derived from it, belong to this archive alone. For X25519 the
    data key is wrapped for every recipient, each with its own ephemeral key.
    """
    if key.kind == "x25519":
        if not key.recipients:
            raise EncryptionKeyError("an archive to X25519 recipients needs at least one")
        data_key = os.urandom(32)
        stanzas = tuple(wrap_for(recipient, data_key) for recipient in key.recipients)
        fingerprint = ",".join(stanza.fingerprint for stanza in stanzas)
        return WrappedKey(data_key, b"", b"", None, fingerprint, stanzas)
    kdf = new_scrypt_params() if key.kind == "passphrase" else None
    root = archive_root(key, kdf)
    data_key = os.urandom(32)
    wrap_salt = os.urandom(32)
    key_encryption_key = hkdf(root, wrap_salt, WRAP_INFO)
    wrapped_key = AESGCM(key_encryption_key).encrypt(WRAP_NONCE, data_key, WRAP_INFO)
    fingerprint = key.fingerprint if kdf is None else fingerprint_of_root(root)
    return WrappedKey(data_key, wrap_salt, wrapped_key, kdf, fingerprint)


def unwrap_data_key(header: ArchiveHeader, key: UserKey | None) -> bytes:
    """The data key of an encrypted archive, unwrapped with ``key``.

    Tells a missing key, a wrong key and a header that contradicts itself apart.
    """
    if header.key_kind == "x25519":
        return _unwrap_x25519(header, key)
    needed = (
        "passphrase"
        if header.key_kind == "passphrase"
        else f"{header.key_kind} with fingerprint {header.key_fingerprint}"
    )
    if key is None:
        variables = (
            PASSPHRASE_ENV if header.key_kind == "passphrase" else f"{KEY_ENV} or {KEY_FILE_ENV}"
        )
        raise EncryptionKeyError(
            f"archive {header.backup_id!r} is encrypted (with the {needed}) but no key is "
            f"configured; set {variables}"
        )
    fingerprint_matches = False
    data_key = None
    if key.kind == header.key_kind:
        assert header.wrap_salt is not None and header.wrapped_key is not None
        fingerprint_matches = archive_fingerprint(key, header.kdf) == header.key_fingerprint
        key_encryption_key = hkdf(archive_root(key, header.kdf), header.wrap_salt, WRAP_INFO)
        try:
            data_key = AESGCM(key_encryption_key).decrypt(WRAP_NONCE, header.wrapped_key, WRAP_INFO)
        except InvalidTag:
            data_key = None
    if data_key is not None and fingerprint_matches:
        return data_key
    if data_key is not None or fingerprint_matches:
        # The configured key is the right one, but the header disagrees with itself.
        raise corrupted(
            "the archive header is damaged: its key fingerprint and wrapped data key "
            "do not belong together"
        )
    if key.kind == header.key_kind == "passphrase":
        raise ArchiveError(
            f"wrong key: archive {header.backup_id!r} was encrypted with another passphrase "
            f"than the one configured ({key.source or PASSPHRASE_ENV}); set "
            f"{PASSPHRASE_ENV} to the passphrase used for the backup",
            reason="wrong-key",
        )
    raise ArchiveError(
        f"wrong key: archive {header.backup_id!r} was encrypted with the {needed}, but the "
        f"{key.describe()} is configured; configure the matching key",
        reason="wrong-key",
    )


def _unwrap_x25519(header: ArchiveHeader, key: UserKey | None) -> bytes:
    """The data key of an archive to X25519 recipients, opened with the configured identity.

    The stanzas whose fingerprint is the identity's are tried first, then the
    others: one of those opening means a damaged fingerprint (``corrupted``),
    as does a stanza with the identity's fingerprint that does not open.
    """
    needed = ", ".join(stanza.fingerprint for stanza in header.stanzas)
    identity = key.identity if key is not None else None
    if identity is None:
        held = "no key is configured" if key is None else f"only the {key.describe()}"
        raise EncryptionKeyError(
            f"archive {header.backup_id!r} is encrypted to the X25519 recipients {needed}; "
            f"reading it needs the private key (identity) of one of them, but {held}; set "
            f"{KEY_FILE_ENV} (or {KEY_ENV}) to that identity"
        )
    assert key is not None
    mine = identity.recipient.fingerprint
    matching = [stanza for stanza in header.stanzas if stanza.fingerprint == mine]
    others = [stanza for stanza in header.stanzas if stanza.fingerprint != mine]
    for stanza in matching:
        data_key = unwrap_with(identity, stanza)
        if data_key is not None:
            return data_key
    if matching or any(unwrap_with(identity, stanza) is not None for stanza in others):
        raise corrupted(
            f"the archive header is damaged: the recipient stanza of {mine} does not open "
            "with its identity, or its fingerprint was changed"
        )
    raise ArchiveError(
        f"wrong key: archive {header.backup_id!r} was encrypted to the X25519 recipients "
        f"{needed}, but the {key.describe()} is configured; configure the "
        "identity of one of those recipients",
        reason="wrong-key",
    )
