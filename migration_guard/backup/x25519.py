"""Public-key recipients: X25519 keys in age's encodings, and the data key wrapped for them.

A *recipient* is a public key, ``age1...`` (Bech32, HRP ``age``); an *identity*
is the matching private key, ``AGE-SECRET-KEY-1...`` (Bech32, HRP
``AGE-SECRET-KEY-``, upper case), exactly as ``age-keygen`` writes them, so its
key files work unchanged. A backup host that holds only recipients can write
archives but read none, its own past ones included.

Each archive's data key is wrapped once per recipient, as age does (see
``docs/format.md``, "X25519 recipients")::

    share   = X25519(ephemeral, basepoint)             # a fresh ephemeral key per stanza
    shared  = X25519(ephemeral, recipient)
    kek     = HKDF-SHA256(ikm=shared, salt=share || recipient, info=WRAP_LABEL)
    wrapped = AES-256-GCM(kek, nonce=12 zero bytes, data_key, aad=WRAP_LABEL)

No message, ``repr`` or log line produced here contains an identity.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from migration_guard.backup import bech32
from migration_guard.errors import EncryptionKeyError

RECIPIENT_HRP: Final = "age"
IDENTITY_HRP: Final = "age-secret-key-"
#: How an identity's text starts (upper case, as age-keygen writes it).
IDENTITY_PREFIX: Final = "AGE-SECRET-KEY-1"
RECIPIENT_PREFIX: Final = "age1"
KEY_BYTES: Final = 32
#: Prefix of a recipient's fingerprint, so it is never taken for a generated key's.
FINGERPRINT_PREFIX: Final = "x25519:"
FINGERPRINT_LABEL: Final = b"migration-guard x25519 recipient fingerprint v1"
WRAP_LABEL: Final = b"migration-guard archive v3 x25519 key wrap"
WRAP_NONCE: Final = bytes(12)  # the key-encryption key is single-use (fresh ephemeral key)
#: More recipients than this per archive is a mistake (and bounds a forged header's work).
MAX_RECIPIENTS: Final = 16


def fingerprint_of(public: bytes) -> str:
    """``x25519:`` and the first 16 hex digits of SHA-256(label || public key)."""
    return FINGERPRINT_PREFIX + hashlib.sha256(FINGERPRINT_LABEL + public).hexdigest()[:16]


@dataclass(frozen=True)
class Recipient:
    """A public key an archive is encrypted to."""

    public: bytes

    @property
    def fingerprint(self) -> str:
        return fingerprint_of(self.public)

    @property
    def text(self) -> str:
        """The ``age1...`` form."""
        return bech32.encode(RECIPIENT_HRP, self.public)


@dataclass(frozen=True, repr=False)
class Identity:
    """A private key. ``repr``/``str`` show the fingerprint only."""

    _secret: bytes = field(compare=False)
    recipient: Recipient

    def __repr__(self) -> str:
        return f"Identity(fingerprint={self.recipient.fingerprint!r})"

    __str__ = __repr__

    @classmethod
    def from_secret(cls, secret: bytes) -> Identity:
        private = X25519PrivateKey.from_private_bytes(secret)
        return cls(secret, Recipient(private.public_key().public_bytes_raw()))

    @property
    def text(self) -> str:
        """The ``AGE-SECRET-KEY-1...`` form. A secret: never log or print it by accident."""
        return bech32.encode(IDENTITY_HRP, self._secret, upper=True)


@dataclass(frozen=True)
class Stanza:
    """The data key wrapped for one recipient, as recorded in the archive header."""

    fingerprint: str
    share: bytes
    wrapped_key: bytes


def _decode(text: str, hrp: str, what: str, where: str, fix: str) -> bytes:
    try:
        found, data = bech32.decode(text)
    except bech32.Bech32Error as exc:
        raise EncryptionKeyError(f"the {what}{where} is damaged: it {exc}; {fix}") from None
    if found != hrp or len(data) != KEY_BYTES:
        raise EncryptionKeyError(f"the value{where} is not an X25519 {what} (age's format); {fix}")
    return data


def parse_recipient(text: str, *, source: str = "") -> Recipient:
    """An ``age1...`` public key; EncryptionKeyError naming ``source`` when it is not one."""
    where = f" in {source}" if source else ""
    candidate = text.strip()
    fix = "copy the `# public key: age1...` line of the identity file again"
    if not candidate.lower().startswith(RECIPIENT_PREFIX):
        if candidate.upper().startswith(IDENTITY_PREFIX):
            raise EncryptionKeyError(
                f"the value{where} is a private key (AGE-SECRET-KEY-1...), not a recipient: "
                "a backup host needs only the public key (age1...); keep the private key "
                "off it"
            )
        raise EncryptionKeyError(
            f"the value{where} is not a recipient: a recipient is an age public key "
            f"starting with {RECIPIENT_PREFIX!r}; {fix}"
        )
    public = _decode(candidate, RECIPIENT_HRP, "recipient", where, fix)
    try:  # a low-order point gives every archive the same, all-zero "shared secret"
        shared = X25519PrivateKey.generate().exchange(X25519PublicKey.from_public_bytes(public))
    except ValueError:
        shared = b""
    if not any(shared):
        raise EncryptionKeyError(
            f"the recipient{where} is not a usable X25519 public key (a low-order point); {fix}"
        )
    return Recipient(public)


def parse_identity(text: str, *, source: str = "") -> Identity:
    """An ``AGE-SECRET-KEY-1...`` private key; the message never repeats the text."""
    where = f" in {source}" if source else ""
    fix = "copy it again from the file `migration-guard keygen --x25519` or age-keygen wrote"
    secret = _decode(text.strip(), IDENTITY_HRP, "identity", where, fix)
    return Identity.from_secret(secret)


def parse_recipients(text: str, *, source: str) -> tuple[Recipient, ...]:
    """Recipients separated by commas, white space or new lines; ``#`` starts a comment line.

    Duplicates are dropped; none at all, or more than MAX_RECIPIENTS, is an error.
    """
    found: dict[bytes, Recipient] = {}
    for line in text.splitlines():
        if line.strip().startswith("#"):
            continue
        for item in line.replace(",", " ").split():
            recipient = parse_recipient(item, source=source)
            found.setdefault(recipient.public, recipient)
    if not found:
        raise EncryptionKeyError(
            f"{source} holds no recipient; put one or more age public keys (age1...) in it"
        )
    if len(found) > MAX_RECIPIENTS:
        raise EncryptionKeyError(
            f"{source} holds {len(found)} recipients; at most {MAX_RECIPIENTS} are allowed"
        )
    return tuple(found.values())


def generate_identity() -> Identity:
    """A new random identity."""
    private = X25519PrivateKey.generate()
    return Identity.from_secret(private.private_bytes_raw())


def identity_file_text(identity: Identity, now: datetime | None = None) -> str:
    """The identity in age-keygen's file format: two comment lines and the secret line."""
    moment = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    return (
        f"# created: {moment.strftime('%Y-%m-%dT%H:%M:%SZ')}\n"
        f"# public key: {identity.recipient.text}\n"
        f"{identity.text}\n"
    )


def _kek(shared: bytes, share: bytes, public: bytes) -> bytes:
    if not any(shared):
        # A low-order point as the share: X25519 gives zero, which is no secret at all.
        raise ValueError("the X25519 shared secret is zero")
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=share + public, info=WRAP_LABEL).derive(
        shared
    )


def wrap_for(recipient: Recipient, data_key: bytes) -> Stanza:
    """``data_key`` wrapped for ``recipient`` with a fresh ephemeral key."""
    ephemeral = X25519PrivateKey.generate()
    share = ephemeral.public_key().public_bytes_raw()
    shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(recipient.public))
    kek = _kek(shared, share, recipient.public)
    wrapped = AESGCM(kek).encrypt(WRAP_NONCE, data_key, WRAP_LABEL)
    return Stanza(recipient.fingerprint, share, wrapped)


def unwrap_with(identity: Identity, stanza: Stanza) -> bytes | None:
    """The data key of ``stanza`` when ``identity`` opens it, else None (never garbage)."""
    secret = X25519PrivateKey.from_private_bytes(identity._secret)
    try:
        shared = secret.exchange(X25519PublicKey.from_public_bytes(stanza.share))
        kek = _kek(shared, stanza.share, identity.recipient.public)
        return AESGCM(kek).decrypt(WRAP_NONCE, stanza.wrapped_key, WRAP_LABEL)
    except (InvalidTag, ValueError):
        return None
