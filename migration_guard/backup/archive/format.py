"""The archive's byte layout: constants, the header, and reading the header's bytes.

Byte layout, key schedule and a hand-decryption script are in ``docs/format.md``;
keep the two in step. In short::

    magic(8) version(2) header_length(4) header_json header_tag(32)
    chunk 0 .. chunk N-1          (each: payload + 16-byte tag; all full but the last)
    trailer(40)                   (plain length, chunk count, tag, end magic)
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
from dataclasses import dataclass
from typing import Any, Final, Protocol

from migration_guard import __version__
from migration_guard.backup.keys import ScryptParams
from migration_guard.backup.x25519 import FINGERPRINT_PREFIX, MAX_RECIPIENTS, Stanza
from migration_guard.errors import ArchiveError

# What AESGCM and hashlib accept without a copy.
Bytes = bytes | bytearray | memoryview


class ReadableStream(Protocol):
    """What the reader needs from its source: ``read(n)`` (a BinaryIO, a pipe, a wrapper)."""

    def read(self, size: int = -1, /) -> bytes: ...


MAGIC: Final = b"\x89MGARC\r\n"
END_MAGIC: Final = b"\x89MGAEND\n"
#: The version written for unencrypted archives and those of a generated key.
FORMAT_VERSION: Final = 1
#: The version written for passphrase archives: scrypt salt and key fingerprint
#: per archive (version 1 had one fixed salt and a passphrase-wide fingerprint).
PASSPHRASE_FORMAT_VERSION: Final = 2
#: The version written for archives to X25519 recipients: a key kind, and header
#: fields, that older readers do not know (they refuse it as unsupported).
X25519_FORMAT_VERSION: Final = 3
READABLE_VERSIONS: Final = (FORMAT_VERSION, PASSPHRASE_FORMAT_VERSION, X25519_FORMAT_VERSION)
#: The key kinds a header may name, and the first format version that has each.
KEY_KINDS: Final = {"key": 1, "passphrase": 1, "x25519": X25519_FORMAT_VERSION}
COMPRESSIONS: Final = ("zstd", "gzip", "none")
CIPHER: Final = "AES-256-GCM-STREAM"
MIN_CHUNK_SIZE: Final = 64 * 1024
MAX_CHUNK_SIZE: Final = 1024 * 1024
DEFAULT_CHUNK_SIZE: Final = MAX_CHUNK_SIZE
DEFAULT_LEVELS: Final = {"zstd": 1, "gzip": 6}
LEVEL_RANGES: Final = {"zstd": (-7, 22), "gzip": (0, 9)}
TAG_SIZE: Final = 16
HEADER_TAG_SIZE: Final = 32
MAX_HEADER_LENGTH: Final = 64 * 1024
MAX_BACKUP_ID_LENGTH: Final = 256

PREFIX: Final = struct.Struct(">8sHI")  # magic, format version, header length
TRAILER: Final = struct.Struct(">QQ16s8s")  # plain length, chunk count, tag, end magic
TRAILER_COUNTS: Final = struct.Struct(">QQ")

WRAP_INFO: Final = b"migration-guard archive v1 key wrap"
PAYLOAD_INFO: Final = b"migration-guard archive v1 payload"
MAC_INFO: Final = b"migration-guard archive v1 mac"
#: HKDF label of the key that authenticates the backup's manifest (docs/format.md).
MANIFEST_INFO: Final = b"migration-guard manifest v1 mac"
#: The value of the header field ``manifest_mac``: the manifest carries an HMAC-SHA256.
MANIFEST_MAC: Final = "hmac-sha256"
TRAILER_LABEL: Final = b"migration-guard archive v1 trailer"
WRAP_NONCE: Final = bytes(12)  # the key-encryption key is single-use (random salt)

# When a chunk fails, try this many counters either side to tell "reordered" from
# "corrupted". Costs at most 4 * window chunk decryptions, and only on failure.
REORDER_WINDOW: Final = 8
COPY_SIZE: Final = 1 << 20


@dataclass(frozen=True)
class ArchiveHeader:
    """The archive header. For encrypted archives it is authenticated with the data key."""

    format_version: int
    backup_id: str
    chunk_size: int
    compression: str
    encrypted: bool
    key_fingerprint: str | None
    created_at: str
    key_kind: str | None = None
    kdf: ScryptParams | None = None
    wrap_salt: bytes | None = None
    wrapped_key: bytes | None = None
    #: The data key wrapped for each recipient (``key_kind`` ``x25519`` only).
    stanzas: tuple[Stanza, ...] = ()
    producer: str = ""
    #: ``MANIFEST_MAC`` when the manifest of this archive must carry a MAC (encrypted
    #: archives written since it exists), so that removing the MAC is a downgrade.
    manifest_mac: str | None = None

    def to_json_dict(self) -> dict[str, Any]:
        """The JSON object stored in the file (binary fields as standard base64)."""
        encryption: dict[str, Any] | None = None
        if self.encrypted:
            kdf = None
            if self.kdf is not None:
                kdf = {
                    "name": "scrypt",
                    "n": self.kdf.n,
                    "r": self.kdf.r,
                    "p": self.kdf.p,
                    "salt": b64(self.kdf.salt),
                }
            encryption = {
                "cipher": CIPHER,
                "key_kind": self.key_kind,
                "key_fingerprint": self.key_fingerprint,
                "kdf": kdf,
            }
            if self.stanzas:
                encryption["recipients"] = [
                    {
                        "type": "X25519",
                        "fingerprint": stanza.fingerprint,
                        "share": b64(stanza.share),
                        "wrapped_key": b64(stanza.wrapped_key),
                    }
                    for stanza in self.stanzas
                ]
            else:
                encryption["wrap_salt"] = b64(self.wrap_salt or b"")
                encryption["wrapped_key"] = b64(self.wrapped_key or b"")
        return {
            "format_version": self.format_version,
            "backup_id": self.backup_id,
            "created_at": self.created_at,
            "chunk_size": self.chunk_size,
            "compression": self.compression,
            "encryption": encryption,
            "producer": self.producer,
            **({"manifest_mac": self.manifest_mac} if self.manifest_mac else {}),
        }


@dataclass(frozen=True)
class ArchiveStats:
    """What a finished writer produced. ``sha256`` is over the stored file bytes."""

    plain_bytes: int
    stored_bytes: int
    sha256: str


def b64(data: bytes) -> str:
    """Standard base64 text, as binary header fields are stored."""
    return base64.b64encode(data).decode("ascii")


def unb64(text: object, what: str) -> bytes:
    """The bytes of a base64 header field; ValueError naming ``what`` when it is not one."""
    if not isinstance(text, str):
        raise ValueError(f"{what} is not a string")
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise ValueError(f"{what} is not base64") from None


def read_exact(src: ReadableStream, size: int) -> bytes:
    """Read ``size`` bytes, fewer only at end of stream (pipes return short reads)."""
    parts: list[bytes] = []
    remaining = size
    while remaining > 0:
        piece = src.read(remaining)
        if not piece:
            break
        parts.append(piece)
        remaining -= len(piece)
    return b"".join(parts)


def corrupted(message: str) -> ArchiveError:
    """An :class:`ArchiveError` with the reason ``corrupted``."""
    return ArchiveError(message, reason="corrupted")


def encode_header(header: ArchiveHeader) -> bytes:
    """The prefix and JSON body of ``header`` as stored (its tag follows)."""
    body = json.dumps(header.to_json_dict(), sort_keys=True, separators=(",", ":")).encode()
    return PREFIX.pack(MAGIC, header.format_version, len(body)) + body


def _field(obj: dict[str, Any], name: str, kind: type) -> Any:
    value = obj.get(name)
    # bool is an int subclass; a JSON true must not pass for a number.
    if type(value) is not kind:
        raise ValueError(f"field {name!r} is missing or not a {kind.__name__}")
    return value


def _parse_stanzas(value: object) -> tuple[Stanza, ...]:
    """The ``recipients`` of an X25519 header: 1..MAX_RECIPIENTS well-formed stanzas."""
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_RECIPIENTS:
        raise ValueError(f"an x25519 archive needs 1..{MAX_RECIPIENTS} recipients")
    stanzas = []
    for item in value:
        if not isinstance(item, dict) or item.get("type") != "X25519":
            raise ValueError("a recipient stanza is not an X25519 one")
        fingerprint = _field(item, "fingerprint", str)
        digits = fingerprint[len(FINGERPRINT_PREFIX) :]
        well_formed = len(digits) == 16 and all(c in "0123456789abcdef" for c in digits)
        if not fingerprint.startswith(FINGERPRINT_PREFIX) or not well_formed:
            raise ValueError("a recipient fingerprint is malformed")
        share = unb64(item.get("share"), "a recipient's share")
        wrapped = unb64(item.get("wrapped_key"), "a recipient's wrapped_key")
        if len(share) != 32 or len(wrapped) != 32 + TAG_SIZE:
            raise ValueError("a recipient's share or wrapped_key has the wrong length")
        stanzas.append(Stanza(fingerprint, share, wrapped))
    return tuple(stanzas)


def _parse_header(raw: bytes, version: int) -> ArchiveHeader:
    try:
        obj = json.loads(raw.decode("utf-8"))
        if not isinstance(obj, dict):
            raise ValueError("the header is not a JSON object")
        if _field(obj, "format_version", int) != version:
            raise ValueError("the header's format version differs from the file's")
        compression = _field(obj, "compression", str)
        if compression not in COMPRESSIONS:
            raise ValueError(f"unknown compression {compression!r}")
        chunk_size = _field(obj, "chunk_size", int)
        if not MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE:
            raise ValueError(f"chunk size {chunk_size} out of range")
        encryption = obj.get("encryption")
        manifest_mac = obj.get("manifest_mac")
        common = {
            "format_version": version,
            "backup_id": _field(obj, "backup_id", str),
            "created_at": _field(obj, "created_at", str),
            "chunk_size": chunk_size,
            "compression": compression,
            "producer": obj.get("producer") if isinstance(obj.get("producer"), str) else "",
            "manifest_mac": manifest_mac if isinstance(manifest_mac, str) else None,
        }
        if encryption is None:
            return ArchiveHeader(encrypted=False, key_fingerprint=None, **common)
        if not isinstance(encryption, dict):
            raise ValueError("field 'encryption' is not an object")
        if encryption.get("cipher") != CIPHER:
            raise ValueError(f"unknown cipher {encryption.get('cipher')!r}")
        key_kind = _field(encryption, "key_kind", str)
        if key_kind not in KEY_KINDS:
            raise ValueError(f"unknown key kind {key_kind!r}")
        if version < KEY_KINDS[key_kind]:
            raise ValueError(f"key kind {key_kind!r} in a format version {version} header")
        kdf = None
        kdf_obj = encryption.get("kdf")
        if key_kind == "passphrase":
            if not isinstance(kdf_obj, dict) or kdf_obj.get("name") != "scrypt":
                raise ValueError("a passphrase archive needs scrypt parameters")
            kdf = ScryptParams(
                n=_field(kdf_obj, "n", int),
                r=_field(kdf_obj, "r", int),
                p=_field(kdf_obj, "p", int),
                salt=unb64(kdf_obj.get("salt"), "the scrypt salt"),
            )
            kdf.validate()
        elif kdf_obj is not None:
            raise ValueError("a key archive has no kdf")
        fingerprint = _field(encryption, "key_fingerprint", str)
        wrap_salt = wrapped_key = None
        stanzas: tuple[Stanza, ...] = ()
        if key_kind == "x25519":
            stanzas = _parse_stanzas(encryption.get("recipients"))
            if fingerprint != ",".join(stanza.fingerprint for stanza in stanzas):
                raise ValueError("key_fingerprint does not list the recipients' fingerprints")
        else:
            wrap_salt = unb64(encryption.get("wrap_salt"), "wrap_salt")
            wrapped_key = unb64(encryption.get("wrapped_key"), "wrapped_key")
            if len(wrap_salt) != 32 or len(wrapped_key) != 32 + TAG_SIZE:
                raise ValueError("wrap_salt or wrapped_key has the wrong length")
        return ArchiveHeader(
            encrypted=True,
            key_fingerprint=fingerprint,
            key_kind=key_kind,
            kdf=kdf,
            wrap_salt=wrap_salt,
            wrapped_key=wrapped_key,
            stanzas=stanzas,
            **common,
        )
    except (UnicodeDecodeError, ValueError, TypeError) as exc:
        raise corrupted(f"the archive header is damaged: {exc}") from None


def _not_an_archive(start: bytes) -> ArchiveError:
    hint = ""
    if start.startswith(b"\x1f\x8b"):
        hint = " (it is a gzip file: try `zcat`)"
    elif start.startswith(b"\x28\xb5\x2f\xfd"):
        hint = " (it is a zstd file: try `zstd -d`)"
    elif start.startswith(b"Salted__"):
        hint = " (it looks like an `openssl enc` file: decrypt it with openssl)"
    return ArchiveError(f"this is not a migration-guard archive{hint}", reason="not-an-archive")


def read_header_parts(src: ReadableStream) -> tuple[ArchiveHeader, bytes, bytes]:
    """Header, the bytes its tag covers, and the tag itself."""
    prefix = read_exact(src, PREFIX.size)
    if len(prefix) < PREFIX.size:
        if MAGIC.startswith(prefix[: len(MAGIC)]):
            what = "empty" if not prefix else "cut short inside its header"
            raise ArchiveError(
                f"the archive is {what}: the backup was interrupted or the file was truncated",
                reason="truncated",
            )
        raise _not_an_archive(prefix)
    magic, version, header_length = PREFIX.unpack(prefix)
    if magic != MAGIC:
        raise _not_an_archive(prefix)
    if version not in READABLE_VERSIONS:
        readable = " and ".join(str(v) for v in READABLE_VERSIONS)
        raise ArchiveError(
            f"archive format version {version} is not supported: migration-guard "
            f"{__version__} reads versions {readable}; use the migration-guard "
            "version that wrote it (or the file is damaged)",
            reason="unsupported-version",
        )
    if not 2 <= header_length <= MAX_HEADER_LENGTH:
        raise corrupted(f"the archive header length {header_length} is implausible")
    rest = read_exact(src, header_length + HEADER_TAG_SIZE)
    if len(rest) < header_length + HEADER_TAG_SIZE:
        raise ArchiveError(
            "the archive is cut short inside its header: the backup was interrupted "
            "or the file was truncated",
            reason="truncated",
        )
    raw = rest[:header_length]
    header = _parse_header(raw, version)
    return header, prefix + raw, rest[header_length:]
