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

:mod:`.format` holds the layout, :mod:`.codecs` the chunk sealing and
decompression, :mod:`.keywrap` the data key, :mod:`.writer` and :mod:`.reader`
the two directions; this package re-exports their public names.
"""

from __future__ import annotations

from migration_guard.backup.archive.format import (
    CIPHER,
    COMPRESSIONS,
    COPY_SIZE,
    DEFAULT_CHUNK_SIZE,
    DEFAULT_LEVELS,
    END_MAGIC,
    FORMAT_VERSION,
    HEADER_TAG_SIZE,
    LEVEL_RANGES,
    MAC_INFO,
    MAGIC,
    MANIFEST_INFO,
    MANIFEST_MAC,
    MAX_BACKUP_ID_LENGTH,
    MAX_CHUNK_SIZE,
    MAX_HEADER_LENGTH,
    MIN_CHUNK_SIZE,
    PAYLOAD_INFO,
    PREFIX,
    REORDER_WINDOW,
    TAG_SIZE,
    TRAILER,
    TRAILER_COUNTS,
    TRAILER_LABEL,
    WRAP_INFO,
    WRAP_NONCE,
    ArchiveHeader,
    ArchiveStats,
    ReadableStream,
)
from migration_guard.backup.archive.reader import (
    ArchiveReader,
    CheckedArchive,
    authenticate,
    copy_plain,
    open_reader,
    read_header,
)
from migration_guard.backup.archive.writer import ArchiveWriter, open_writer

__all__ = [
    "CIPHER",
    "COMPRESSIONS",
    "COPY_SIZE",
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_LEVELS",
    "END_MAGIC",
    "FORMAT_VERSION",
    "HEADER_TAG_SIZE",
    "LEVEL_RANGES",
    "MAC_INFO",
    "MAGIC",
    "MANIFEST_INFO",
    "MANIFEST_MAC",
    "MAX_BACKUP_ID_LENGTH",
    "MAX_CHUNK_SIZE",
    "MAX_HEADER_LENGTH",
    "MIN_CHUNK_SIZE",
    "PAYLOAD_INFO",
    "PREFIX",
    "REORDER_WINDOW",
    "TAG_SIZE",
    "TRAILER",
    "TRAILER_COUNTS",
    "TRAILER_LABEL",
    "WRAP_INFO",
    "WRAP_NONCE",
    "ArchiveHeader",
    "ArchiveReader",
    "ArchiveStats",
    "ArchiveWriter",
    "CheckedArchive",
    "ReadableStream",
    "authenticate",
    "copy_plain",
    "open_reader",
    "open_writer",
    "read_header",
]
