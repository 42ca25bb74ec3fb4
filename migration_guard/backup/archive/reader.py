"""Reading an archive: verify each chunk, decompress, and prove the end is the end.

Bytes are handed out only from verified chunks; memory stays at a few chunks.
"""

from __future__ import annotations

import hmac
import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

from migration_guard.backup.archive.codecs import (
    ChunkCodec,
    Decoder,
    GcmCodec,
    GzipDecoder,
    HashCodec,
    ZstdDecoder,
)
from migration_guard.backup.archive.format import (
    COPY_SIZE,
    END_MAGIC,
    MANIFEST_INFO,
    REORDER_WINDOW,
    TAG_SIZE,
    TRAILER,
    ArchiveHeader,
    ReadableStream,
    corrupted,
    read_header_parts,
)
from migration_guard.backup.archive.keywrap import hkdf, unwrap_data_key
from migration_guard.backup.keys import UserKey
from migration_guard.errors import ArchiveError

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer


class ChunkSource:
    """File-like ``read(n)`` over the verified payload of successive chunks.

    Returns b"" only after the final chunk (last flag set) and the trailer have been
    verified; a stream that stops before that raises "truncated".
    """

    def __init__(
        self, src: ReadableStream, codec: ChunkCodec, chunk_size: int, offset: int
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
                    raise corrupted(
                        f"the archive's end marker (last {trailer_size} bytes) is damaged"
                    )
                marker = rest.rfind(END_MAGIC)
                complete = rest[: marker + len(END_MAGIC)]
                if (
                    marker >= 0
                    and len(complete) >= trailer_size + TAG_SIZE
                    and self._codec.open(counter, True, complete[:-trailer_size]) is not None
                ):
                    raise corrupted(
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
            raise corrupted("the archive's end marker is damaged (it fails its check)")
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
        return corrupted(
            f"{where} failed {self._codec.check_name}: the archive is corrupted or was modified"
        )


class ArchiveReader(io.RawIOBase):
    """The plaintext of an archive as a binary stream. Does not close ``src``.

    Bytes are returned only from verified chunks. A reader that reaches end of
    stream (``read`` returns b"") has verified the final chunk, the trailer and the
    total length; if the archive is damaged the error comes at the point it is
    found, so callers must treat what they got before an error as incomplete.
    """

    def __init__(
        self,
        header: ArchiveHeader,
        source: ChunkSource,
        decoder: Decoder,
        manifest_key: bytes | None = None,
    ) -> None:
        super().__init__()
        self.header = header
        #: The key that authenticates the backup's manifest (encrypted archives only).
        self.manifest_key = manifest_key
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
                    raise corrupted("the archive holds data after its compressed stream ends")
        if self._source.plain_bytes_expected != self._plain_bytes:
            raise corrupted(
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


def _open_chunks(
    src: ReadableStream, key: UserKey | None
) -> tuple[ArchiveHeader, ChunkSource, bytes | None]:
    """Read and authenticate the header; the chunk source after it and the manifest key."""
    header, covered, tag = read_header_parts(src)
    codec: ChunkCodec
    manifest_key = None
    if header.encrypted:
        data_key = unwrap_data_key(header, key)
        codec = GcmCodec(data_key)
        manifest_key = hkdf(data_key, b"", MANIFEST_INFO)
    else:
        codec = HashCodec(tag)
    if not hmac.compare_digest(codec.header_tag(covered), tag):
        raise corrupted(
            "the archive header failed "
            + (
                "authentication: it was damaged or modified"
                if header.encrypted
                else "its checksum: it is damaged"
            )
        )
    source = ChunkSource(src, codec, header.chunk_size, offset=len(covered) + len(tag))
    return header, source, manifest_key


def open_reader(src: ReadableStream, *, key: UserKey | None = None) -> ArchiveReader:
    """Open an archive for reading; ``key`` is needed only when it is encrypted.

    Raises EncryptionKeyError when the archive is encrypted and no key is given,
    ArchiveError(reason=...) for wrong keys and damaged or foreign files.
    """
    header, source, manifest_key = _open_chunks(src, key)
    decoder: Decoder
    if header.compression == "zstd":
        decoder = ZstdDecoder(source, header.chunk_size)
    elif header.compression == "gzip":
        decoder = GzipDecoder(source, header.chunk_size)
    else:
        decoder = source
    return ArchiveReader(header, source, decoder, manifest_key)


@dataclass(frozen=True)
class CheckedArchive:
    """What :func:`authenticate` proved about a whole archive."""

    header: ArchiveHeader
    #: The key that authenticates the backup's manifest (encrypted archives only).
    manifest_key: bytes | None
    #: The plaintext length the authenticated trailer records.
    plain_bytes: int


def authenticate(src: ReadableStream, *, key: UserKey | None = None) -> CheckedArchive:
    """Check a whole archive without decompressing it: header, every chunk, the trailer.

    Reads ``src`` to its end. Raises what :func:`open_reader` raises and every
    :class:`ArchiveError` a full read would (truncated, reordered, corrupted,
    appended data); returns only when every byte is authentic (encrypted) or
    matches its checksums (unencrypted). This is the first pass of an
    all-or-nothing restore: nothing is loaded before the archive has passed it.
    """
    header, source, manifest_key = _open_chunks(src, key)
    while source.read(COPY_SIZE):
        pass
    return CheckedArchive(header, manifest_key, source.plain_bytes_expected)


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


def read_header(src: ReadableStream) -> ArchiveHeader:
    """Read the header without a key (for ``backups show`` and error messages).

    An unencrypted header is checked against its hash; an encrypted one can only be
    authenticated with the key, so treat its fields as claims until ``open_reader``.
    """
    header, covered, tag = read_header_parts(src)
    if not header.encrypted and not hmac.compare_digest(HashCodec.header_tag(covered), tag):
        raise corrupted("the archive header does not match its checksum")
    return header
