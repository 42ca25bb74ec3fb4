"""Encryption keys for backup archives: generation, parsing, loading and fingerprints.

A user key is a generated 256-bit key written as ``mgk1:<urlsafe base64>``
(``migration-guard keygen``), a passphrase, stretched with scrypt and a salt of
its own for every archive, or X25519 keys in age's encodings: recipients
(public keys, ``age1...``) to write archives to, and an identity (the private
key, ``AGE-SECRET-KEY-1...``) to read them (:mod:`.x25519`). The first two
reduce to a 32-byte *root* per archive from which the archive derives its
key-encryption key (see ``docs/format.md``). Key material only ever comes from
the environment or from a 0600 file, never from a command-line argument, and no
message, ``repr`` or log line produced here contains it.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import os
import secrets
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from migration_guard.backup.keyfiles import read_guarded_file
from migration_guard.backup.x25519 import (
    FINGERPRINT_PREFIX,
    IDENTITY_PREFIX,
    RECIPIENT_PREFIX,
    Identity,
    Recipient,
    parse_identity,
    parse_recipients,
)
from migration_guard.config import (
    KEY_ENV,
    KEY_FILE_ENV,
    PASSPHRASE_ENV,
    RECIPIENTS_ENV,
    RECIPIENTS_FILE_ENV,
)
from migration_guard.errors import EncryptionKeyError

KEY_ENV_VARS = (KEY_ENV, KEY_FILE_ENV, PASSPHRASE_ENV)
RECIPIENT_ENV_VARS = (RECIPIENTS_ENV, RECIPIENTS_FILE_ENV)
#: How messages name the ways to configure a key that writes backups.
KEY_ENV_HINT = f"{KEY_ENV}, {KEY_FILE_ENV}, {PASSPHRASE_ENV} or {RECIPIENTS_ENV}"
#: How messages name the ways to configure a key that reads backups.
READ_KEY_HINT = f"{KEY_ENV}, {KEY_FILE_ENV} or {PASSPHRASE_ENV}"

KEY_PREFIX = "mgk1:"
KEY_BYTES = 32
MIN_PASSPHRASE_LENGTH = 12

FINGERPRINT_LABEL = b"migration-guard key fingerprint v1"
#: The one salt of format version 1 passphrase archives (see LEGACY_SCRYPT).
PASSPHRASE_SALT = b"migration-guard passphrase v1"

KeyKind = Literal["key", "passphrase", "x25519"]


@dataclass(frozen=True)
class ScryptParams:
    """scrypt cost parameters and salt, as recorded in an archive header."""

    n: int
    r: int
    p: int
    salt: bytes

    def validate(self) -> None:
        """Refuse parameters that are weak, malformed, or would exhaust memory or time.

        Raises ValueError; the archive reader turns it into a "corrupted header" error.
        """
        if self.n < 2**14 or self.n > 2**20 or self.n & (self.n - 1):
            raise ValueError(f"scrypt n={self.n} is not a power of two in 2**14..2**20")
        if not 1 <= self.r <= 32 or not 1 <= self.p <= 16:
            raise ValueError(f"scrypt r={self.r}, p={self.p} out of range")
        if 128 * self.n * self.r > 256 * 1024 * 1024:
            raise ValueError("scrypt parameters need more than 256 MiB of memory")
        if not 1 <= len(self.salt) <= 64:
            raise ValueError("scrypt salt must be 1..64 bytes")


#: What new passphrase archives use: 128 MiB of memory (128 * n * r) and a fresh
#: random salt per archive, so no two archives share a passphrase-derived value.
SCRYPT_N = 2**17
SCRYPT_R = 8
SCRYPT_P = 1
SCRYPT_SALT_BYTES = 16
#: What archives of format version 1 recorded: one fixed salt for every archive.
#: Readers take the parameters from the header, so such archives still open.
LEGACY_SCRYPT = ScryptParams(n=2**15, r=8, p=1, salt=PASSPHRASE_SALT)


def new_scrypt_params() -> ScryptParams:
    """The scrypt parameters of a new passphrase archive, with its own random salt."""
    return ScryptParams(
        n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, salt=secrets.token_bytes(SCRYPT_SALT_BYTES)
    )


@dataclass(frozen=True, repr=False)
class UserKey:
    """A configured encryption key. ``repr``/``str`` show kind and fingerprint only.

    ``fingerprint`` identifies a generated key without revealing anything usable
    about it. A passphrase has none (``""``): a value derived from the passphrase
    alone would let one dictionary attack every installation, so each archive
    carries its own fingerprint, derived with its own salt
    (:func:`archive_fingerprint`). For ``x25519`` it is the identity's
    (``x25519:...``), or on a host with only public keys the recipients',
    comma-separated. ``source`` says where the key came from (an environment
    variable or a file path).
    """

    kind: KeyKind
    fingerprint: str
    source: str = field(default="", compare=False)
    _secret: bytes = field(default=b"")
    _root: bytes = field(default=b"", compare=False)
    #: ``x25519``: the public keys new archives are encrypted to.
    recipients: tuple[Recipient, ...] = ()
    #: ``x25519``: the private key that opens archives; None on a public-key-only host.
    identity: Identity | None = field(default=None, compare=False)

    def __repr__(self) -> str:
        return f"UserKey(kind={self.kind!r}, fingerprint={self.fingerprint!r})"

    __str__ = __repr__

    @property
    def can_decrypt(self) -> bool:
        """False on a host that holds only recipients (public keys)."""
        return self.kind != "x25519" or self.identity is not None

    def describe(self) -> str:
        """Wording such as ``key with fingerprint 1a2b3c4d5e6f7a8b (from MIGRATION_GUARD_KEY)``."""
        origin = f" (from {self.source})" if self.source else ""
        if self.kind == "passphrase":
            return f"passphrase{origin}"
        if self.kind == "x25519":
            if self.identity is not None:
                return f"X25519 identity {self.identity.recipient.fingerprint}{origin}"
            listed = ", ".join(r.fingerprint for r in self.recipients)
            return f"X25519 recipients {listed} (public keys only){origin}"
        return f"{self.kind} with fingerprint {self.fingerprint}{origin}"


def generate_key() -> str:
    """Return a new random 256-bit key in its text form ``mgk1:<urlsafe base64>``."""
    encoded = base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).rstrip(b"=")
    return KEY_PREFIX + encoded.decode("ascii")


def fingerprint_of_root(root: bytes) -> str:
    """First 16 hex digits of HMAC-SHA256(root, FINGERPRINT_LABEL)."""
    return hmac.new(root, FINGERPRINT_LABEL, hashlib.sha256).hexdigest()[:16]


def parse_key(text: str, *, source: str = "") -> UserKey:
    """Parse a key's text: ``mgk1:...`` or an X25519 identity ``AGE-SECRET-KEY-1...``.

    Raises EncryptionKeyError on a bad prefix, bad encoding or wrong length; the
    message never repeats the text it was given.
    """
    where = f" in {source}" if source else ""
    candidate = text.strip()
    if candidate.upper().startswith(IDENTITY_PREFIX):
        identity = parse_identity(candidate, source=source)
        return UserKey(
            kind="x25519",
            fingerprint=identity.recipient.fingerprint,
            source=source,
            recipients=(identity.recipient,),
            identity=identity,
        )
    if candidate.lower().startswith(RECIPIENT_PREFIX):
        raise EncryptionKeyError(
            f"the value{where} is an X25519 public key (a recipient), which can encrypt "
            f"but not decrypt: put it in {RECIPIENTS_ENV}, and the private key "
            f"(AGE-SECRET-KEY-1...) in {KEY_FILE_ENV} where backups are read"
        )
    if not candidate.startswith(KEY_PREFIX):
        raise EncryptionKeyError(
            f"the value{where} is not a migration-guard key: a key starts with "
            f"{KEY_PREFIX!r} (`migration-guard keygen`) or {IDENTITY_PREFIX!r} (an X25519 "
            "identity: `migration-guard keygen --x25519` or age-keygen)"
        )
    body = candidate[len(KEY_PREFIX) :]
    try:
        padded = body + "=" * (-len(body) % 4)
        raw = base64.b64decode(padded.encode("ascii"), altchars=b"-_", validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise EncryptionKeyError(
            f"the key{where} is damaged: the part after {KEY_PREFIX!r} is not URL-safe "
            "base64; copy it again from the output of `migration-guard keygen`"
        ) from None
    if len(raw) != KEY_BYTES:
        raise EncryptionKeyError(
            f"the key{where} is damaged: it must hold {KEY_BYTES} bytes; copy it again "
            "from the output of `migration-guard keygen`"
        )
    return UserKey(
        kind="key", fingerprint=fingerprint_of_root(raw), source=source, _secret=raw, _root=raw
    )


@functools.lru_cache(maxsize=16)
def _scrypt(passphrase: bytes, params: ScryptParams) -> bytes:
    # Cached: a backup and its verification, or a restore and its safety backup,
    # open the same archive more than once in one process.
    kdf = Scrypt(salt=params.salt, length=KEY_BYTES, n=params.n, r=params.r, p=params.p)
    return kdf.derive(passphrase)


def passphrase_key(passphrase: str, *, source: str = "") -> UserKey:
    """A passphrase (NFC-normalised UTF-8) as a UserKey.

    Nothing is derived yet: scrypt runs per archive, with the archive's own salt
    (:func:`archive_root`). Raises EncryptionKeyError when it is shorter than
    MIN_PASSPHRASE_LENGTH characters.
    """
    normalised = unicodedata.normalize("NFC", passphrase)
    if len(normalised) < MIN_PASSPHRASE_LENGTH:
        where = source or "the passphrase"
        raise EncryptionKeyError(
            f"{where} is too short: use at least {MIN_PASSPHRASE_LENGTH} characters, "
            "or a generated key (`migration-guard keygen`) in "
            f"{KEY_ENV} or {KEY_FILE_ENV}"
        )
    return UserKey(
        kind="passphrase", fingerprint="", source=source, _secret=normalised.encode("utf-8")
    )


def archive_root(key: UserKey, kdf: ScryptParams | None) -> bytes:
    """The 32-byte root an archive's key-encryption key is derived from.

    For a generated key this is the key itself; for a passphrase it is scrypt with
    the archive's recorded parameters and salt (``kdf``; an archive without them
    cannot be opened with a passphrase). Internal to the archive format: never log it.
    """
    if key.kind == "key":
        return key._root
    if kdf is None:
        raise ValueError("a passphrase archive records its scrypt parameters")
    kdf.validate()
    return _scrypt(key._secret, kdf)


def archive_fingerprint(key: UserKey, kdf: ScryptParams | None) -> str:
    """The key fingerprint an archive sealed with ``key`` and ``kdf`` carries.

    The key's own fingerprint for a generated key; for a passphrase, the
    fingerprint of the archive's root, which differs from archive to archive
    because every archive has its own salt.
    """
    if key.kind == "key":
        return key.fingerprint
    return fingerprint_of_root(archive_root(key, kdf))


def read_key_file(path: str) -> UserKey:
    """Load a key from a regular file of the current user that only they can read or write.

    Blank lines and lines starting with ``#`` are ignored (so age-keygen's files
    work); exactly one key line must remain.
    """
    text = read_guarded_file(path, KEY_FILE_ENV, private=True)
    lines = [
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    ]
    if len(lines) != 1:
        raise EncryptionKeyError(
            f"key file {path} must contain exactly one key line (it has {len(lines)}); "
            "it should hold the line printed by `migration-guard keygen`"
        )
    return parse_key(lines[0], source=f"key file {path}")


def _only_one(env: Mapping[str, str], names: tuple[str, ...], what: str) -> str | None:
    """The one variable of ``names`` that is set (None: none); two, or an empty one, is an error."""
    present = [name for name in names if name in env]
    if not present:
        return None
    if len(present) > 1:
        listed = " and ".join(present)
        raise EncryptionKeyError(
            f"{listed} are set, but only one {what} may be configured; "
            f"unset all but one (e.g. `unset {' '.join(present[1:])}`)"
        )
    name = present[0]
    if not env[name].strip():
        raise EncryptionKeyError(
            f"{name} is set but empty; set it to a key, or unset it to run without one"
        )
    return name


def _load_secret(env: Mapping[str, str]) -> UserKey | None:
    name = _only_one(env, KEY_ENV_VARS, "key source")
    if name is None:
        return None
    value = env[name]
    if name == KEY_ENV:
        # "$(cat key.txt)" of an age-keygen file: its comment lines are not the key.
        lines = [line for line in value.splitlines() if line.strip() and not line.startswith("#")]
        return parse_key(lines[0] if len(lines) == 1 else value, source=KEY_ENV)
    if name == KEY_FILE_ENV:
        return read_key_file(value.strip())
    return passphrase_key(value, source=PASSPHRASE_ENV)


def _load_recipients(env: Mapping[str, str]) -> tuple[tuple[Recipient, ...], str] | None:
    name = _only_one(env, RECIPIENT_ENV_VARS, "recipient source")
    if name is None:
        return None
    if name == RECIPIENTS_ENV:
        return parse_recipients(env[name], source=RECIPIENTS_ENV), RECIPIENTS_ENV
    path = env[name].strip()
    text = read_guarded_file(path, RECIPIENTS_FILE_ENV, private=False)
    source = f"recipients file {path}"
    return parse_recipients(text, source=source), source


def load_user_key(environ: Mapping[str, str] | None = None) -> UserKey | None:
    """The key configured in the environment, or None when none is configured.

    At most one of MIGRATION_GUARD_KEY, MIGRATION_GUARD_KEY_FILE and
    MIGRATION_GUARD_PASSPHRASE may be set, and at most one of
    MIGRATION_GUARD_RECIPIENTS and MIGRATION_GUARD_RECIPIENTS_FILE. Recipients
    combine only with an X25519 identity (which then reads, while new archives
    go to the recipients); with a generated key or a passphrase they are refused,
    since a host holding a symmetric key reads every backup and defeats the
    point of public keys. A variable that is set but empty is an error rather
    than "no key", so a failed ``$(cat ...)`` never silently turns encryption off.
    """
    env = os.environ if environ is None else environ
    secret = _load_secret(env)
    loaded = _load_recipients(env)
    if loaded is None:
        return secret
    recipients, source = loaded
    if secret is not None and secret.kind != "x25519":
        raise EncryptionKeyError(
            f"{source} names X25519 recipients and {secret.describe()} is configured as "
            "well; they do not combine (a host holding a symmetric key can read every "
            f"backup, which public keys are meant to prevent). Unset one: keep "
            f"{RECIPIENTS_ENV} on backup hosts, and an X25519 identity (AGE-SECRET-KEY-1...) "
            f"in {KEY_FILE_ENV} where backups are read"
        )
    identity = secret.identity if secret is not None else None
    return UserKey(
        kind="x25519",
        fingerprint=(
            identity.recipient.fingerprint
            if identity is not None
            else ",".join(r.fingerprint for r in recipients)
        ),
        source=source if secret is None else f"{source} and {secret.source}",
        recipients=recipients,
        identity=identity,
    )


def recipient_fingerprints(fingerprint: str) -> list[str] | None:
    """The recipients' fingerprints of an X25519 archive's ``key_fingerprint``; None for others."""
    if not fingerprint.startswith(FINGERPRINT_PREFIX):
        return None
    return fingerprint.split(",")


def key_for(fingerprint: str | None, what: str) -> UserKey | None:
    """The configured key, checked against the ``fingerprint`` an archive was sealed with.

    ``None`` for an archive that is not encrypted (``fingerprint`` is None).
    """
    if fingerprint is None:
        return None
    key = load_user_key()
    needed = recipient_fingerprints(fingerprint)
    if key is None or not key.can_decrypt:
        wanted = (
            f"the private key (X25519 identity) of one of its recipients {', '.join(needed)}"
            if needed
            else f"the key with fingerprint {fingerprint}"
        )
        configured = (
            "no key is configured"
            if key is None
            else f"this host holds only public keys ({key.describe()}), which can write "
            "backups but not read them"
        )
        raise EncryptionKeyError(
            f"{what} is encrypted and reading it needs {wanted}, but {configured}; set "
            f"{READ_KEY_HINT} to it"
            + (" (the AGE-SECRET-KEY-1... file age-keygen wrote)" if needed else "")
        )
    if key.kind == "passphrase":
        # A passphrase archive's fingerprint is its own (its salt's); opening the
        # archive tells whether the passphrase is the right one.
        return key
    if needed is not None and key.kind == "x25519" and key.fingerprint in needed:
        return key
    if needed is None and key.fingerprint == fingerprint:
        return key
    used = (
        f"to the recipients {', '.join(needed)}"
        if needed
        else f"with the key whose fingerprint is {fingerprint}"
    )
    raise EncryptionKeyError(
        f"wrong key: {what} was encrypted {used}, but the {key.describe()} is configured; "
        f"set {READ_KEY_HINT} to "
        + ("the identity of one of those recipients" if needed else "the key used for the backup")
    )
