"""Writing an archive: compress, cut into fixed chunks, seal, add the trailer.

Memory stays at a few chunks whatever the size; large writes are sealed
straight from the caller's buffer.
"""

from __future__ import annotations

import hashlib
import zlib
from datetime import datetime, timezone
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, BinaryIO, cast

import zstandard

from migration_guard import __version__
from migration_guard.backup.archive.codecs import (
    ChunkCodec,
    GcmCodec,
    HashCodec,
)
from migration_guard.backup.archive.format import (
    COMPRESSIONS,
    DEFAULT_CHUNK_SIZE,
    DEFAULT_LEVELS,
    END_MAGIC,
    FORMAT_VERSION,
    LEVEL_RANGES,
    MANIFEST_INFO,
    MANIFEST_MAC,
    MAX_BACKUP_ID_LENGTH,
    MAX_CHUNK_SIZE,
    MIN_CHUNK_SIZE,
    PASSPHRASE_FORMAT_VERSION,
    TRAILER,
    X25519_FORMAT_VERSION,
    ArchiveHeader,
    ArchiveStats,
    Bytes,
    encode_header,
)
from migration_guard.backup.archive.keywrap import hkdf, wrap_data_key
from migration_guard.backup.keys import UserKey
from migration_guard.errors import BackupError, ConfigError

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer


class _HashingSink:
    """Writes to the destination while counting and hashing every stored byte."""

    def __init__(self, dest: BinaryIO) -> None:
        self._dest = dest
        self._sha256 = hashlib.sha256()
        self.count = 0

    def write(self, data: Bytes) -> None:
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

    def __init__(self, codec: ChunkCodec, chunk_size: int, out: _HashingSink) -> None:
        self._codec = codec
        self._chunk_size = chunk_size
        self._out = out
        self._pending = bytearray()
        self._counter = 0

    def _emit(self, data: Bytes, last: bool) -> None:
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
        codec: ChunkCodec,
        header_bytes: bytes,
        level: int,
        threads: int,
        manifest_key: bytes | None = None,
    ) -> None:
        self.header = header
        #: The key that authenticates this backup's manifest (encrypted archives only).
        self.manifest_key = manifest_key
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


#: The format version new archives of each key kind are written with (docs/format.md).
_VERSIONS = {
    "key": FORMAT_VERSION,
    "passphrase": PASSPHRASE_FORMAT_VERSION,
    "x25519": X25519_FORMAT_VERSION,
}


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
    codec: ChunkCodec
    manifest_key = None
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
        header_bytes = encode_header(header)
        header_tag = HashCodec.header_tag(header_bytes)
        codec = HashCodec(header_tag)
    else:
        wrapped = wrap_data_key(key)
        header = ArchiveHeader(
            # Older readers would misread a per-archive passphrase fingerprint, and do
            # not know recipients: both get a version those readers refuse.
            format_version=_VERSIONS[key.kind],
            backup_id=backup_id,
            chunk_size=chunk_size,
            compression=compression,
            encrypted=True,
            key_fingerprint=wrapped.fingerprint,
            created_at=created_at,
            key_kind=key.kind,
            kdf=wrapped.kdf,
            wrap_salt=wrapped.wrap_salt,
            wrapped_key=wrapped.wrapped_key,
            stanzas=wrapped.stanzas,
            producer=producer,
            manifest_mac=MANIFEST_MAC,
        )
        header_bytes = encode_header(header)
        codec = GcmCodec(wrapped.data_key)
        manifest_key = hkdf(wrapped.data_key, b"", MANIFEST_INFO)
        header_tag = codec.header_tag(header_bytes)
    return ArchiveWriter(
        dest,
        header=header,
        codec=codec,
        header_bytes=header_bytes + header_tag,
        level=level,
        threads=threads,
        manifest_key=manifest_key,
    )
