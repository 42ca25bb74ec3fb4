"""How chunks are sealed and opened, and how the compressed stream is decoded.

Encrypted archives seal chunks with AES-256-GCM in the STREAM construction
(nonce = 11-byte chunk counter || last-chunk flag); unencrypted ones append a
truncated SHA-256 with the same counter and flag. Decoders turn the verified
chunk stream back into plaintext with bounded memory.
"""

from __future__ import annotations

import hashlib
import hmac
import zlib
from collections.abc import Sequence
from typing import IO, Protocol, cast

import zstandard
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from migration_guard.backup.archive.format import (
    MAC_INFO,
    PAYLOAD_INFO,
    TAG_SIZE,
    TRAILER_COUNTS,
    TRAILER_LABEL,
    Bytes,
    ReadableStream,
    corrupted,
)
from migration_guard.backup.archive.keywrap import hkdf


def chunk_nonce(counter: int, last: bool) -> bytes:
    """The STREAM nonce: the chunk counter and whether it is the last chunk."""
    return counter.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


class ChunkCodec(Protocol):
    def header_tag(self, prefix_and_header: bytes) -> bytes: ...

    def seal(self, counter: int, last: bool, data: Bytes) -> Sequence[Bytes]: ...

    def open(self, counter: int, last: bool, stored: bytes) -> bytes | None: ...

    def trailer_tag(self, plain_bytes: int, chunks: int) -> bytes: ...

    @property
    def check_name(self) -> str: ...


class GcmCodec:
    """AES-256-GCM STREAM with a per-archive data key; HMAC-SHA256 for header and trailer."""

    check_name = "authentication"

    def __init__(self, data_key: bytes) -> None:
        self._aead = AESGCM(hkdf(data_key, b"", PAYLOAD_INFO))
        self._mac_key = hkdf(data_key, b"", MAC_INFO)

    def header_tag(self, prefix_and_header: bytes) -> bytes:
        return hmac.new(self._mac_key, prefix_and_header, hashlib.sha256).digest()

    def seal(self, counter: int, last: bool, data: Bytes) -> Sequence[Bytes]:
        return [self._aead.encrypt(chunk_nonce(counter, last), data, None)]

    def open(self, counter: int, last: bool, stored: bytes) -> bytes | None:
        if len(stored) < TAG_SIZE:
            return None
        try:
            return self._aead.decrypt(chunk_nonce(counter, last), stored, None)
        except InvalidTag:
            return None

    def trailer_tag(self, plain_bytes: int, chunks: int) -> bytes:
        message = TRAILER_LABEL + TRAILER_COUNTS.pack(plain_bytes, chunks)
        return hmac.new(self._mac_key, message, hashlib.sha256).digest()[:TAG_SIZE]


class HashCodec:
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

    def _tag(self, counter: int, last: bool, data: Bytes) -> bytes:
        digest = self._base.copy()
        digest.update(chunk_nonce(counter, last))
        digest.update(data)
        return digest.digest()[:TAG_SIZE]

    def seal(self, counter: int, last: bool, data: Bytes) -> Sequence[Bytes]:
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


# -- decompression -----------------------------------------------------------------


class Decoder(Protocol):
    def read(self, size: int) -> bytes: ...


class ZstdDecoder:
    def __init__(self, source: ReadableStream, read_size: int) -> None:
        self._reader = zstandard.ZstdDecompressor().stream_reader(
            cast(IO[bytes], source), read_size=read_size, read_across_frames=True, closefd=False
        )

    def read(self, size: int) -> bytes:
        try:
            data: bytes = self._reader.read(size)
        except zstandard.ZstdError as exc:
            raise corrupted(f"the zstd stream inside the archive is damaged: {exc}") from None
        return data


class GzipDecoder:
    """Bounded-output gzip decoding (``max_length``), so a small chunk cannot balloon."""

    def __init__(self, source: ReadableStream, read_size: int) -> None:
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
                        raise corrupted("the gzip stream inside the archive ends early")
                data = self._inflate.decompress(self._input, size)
                self._input = self._inflate.unconsumed_tail
                if data:
                    return data
        except zlib.error as exc:
            raise corrupted(f"the gzip stream inside the archive is damaged: {exc}") from None
