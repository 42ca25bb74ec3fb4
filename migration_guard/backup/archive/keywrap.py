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
    #: The archive's key fingerprint: the key's own, or per archive for a passphrase.
    fingerprint: str


def wrap_data_key(key: UserKey) -> WrappedKey:
    """A new random data key, wrapped for ``key``.

    The key-encryption key comes from the archive's root and a fresh salt, so it
    is used once, which is what makes the fixed wrap nonce safe. A passphrase
    gets fresh scrypt parameters with a random salt, so its root, and the
    fingerprint derived from it, belong to this archive alone.
    """
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
