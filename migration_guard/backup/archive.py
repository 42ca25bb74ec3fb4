"""The backup archive container: authenticated header, compression, chunked AEAD stream.

Byte layout, key schedule and a hand-decryption script are in ``docs/format.md``;
keep the two in step. In short::

    magic(8) version(2) header_length(4) header_json header_tag(32)
    chunk 0 .. chunk N-1          (each: payload + 16-byte tag; all full but the last)
    trailer(40)                   (plain length, chunk count, tag, end magic)

Data flows plaintext -> zstd/gzip/none -> fixed-size chunks -> AES-256-GCM in the
STREAM construction (nonce = 11-byte chunk counter || last-chunk flag), or for
unencrypted archives a truncated SHA-256 per chunk with the same counter and flag.
Reading and writing are streaming: memory stays at a few chunks whatever the size.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import io
import json
import os
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, BinaryIO, Final, Protocol, cast

import zstandard
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from migration_guard import __version__
from migration_guard.backup.keys import (
    DEFAULT_SCRYPT,
    ScryptParams,
    UserKey,
    archive_root,
)
from migration_guard.config import KEY_ENV, KEY_FILE_ENV, PASSPHRASE_ENV
from migration_guard.errors import ArchiveError, BackupError, ConfigError, EncryptionKeyError

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer, WriteableBuffer

# What AESGCM and hashlib accept without a copy.
_Bytes = bytes | bytearray | memoryview


class ReadableStream(Protocol):
    """What the reader needs from its source: ``read(n)`` (a BinaryIO, a pipe, a wrapper)."""

    def read(self, size: int = -1, /) -> bytes: ...


MAGIC: Final = b"\x89MGARC\r\n"
END_MAGIC: Final = b"\x89MGAEND\n"
FORMAT_VERSION: Final = 1
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
    producer: str = ""

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
                    "salt": _b64(self.kdf.salt),
                }
            encryption = {
                "cipher": CIPHER,
                "key_kind": self.key_kind,
                "key_fingerprint": self.key_fingerprint,
                "kdf": kdf,
                "wrap_salt": _b64(self.wrap_salt or b""),
                "wrapped_key": _b64(self.wrapped_key or b""),
            }
        return {
            "format_version": self.format_version,
            "backup_id": self.backup_id,
            "created_at": self.created_at,
            "chunk_size": self.chunk_size,
            "compression": self.compression,
            "encryption": encryption,
            "producer": self.producer,
        }


@dataclass(frozen=True)
class ArchiveStats:
    """What a finished writer produced. ``sha256`` is over the stored file bytes."""

    plain_bytes: int
    stored_bytes: int
    sha256: str


# -- small helpers -----------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: object, what: str) -> bytes:
    if not isinstance(text, str):
        raise ValueError(f"{what} is not a string")
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise ValueError(f"{what} is not base64") from None


def _hkdf(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(ikm)


def _nonce(counter: int, last: bool) -> bytes:
    return counter.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


def _read_exact(src: ReadableStream, size: int) -> bytes:
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


def _corrupted(message: str) -> ArchiveError:
    return ArchiveError(message, reason="corrupted")


# -- chunk codecs ------------------------------------------------------------------


class _ChunkCodec(Protocol):
    def header_tag(self, prefix_and_header: bytes) -> bytes: ...

    def seal(self, counter: int, last: bool, data: _Bytes) -> Sequence[_Bytes]: ...

    def open(self, counter: int, last: bool, stored: bytes) -> bytes | None: ...

    def trailer_tag(self, plain_bytes: int, chunks: int) -> bytes: ...

    @property
    def check_name(self) -> str: ...


class _GcmCodec:
    """AES-256-GCM STREAM with a per-archive data key; HMAC-SHA256 for header and trailer."""

    check_name = "authentication"

    def __init__(self, data_key: bytes) -> None:
        self._aead = AESGCM(_hkdf(data_key, b"", PAYLOAD_INFO))
        self._mac_key = _hkdf(data_key, b"", MAC_INFO)

    def header_tag(self, prefix_and_header: bytes) -> bytes:
        return hmac.new(self._mac_key, prefix_and_header, hashlib.sha256).digest()

    def seal(self, counter: int, last: bool, data: _Bytes) -> Sequence[_Bytes]:
        return [self._aead.encrypt(_nonce(counter, last), data, None)]

    def open(self, counter: int, last: bool, stored: bytes) -> bytes | None:
        if len(stored) < TAG_SIZE:
            return None
        try:
            return self._aead.decrypt(_nonce(counter, last), stored, None)
        except InvalidTag:
            return None

    def trailer_tag(self, plain_bytes: int, chunks: int) -> bytes:
        message = TRAILER_LABEL + TRAILER_COUNTS.pack(plain_bytes, chunks)
        return hmac.new(self._mac_key, message, hashlib.sha256).digest()[:TAG_SIZE]


class _HashCodec:
    """Unencrypted framing: SHA-256(header tag || nonce || data) truncated to 16 bytes.

    It detects accidents (truncation, bit rot, reordering), not deliberate forgery:
    anyone can recompute it. Encrypt to get authenticity.
    """

    check_name = "its checksum"

    def __init__(self, header_tag: bytes) -> None:
        self._base = hashlib.sha256(header_tag)

    @staticmethod
    def header_tag(prefix_and_header: bytes) -> bytes:
        return hashlib.sha256(prefix_and_header).digest()

    def _tag(self, counter: int, last: bool, data: _Bytes) -> bytes:
        digest = self._base.copy()
        digest.update(_nonce(counter, last))
        digest.update(data)
        return digest.digest()[:TAG_SIZE]

    def seal(self, counter: int, last: bool, data: _Bytes) -> Sequence[_Bytes]:
        return [data, self._tag(counter, last, data)]

    def open(self, counter: int, last: bool, stored: bytes) -> bytes | None:
        if len(stored) < TAG_SIZE:
            return None
        payload = stored[:-TAG_SIZE]
        if hmac.compare_digest(self._tag(counter, last, payload), stored[-TAG_SIZE:]):
            return payload
        return None

    def trailer_tag(self, plain_bytes: int, chunks: int) -> bytes:
        digest = self._base.copy()
        digest.update(TRAILER_LABEL + TRAILER_COUNTS.pack(plain_bytes, chunks))
        return digest.digest()[:TAG_SIZE]


# -- writing -----------------------------------------------------------------------


class _HashingSink:
    """Writes to the destination while counting and hashing every stored byte."""

    def __init__(self, dest: BinaryIO) -> None:
        self._dest = dest
        self._sha256 = hashlib.sha256()
        self.count = 0

    def write(self, data: _Bytes) -> None:
        view = memoryview(data).cast("B")
        self._sha256.update(view)
        written = 0
        while written < len(view):
            result = self._dest.write(view[written:])
            if result is None:
                written = len(view)  # buffered writers may return None: they took it all
            elif result <= 0:
                raise OSError("the archive destination accepted no bytes")
            else:
                written += result
        self.count += len(view)

    def hexdigest(self) -> str:
        return self._sha256.hexdigest()


class _ChunkSink:
    """Cuts the compressed stream into fixed chunks and seals them.

    The last ``chunk_size`` bytes or fewer are held back until more data or
    ``finish`` arrives, because a chunk's nonce must say whether it is the last.
    Whole chunks of a large write are sealed straight from the caller's buffer.
    """

    def __init__(self, codec: _ChunkCodec, chunk_size: int, out: _HashingSink) -> None:
        self._codec = codec
        self._chunk_size = chunk_size
        self._out = out
        self._pending = bytearray()
        self._counter = 0

    def _emit(self, data: _Bytes, last: bool) -> None:
        for piece in self._codec.seal(self._counter, last, data):
            self._out.write(piece)
        self._counter += 1

    def write(self, data: ReadableBuffer) -> int:
        view = memoryview(data).cast("B")
        size = len(view)
        position = 0
        chunk_size = self._chunk_size
        pending = self._pending
        while position < size:
            if len(pending) == chunk_size:
                self._emit(pending, last=False)
                pending.clear()
            if not pending and size - position > chunk_size:
                self._emit(view[position : position + chunk_size], last=False)
                position += chunk_size
                continue
            take = min(chunk_size - len(pending), size - position)
            pending += view[position : position + take]
            position += take
        return size

    def flush(self) -> None:
        """Nothing to do: a partial chunk cannot be sealed before its successor is known."""

    def finish(self, plain_bytes: int) -> None:
        self._emit(self._pending, last=True)
        self._pending.clear()
        tag = self._codec.trailer_tag(plain_bytes, self._counter)
        self._out.write(TRAILER.pack(plain_bytes, self._counter, tag, END_MAGIC))


class ArchiveWriter:
    """A binary sink that compresses, chunks and seals what is written to it.

    ``close()`` writes the final chunk and trailer (it does not close ``dest``).
    Leaving a ``with`` block by an exception, or calling ``abort()``, stops without
    them, so an interrupted archive always reads as truncated, never as complete.
    """

    def __init__(
        self,
        dest: BinaryIO,
        *,
        header: ArchiveHeader,
        codec: _ChunkCodec,
        header_bytes: bytes,
        level: int,
        threads: int,
    ) -> None:
        self.header = header
        self._dest = dest
        self._out = _HashingSink(dest)
        self._out.write(header_bytes)
        self._chunks = _ChunkSink(codec, header.chunk_size, self._out)
        self._plain_bytes = 0
        self._state = "open"
        self._stats: ArchiveStats | None = None
        self._zstd: Any = None
        self._deflate: Any = None
        if header.compression == "zstd":
            compressor = zstandard.ZstdCompressor(level=level, threads=threads, write_checksum=True)
            # The sink only needs write() and flush(); zstandard's stubs ask for a full IO.
            self._zstd = compressor.stream_writer(cast(IO[bytes], self._chunks), closefd=False)
        elif header.compression == "gzip":
            # wbits=31: a gzip member (RFC 1952), so the unframed stream is zcat-able.
            self._deflate = zlib.compressobj(level, zlib.DEFLATED, 31)

    @property
    def closed(self) -> bool:
        """True once closed or aborted."""
        return self._state != "open"

    def writable(self) -> bool:
        """Always True: this is a write-only stream."""
        return True

    def write(self, data: ReadableBuffer) -> int:
        """Compress and seal ``data``; returns its length in bytes."""
        if self._state != "open":
            raise ValueError(f"write to a {self._state} archive writer")
        size = memoryview(data).nbytes
        if not size:
            return 0
        try:
            if self._zstd is not None:
                self._zstd.write(data)
            elif self._deflate is not None:
                compressed = self._deflate.compress(data)
                if compressed:
                    self._chunks.write(compressed)
            else:
                self._chunks.write(data)
        except BaseException:
            self._state = "failed"
            raise
        self._plain_bytes += size
        return size

    def flush(self) -> None:
        """Flush the destination. Sealed chunks only; the held-back tail stays buffered."""
        flush = getattr(self._dest, "flush", None)
        if flush is not None:
            flush()

    def close(self) -> None:
        """Finish the archive: flush the compressor, seal the final chunk, write the trailer."""
        if self._state in ("closed", "aborted"):
            return
        if self._state == "failed":
            self._state = "aborted"
            raise BackupError("the archive was not finished because an earlier write to it failed")
        try:
            if self._zstd is not None:
                self._zstd.close()
            elif self._deflate is not None:
                self._chunks.write(self._deflate.flush())
            self._chunks.finish(self._plain_bytes)
            self.flush()
        except BaseException:
            self._state = "aborted"
            raise
        self._state = "closed"
        self._stats = ArchiveStats(
            plain_bytes=self._plain_bytes,
            stored_bytes=self._out.count,
            sha256=self._out.hexdigest(),
        )

    def abort(self) -> None:
        """Stop without the final chunk and trailer: readers will report "truncated"."""
        if self._state != "closed":
            self._state = "aborted"
            self._zstd = None
            self._deflate = None

    @property
    def stats(self) -> ArchiveStats:
        """Sizes and hash of the finished archive; available after ``close()``."""
        if self._stats is None:
            raise ValueError("archive stats are known only after the writer is closed")
        return self._stats

    def __enter__(self) -> ArchiveWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def _validate_writer_options(
    backup_id: str, compression: str, level: int | None, chunk_size: int, threads: int
) -> int:
    if not isinstance(backup_id, str) or not backup_id or len(backup_id) > MAX_BACKUP_ID_LENGTH:
        raise ConfigError(
            f"a backup id must be 1..{MAX_BACKUP_ID_LENGTH} characters", key="backup_id"
        )
    if compression not in COMPRESSIONS:
        raise ConfigError(
            f"unknown compression {compression!r}; choose one of {', '.join(COMPRESSIONS)}",
            key="compression",
        )
    if not MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE:
        raise ConfigError(
            f"chunk size {chunk_size} is outside {MIN_CHUNK_SIZE}..{MAX_CHUNK_SIZE} bytes",
            key="chunk_size",
        )
    if not -1 <= threads <= 64:
        raise ConfigError(f"compression threads {threads} is outside -1..64", key="threads")
    if compression == "none":
        return 0
    if level is None:
        return DEFAULT_LEVELS[compression]
    low, high = LEVEL_RANGES[compression]
    if not low <= level <= high:
        raise ConfigError(f"{compression} level {level} is outside {low}..{high}", key="level")
    return level


def _encode_header(header: ArchiveHeader) -> bytes:
    body = json.dumps(header.to_json_dict(), sort_keys=True, separators=(",", ":")).encode()
    return PREFIX.pack(MAGIC, header.format_version, len(body)) + body


def open_writer(
    dest: BinaryIO,
    *,
    backup_id: str,
    compression: str = "zstd",
    level: int | None = None,
    key: UserKey | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    threads: int = 2,
) -> ArchiveWriter:
    """Start an archive on ``dest``; encrypted when ``key`` is given.

    ``level`` defaults to 1 for zstd and 6 for gzip. ``threads`` are zstd worker
    threads (0: compress in the calling thread). Writes the header immediately.
    """
    level = _validate_writer_options(backup_id, compression, level, chunk_size, threads)
    created_at = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    producer = f"migration-guard {__version__}"
    codec: _ChunkCodec
    if key is None:
        header = ArchiveHeader(
            format_version=FORMAT_VERSION,
            backup_id=backup_id,
            chunk_size=chunk_size,
            compression=compression,
            encrypted=False,
            key_fingerprint=None,
            created_at=created_at,
            producer=producer,
        )
        header_bytes = _encode_header(header)
        header_tag = _HashCodec.header_tag(header_bytes)
        codec = _HashCodec(header_tag)
    else:
        kdf = DEFAULT_SCRYPT if key.kind == "passphrase" else None
        data_key = os.urandom(32)
        wrap_salt = os.urandom(32)
        key_encryption_key = _hkdf(archive_root(key, kdf), wrap_salt, WRAP_INFO)
        wrapped_key = AESGCM(key_encryption_key).encrypt(WRAP_NONCE, data_key, WRAP_INFO)
        header = ArchiveHeader(
            format_version=FORMAT_VERSION,
            backup_id=backup_id,
            chunk_size=chunk_size,
            compression=compression,
            encrypted=True,
            key_fingerprint=key.fingerprint,
            created_at=created_at,
            key_kind=key.kind,
            kdf=kdf,
            wrap_salt=wrap_salt,
            wrapped_key=wrapped_key,
            producer=producer,
        )
        header_bytes = _encode_header(header)
        codec = _GcmCodec(data_key)
        header_tag = codec.header_tag(header_bytes)
    return ArchiveWriter(
        dest,
        header=header,
        codec=codec,
        header_bytes=header_bytes + header_tag,
        level=level,
        threads=threads,
    )


# -- reading the header --------------------------------------------------------------


def _field(obj: dict[str, Any], name: str, kind: type) -> Any:
    value = obj.get(name)
    # bool is an int subclass; a JSON true must not pass for a number.
    if type(value) is not kind:
        raise ValueError(f"field {name!r} is missing or not a {kind.__name__}")
    return value


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
        common = {
            "format_version": version,
            "backup_id": _field(obj, "backup_id", str),
            "created_at": _field(obj, "created_at", str),
            "chunk_size": chunk_size,
            "compression": compression,
            "producer": obj.get("producer") if isinstance(obj.get("producer"), str) else "",
        }
        if encryption is None:
            return ArchiveHeader(encrypted=False, key_fingerprint=None, **common)
        if not isinstance(encryption, dict):
            raise ValueError("field 'encryption' is not an object")
        if encryption.get("cipher") != CIPHER:
            raise ValueError(f"unknown cipher {encryption.get('cipher')!r}")
        key_kind = _field(encryption, "key_kind", str)
        if key_kind not in ("key", "passphrase"):
            raise ValueError(f"unknown key kind {key_kind!r}")
        kdf = None
        kdf_obj = encryption.get("kdf")
        if key_kind == "passphrase":
            if not isinstance(kdf_obj, dict) or kdf_obj.get("name") != "scrypt":
                raise ValueError("a passphrase archive needs scrypt parameters")
            kdf = ScryptParams(
                n=_field(kdf_obj, "n", int),
                r=_field(kdf_obj, "r", int),
                p=_field(kdf_obj, "p", int),
                salt=_unb64(kdf_obj.get("salt"), "the scrypt salt"),
            )
            kdf.validate()
        elif kdf_obj is not None:
            raise ValueError("a key archive has no kdf")
        wrap_salt = _unb64(encryption.get("wrap_salt"), "wrap_salt")
        wrapped_key = _unb64(encryption.get("wrapped_key"), "wrapped_key")
        if len(wrap_salt) != 32 or len(wrapped_key) != 32 + TAG_SIZE:
            raise ValueError("wrap_salt or wrapped_key has the wrong length")
        return ArchiveHeader(
            encrypted=True,
            key_fingerprint=_field(encryption, "key_fingerprint", str),
            key_kind=key_kind,
            kdf=kdf,
            wrap_salt=wrap_salt,
            wrapped_key=wrapped_key,
            **common,
        )
    except (UnicodeDecodeError, ValueError, TypeError) as exc:
        raise _corrupted(f"the archive header is damaged: {exc}") from None


def _not_an_archive(start: bytes) -> ArchiveError:
    hint = ""
    if start.startswith(b"\x1f\x8b"):
        hint = " (it is a gzip file: try `zcat`)"
    elif start.startswith(b"\x28\xb5\x2f\xfd"):
        hint = " (it is a zstd file: try `zstd -d`)"
    elif start.startswith(b"Salted__"):
        hint = " (it looks like an `openssl enc` file: decrypt it with openssl)"
    return ArchiveError(f"this is not a migration-guard archive{hint}", reason="not-an-archive")


def _read_header_parts(src: ReadableStream) -> tuple[ArchiveHeader, bytes, bytes]:
    """Header, the bytes its tag covers, and the tag itself."""
    prefix = _read_exact(src, PREFIX.size)
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
    if version != FORMAT_VERSION:
        raise ArchiveError(
            f"archive format version {version} is not supported: migration-guard "
            f"{__version__} reads version {FORMAT_VERSION}; use the migration-guard "
            "version that wrote it (or the file is damaged)",
            reason="unsupported-version",
        )
    if not 2 <= header_length <= MAX_HEADER_LENGTH:
        raise _corrupted(f"the archive header length {header_length} is implausible")
    rest = _read_exact(src, header_length + HEADER_TAG_SIZE)
    if len(rest) < header_length + HEADER_TAG_SIZE:
        raise ArchiveError(
            "the archive is cut short inside its header: the backup was interrupted "
            "or the file was truncated",
            reason="truncated",
        )
    raw = rest[:header_length]
    header = _parse_header(raw, version)
    return header, prefix + raw, rest[header_length:]


def read_header(src: ReadableStream) -> ArchiveHeader:
    """Read the header without a key (for ``backups show`` and error messages).

    An unencrypted header is checked against its hash; an encrypted one can only be
    authenticated with the key, so treat its fields as claims until ``open_reader``.
    """
    header, covered, tag = _read_header_parts(src)
    if not header.encrypted and not hmac.compare_digest(_HashCodec.header_tag(covered), tag):
        raise _corrupted("the archive header does not match its checksum")
    return header


# -- reading chunks ----------------------------------------------------------------


class _ChunkSource:
    """File-like ``read(n)`` over the verified payload of successive chunks.

    Returns b"" only after the final chunk (last flag set) and the trailer have been
    verified; a stream that stops before that raises "truncated".
    """

    def __init__(
        self, src: ReadableStream, codec: _ChunkCodec, chunk_size: int, offset: int
    ) -> None:
        self._src = src
        self._codec = codec
        self._stored_size = chunk_size + TAG_SIZE
        self._buffer = bytearray()
        self._src_exhausted = False
        self._counter = 0
        self._offset = offset
        self._current = b""
        self._position = 0
        self.finished = False
        self.plain_bytes_expected = 0

    def read(self, size: int = -1) -> bytes:
        while self._position >= len(self._current):
            if self.finished:
                return b""
            self._current = self._next_chunk()
            self._position = 0
        available = len(self._current) - self._position
        if size < 0 or size >= available:
            data = self._current if self._position == 0 else self._current[self._position :]
            self._position = len(self._current)
            return data
        data = self._current[self._position : self._position + size]
        self._position += size
        return data

    def _fill(self, wanted: int) -> None:
        while len(self._buffer) < wanted and not self._src_exhausted:
            piece = self._src.read(wanted - len(self._buffer))
            if not piece:
                self._src_exhausted = True
            else:
                self._buffer += piece

    def _next_chunk(self) -> bytes:
        stored_size = self._stored_size
        trailer_size = TRAILER.size
        counter = self._counter
        self._fill(stored_size + trailer_size + 1)
        if len(self._buffer) > stored_size + trailer_size:
            # More than a chunk and a trailer follow, so this chunk is not the last.
            stored = bytes(self._buffer[:stored_size])
            del self._buffer[:stored_size]
            plain = self._codec.open(counter, False, stored)
            if plain is None:
                raise self._diagnose(counter, False, stored)
        else:
            rest = bytes(self._buffer)
            self._buffer.clear()
            has_room = len(rest) >= trailer_size + TAG_SIZE
            stored = rest[:-trailer_size] if has_room else rest
            if not has_room or rest[-len(END_MAGIC) :] != END_MAGIC:
                # Only a damaged end marker leaves a final chunk that still authenticates.
                if has_room and self._codec.open(counter, True, stored) is not None:
                    raise _corrupted(
                        f"the archive's end marker (last {trailer_size} bytes) is damaged"
                    )
                marker = rest.rfind(END_MAGIC)
                complete = rest[: marker + len(END_MAGIC)]
                if (
                    marker >= 0
                    and len(complete) >= trailer_size + TAG_SIZE
                    and self._codec.open(counter, True, complete[:-trailer_size]) is not None
                ):
                    raise _corrupted(
                        f"{len(rest) - len(complete)} bytes follow the archive's end marker: "
                        "data was appended to the file"
                    )
                raise self._truncated(counter)
            plain = self._codec.open(counter, True, stored)
            if plain is None:
                raise self._diagnose(counter, True, stored)
            self._check_trailer(rest[-trailer_size:], chunks=counter + 1)
            self.finished = True
        self._counter += 1
        self._offset += len(stored)
        return plain

    def _truncated(self, counter: int) -> ArchiveError:
        return ArchiveError(
            f"the archive ends early, in or before chunk {counter} (byte {self._offset}): "
            "its final chunk and end marker are missing; the backup was interrupted or "
            "the file was cut short",
            reason="truncated",
        )

    def _check_trailer(self, trailer: bytes, chunks: int) -> None:
        plain_bytes, count, tag, _ = TRAILER.unpack(trailer)
        expected = self._codec.trailer_tag(plain_bytes, count)
        if not hmac.compare_digest(expected, tag) or count != chunks:
            raise _corrupted("the archive's end marker is damaged (it fails its check)")
        self.plain_bytes_expected = plain_bytes

    def _diagnose(self, counter: int, last: bool, stored: bytes) -> ArchiveError:
        where = f"chunk {counter} (bytes {self._offset}..{self._offset + len(stored) - 1})"
        if self._codec.open(counter, not last, stored) is not None:
            if last:
                return ArchiveError(
                    f"the archive ends after {where}, but that chunk is not the final one: "
                    "the chunks after it are missing",
                    reason="truncated",
                )
            return ArchiveError(
                f"{where} is the archive's final chunk, yet more data follows it: chunks "
                "were reordered or data was appended",
                reason="reordered",
            )
        for distance in range(1, REORDER_WINDOW + 1):
            for candidate in (counter - distance, counter + distance):
                if candidate < 0:
                    continue
                for flag in (False, True):
                    if self._codec.open(candidate, flag, stored) is not None:
                        return ArchiveError(
                            f"{where} holds the data of chunk {candidate}: chunks of the "
                            "archive were reordered or duplicated",
                            reason="reordered",
                        )
        return _corrupted(
            f"{where} failed {self._codec.check_name}: the archive is corrupted or was modified"
        )


# -- decompression -----------------------------------------------------------------


class _Decoder(Protocol):
    def read(self, size: int) -> bytes: ...


class _ZstdDecoder:
    def __init__(self, source: _ChunkSource, read_size: int) -> None:
        self._reader = zstandard.ZstdDecompressor().stream_reader(
            cast(IO[bytes], source), read_size=read_size, read_across_frames=True, closefd=False
        )

    def read(self, size: int) -> bytes:
        try:
            data: bytes = self._reader.read(size)
        except zstandard.ZstdError as exc:
            raise _corrupted(f"the zstd stream inside the archive is damaged: {exc}") from None
        return data


class _GzipDecoder:
    """Bounded-output gzip decoding (``max_length``), so a small chunk cannot balloon."""

    def __init__(self, source: _ChunkSource, read_size: int) -> None:
        self._source = source
        self._read_size = read_size
        self._inflate = zlib.decompressobj(31)
        self._input = b""

    def read(self, size: int) -> bytes:
        try:
            while True:
                if self._inflate.eof:
                    following = self._inflate.unused_data or self._source.read(self._read_size)
                    if not following:
                        return b""
                    # Concatenated gzip members, as zcat accepts them.
                    self._inflate = zlib.decompressobj(31)
                    self._input = following
                if not self._input:
                    self._input = self._source.read(self._read_size)
                    if not self._input:
                        raise _corrupted("the gzip stream inside the archive ends early")
                data = self._inflate.decompress(self._input, size)
                self._input = self._inflate.unconsumed_tail
                if data:
                    return data
        except zlib.error as exc:
            raise _corrupted(f"the gzip stream inside the archive is damaged: {exc}") from None


class ArchiveReader(io.RawIOBase):
    """The plaintext of an archive as a binary stream. Does not close ``src``.

    Bytes are returned only from verified chunks. A reader that reaches end of
    stream (``read`` returns b"") has verified the final chunk, the trailer and the
    total length; if the archive is damaged the error comes at the point it is
    found, so callers must treat what they got before an error as incomplete.
    """

    def __init__(self, header: ArchiveHeader, source: _ChunkSource, decoder: _Decoder) -> None:
        super().__init__()
        self.header = header
        self._source = source
        self._decoder = decoder
        self._plain_bytes = 0
        self._done = False
        self._error: ArchiveError | None = None

    def readable(self) -> bool:
        return True

    @property
    def plain_bytes(self) -> int:
        """Plaintext bytes returned so far."""
        return self._plain_bytes

    def _read_some(self, size: int) -> bytes:
        if self.closed:
            raise ValueError("read from a closed archive reader")
        if self._error is not None:
            raise self._error
        if self._done or size == 0:
            return b""
        try:
            data = self._decoder.read(size)
            if not data:
                self._finish()
        except ArchiveError as exc:
            self._error = exc
            raise
        self._plain_bytes += len(data)
        return data

    def _finish(self) -> None:
        if not self._source.finished:
            while True:
                extra = self._source.read(COPY_SIZE)
                if not extra:
                    break
                if extra:
                    raise _corrupted("the archive holds data after its compressed stream ends")
        if self._source.plain_bytes_expected != self._plain_bytes:
            raise _corrupted(
                f"the archive decompressed to {self._plain_bytes} bytes but records "
                f"{self._source.plain_bytes_expected}"
            )
        self._done = True

    def read(self, size: int | None = -1) -> bytes:
        """Up to ``size`` bytes (all remaining when negative); b"" at verified end."""
        if size is None or size < 0:
            return self.readall()
        return self._read_some(size)

    def readall(self) -> bytes:
        """Everything up to the verified end. Prefer chunked reads for big archives."""
        parts: list[bytes] = []
        while True:
            data = self._read_some(COPY_SIZE)
            if not data:
                return b"".join(parts)
            parts.append(data)

    def readinto(self, buffer: WriteableBuffer) -> int:
        """Fill ``buffer`` with up to ``len(buffer)`` bytes; 0 at verified end."""
        view = memoryview(buffer).cast("B")
        data = self._read_some(len(view))
        view[: len(data)] = data
        return len(data)

    def __enter__(self) -> ArchiveReader:
        return self


def _data_key(header: ArchiveHeader, key: UserKey | None) -> bytes:
    needed = f"{header.key_kind} with fingerprint {header.key_fingerprint}"
    if key is None:
        variables = (
            PASSPHRASE_ENV if header.key_kind == "passphrase" else f"{KEY_ENV} or {KEY_FILE_ENV}"
        )
        raise EncryptionKeyError(
            f"archive {header.backup_id!r} is encrypted (with the {needed}) but no key is "
            f"configured; set {variables}"
        )
    fingerprint_matches = key.kind == header.key_kind and key.fingerprint == header.key_fingerprint
    data_key = None
    if key.kind == header.key_kind:
        assert header.wrap_salt is not None and header.wrapped_key is not None
        key_encryption_key = _hkdf(archive_root(key, header.kdf), header.wrap_salt, WRAP_INFO)
        try:
            data_key = AESGCM(key_encryption_key).decrypt(WRAP_NONCE, header.wrapped_key, WRAP_INFO)
        except InvalidTag:
            data_key = None
    if data_key is not None and fingerprint_matches:
        return data_key
    if data_key is not None or fingerprint_matches:
        # The configured key is the right one, but the header disagrees with itself.
        raise _corrupted(
            "the archive header is damaged: its key fingerprint and wrapped data key "
            "do not belong together"
        )
    raise ArchiveError(
        f"wrong key: archive {header.backup_id!r} was encrypted with the {needed}, but the "
        f"{key.describe()} is configured; configure the matching key",
        reason="wrong-key",
    )


def open_reader(src: ReadableStream, *, key: UserKey | None = None) -> ArchiveReader:
    """Open an archive for reading; ``key`` is needed only when it is encrypted.

    Raises EncryptionKeyError when the archive is encrypted and no key is given,
    ArchiveError(reason=...) for wrong keys and damaged or foreign files.
    """
    header, covered, tag = _read_header_parts(src)
    codec: _ChunkCodec = _GcmCodec(_data_key(header, key)) if header.encrypted else _HashCodec(tag)
    if not hmac.compare_digest(codec.header_tag(covered), tag):
        raise _corrupted(
            "the archive header failed "
            + (
                "authentication: it was damaged or modified"
                if header.encrypted
                else "its checksum: it is damaged"
            )
        )
    source = _ChunkSource(src, codec, header.chunk_size, offset=len(covered) + len(tag))
    decoder: _Decoder
    if header.compression == "zstd":
        decoder = _ZstdDecoder(source, header.chunk_size)
    elif header.compression == "gzip":
        decoder = _GzipDecoder(source, header.chunk_size)
    else:
        decoder = source
    return ArchiveReader(header, source, decoder)


def copy_plain(src: ReadableStream, dest: BinaryIO, *, key: UserKey | None) -> int:
    """Decrypt and decompress a whole archive into ``dest``; returns the plaintext size.

    Output is written as it is verified: on ArchiveError ``dest`` holds an incomplete
    prefix, so write to a temporary file and rename only on success.
    """
    total = 0
    with open_reader(src, key=key) as reader:
        while True:
            data = reader.read(COPY_SIZE)
            if not data:
                return total
            dest.write(data)
            total += len(data)
