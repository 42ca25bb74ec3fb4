"""Encryption keys for backup archives: generation, parsing, loading and fingerprints.

A user key is either a generated 256-bit key written as ``mgk1:<urlsafe base64>``
(``migration-guard keygen``) or a passphrase, stretched with scrypt and a salt of
its own for every archive. Both reduce to a 32-byte *root* per archive from which
the archive derives its key-encryption key (see ``docs/format.md``). Key
material only ever comes from the environment or from a 0600 file, never from a
command-line argument, and no message, ``repr`` or log line produced here
contains it.
"""

from __future__ import annotations

import base64
import binascii
import errno
import functools
import hashlib
import hmac
import os
import secrets
import stat
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from migration_guard.config import KEY_ENV, KEY_FILE_ENV, PASSPHRASE_ENV
from migration_guard.errors import EncryptionKeyError

KEY_ENV_VARS = (KEY_ENV, KEY_FILE_ENV, PASSPHRASE_ENV)
#: How messages name the ways to configure a key.
KEY_ENV_HINT = f"{KEY_ENV}, {KEY_FILE_ENV} or {PASSPHRASE_ENV}"

KEY_PREFIX = "mgk1:"
KEY_BYTES = 32
MIN_PASSPHRASE_LENGTH = 12
# A key file holds one short line; anything bigger is not a key file.
MAX_KEY_FILE_BYTES = 4096

FINGERPRINT_LABEL = b"migration-guard key fingerprint v1"
#: The one salt of format version 1 passphrase archives (see LEGACY_SCRYPT).
PASSPHRASE_SALT = b"migration-guard passphrase v1"

KeyKind = Literal["key", "passphrase"]


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
    (:func:`archive_fingerprint`). ``source`` says where the key came from (an
    environment variable or a file path).
    """

    kind: KeyKind
    fingerprint: str
    source: str = field(default="", compare=False)
    _secret: bytes = field(default=b"")
    _root: bytes = field(default=b"", compare=False)

    def __repr__(self) -> str:
        return f"UserKey(kind={self.kind!r}, fingerprint={self.fingerprint!r})"

    __str__ = __repr__

    def describe(self) -> str:
        """Wording such as ``key with fingerprint 1a2b3c4d5e6f7a8b (from MIGRATION_GUARD_KEY)``."""
        origin = f" (from {self.source})" if self.source else ""
        if self.kind == "passphrase":
            return f"passphrase{origin}"
        return f"{self.kind} with fingerprint {self.fingerprint}{origin}"


def generate_key() -> str:
    """Return a new random 256-bit key in its text form ``mgk1:<urlsafe base64>``."""
    encoded = base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).rstrip(b"=")
    return KEY_PREFIX + encoded.decode("ascii")


def fingerprint_of_root(root: bytes) -> str:
    """First 16 hex digits of HMAC-SHA256(root, FINGERPRINT_LABEL)."""
    return hmac.new(root, FINGERPRINT_LABEL, hashlib.sha256).hexdigest()[:16]


def parse_key(text: str, *, source: str = "") -> UserKey:
    """Parse the ``mgk1:`` text form of a key.

    Raises EncryptionKeyError on a bad prefix, bad base64 or wrong length; the
    message never repeats the text it was given.
    """
    where = f" in {source}" if source else ""
    candidate = text.strip()
    if not candidate.startswith(KEY_PREFIX):
        raise EncryptionKeyError(
            f"the value{where} is not a migration-guard key: a key starts with "
            f"{KEY_PREFIX!r}; generate one with `migration-guard keygen`"
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

    The file is opened without following a symbolic link (``O_NOFOLLOW``) and
    refused, as ssh refuses a private key, when another user owns it (they
    could swap the key) or group or others may access it. Blank lines and
    lines starting with ``#`` are ignored; exactly one key line must remain.
    """
    display = path
    expanded = os.path.expanduser(path)
    try:
        # O_NONBLOCK: opening a FIFO someone put in place of the file must not hang.
        # O_NOFOLLOW: a symlink could point anywhere, and be re-pointed later.
        flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(expanded, flags | os.O_CLOEXEC)
    except FileNotFoundError:
        raise EncryptionKeyError(
            f"key file {display} (from {KEY_FILE_ENV}) does not exist; create it with "
            f"`(umask 077; migration-guard keygen > {display})` or point {KEY_FILE_ENV} "
            "at the right file"
        ) from None
    except OSError as exc:
        if exc.errno == errno.ELOOP or os.path.islink(expanded):
            raise EncryptionKeyError(
                f"key file {display} (from {KEY_FILE_ENV}) is a symbolic link, which is not "
                f"followed; point {KEY_FILE_ENV} at the file itself (`realpath {display}`)"
            ) from None
        raise EncryptionKeyError(
            f"key file {display} (from {KEY_FILE_ENV}) cannot be opened: {exc.strerror or exc}"
        ) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise EncryptionKeyError(
                f"key file {display} (from {KEY_FILE_ENV}) is not a regular file; "
                "point it at a file that holds the key"
            )
        owner = getattr(os, "geteuid", None)
        if owner is not None and info.st_uid != owner():
            raise EncryptionKeyError(
                f"key file {display} is owned by user id {info.st_uid}, not by the user "
                f"running migration-guard (id {owner()}); another user could replace the "
                f"key. Make it yours: `chown $(id -u) {display}` (or copy it) and "
                f"`chmod 600 {display}`"
            )
        loose = stat.S_IMODE(info.st_mode) & 0o077
        if loose and os.name != "nt":
            raise EncryptionKeyError(
                f"key file {display} is accessible by group or others "
                f"(mode {stat.S_IMODE(info.st_mode):04o}); restrict it with "
                f"`chmod 600 {display}`"
            )
        if info.st_size > MAX_KEY_FILE_BYTES:
            raise EncryptionKeyError(
                f"key file {display} is {info.st_size} bytes, too large to be a key file; "
                "it should hold the one line printed by `migration-guard keygen`"
            )
        content = os.read(fd, MAX_KEY_FILE_BYTES + 1)
    finally:
        os.close(fd)
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        raise EncryptionKeyError(
            f"key file {display} is not text; it should hold the line printed by "
            "`migration-guard keygen`"
        ) from None
    lines = [
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    ]
    if len(lines) != 1:
        raise EncryptionKeyError(
            f"key file {display} must contain exactly one key line (it has {len(lines)}); "
            "it should hold the line printed by `migration-guard keygen`"
        )
    return parse_key(lines[0], source=f"key file {display}")


def load_user_key(environ: Mapping[str, str] | None = None) -> UserKey | None:
    """The key configured in the environment, or None when none is configured.

    Exactly one of MIGRATION_GUARD_KEY, MIGRATION_GUARD_KEY_FILE and
    MIGRATION_GUARD_PASSPHRASE may be set. A variable that is set but empty is an
    error rather than "no key", so a failed ``$(cat ...)`` never silently turns
    encryption off.
    """
    env = os.environ if environ is None else environ
    present = [name for name in KEY_ENV_VARS if name in env]
    if not present:
        return None
    if len(present) > 1:
        listed = " and ".join(present)
        raise EncryptionKeyError(
            f"{listed} are set, but only one key source may be configured; "
            f"unset all but one (e.g. `unset {' '.join(present[1:])}`)"
        )
    name = present[0]
    value = env[name]
    if not value.strip():
        raise EncryptionKeyError(
            f"{name} is set but empty; set it to a key, or unset it to run without one"
        )
    if name == KEY_ENV:
        return parse_key(value, source=KEY_ENV)
    if name == KEY_FILE_ENV:
        return read_key_file(value.strip())
    return passphrase_key(value, source=PASSPHRASE_ENV)


def key_for(fingerprint: str | None, what: str) -> UserKey | None:
    """The configured key, checked against the ``fingerprint`` an archive was sealed with.

    ``None`` for an archive that is not encrypted (``fingerprint`` is None).
    """
    if fingerprint is None:
        return None
    key = load_user_key()
    if key is None:
        raise EncryptionKeyError(
            f"{what} is encrypted (key fingerprint {fingerprint}) and no key is "
            f"configured; set {KEY_ENV_HINT}"
        )
    if key.kind == "passphrase":
        # A passphrase archive's fingerprint is its own (its salt's); opening the
        # archive tells whether the passphrase is the right one.
        return key
    if key.fingerprint != fingerprint:
        raise EncryptionKeyError(
            f"wrong key: {what} was encrypted with the key whose fingerprint is "
            f"{fingerprint}, the configured key has fingerprint {key.fingerprint}; "
            f"set {KEY_ENV_HINT} to the key used for the backup"
        )
    return key
