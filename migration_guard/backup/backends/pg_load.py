"""The plaintext of a pg_dump archive on its way into ``pg_restore``: a private file,
and (into an empty database) ``pg_restore``'s stdin at the same time.

``pg_restore --jobs N`` reads only a seekable file, so the decrypted stream is
written into a 0700 scratch directory. Written first and restored after, the
decryption, decompression and writing of the whole plaintext (hundreds of MB
for a large table) come before the first row is loaded. Into an empty database
the definitions and rows (``--section=pre-data --section=data``) need no file:
:func:`.pg_feed.stream_into` feeds the bytes to one ``pg_restore`` reading its
stdin, so ``COPY`` starts with the first megabyte and the decryption runs beside
it. The parallel index builds (``--section=post-data --jobs N``) that follow read
only the archive's table of contents, so only the head of the stream, up to the
end of that table (read by a ``pg_restore --list`` beside the load), goes to the
file: the rows never reach the disk as plaintext, and writing them costs nothing.

Reading its stdin, ``pg_restore`` loads one table at a time. :func:`stream_pays`
decides per archive from the manifest's table sizes: with one table holding
most of the bytes the parallel load cannot do better, and the stream saves the
whole decryption; with many tables of like size ``--jobs N`` loads N at once
(from the whole file, written first).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import BinaryIO

from sqlalchemy.engine import URL

from migration_guard.backup.backends.base import CHUNK_SIZE, Reader, read_chunks
from migration_guard.backup.backends.mysql_client import tool_process
from migration_guard.errors import BackupError

#: The first bytes of every custom-format archive.
CUSTOM_MAGIC = b"PGDMP"
#: The largest table's share of all tables' bytes from which the stream pays: the
#: parallel load then saves at most the rest, while the stream saves the decryption
#: of everything (about a quarter of the load's time on the measured machine).
STREAM_SHARE = 0.75


def stream_pays(table_sizes: Mapping[str, int | None], jobs: int) -> bool:
    """Whether loading from the stream beats ``--jobs`` from the file for these tables.

    Unknown sizes count as nothing; with no size at all, or one job, the stream.
    """
    sizes = [size for size in table_sizes.values() if size]
    if jobs <= 1 or not sizes:
        return True
    return max(sizes) >= STREAM_SHARE * sum(sizes)


@contextlib.contextmanager
def scratch_file(path: Path) -> Iterator[BinaryIO]:
    """``path`` created (it must not exist) for writing, owner-only."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise BackupError(f"cannot write the restore's scratch file: {exc}") from exc
    with os.fdopen(descriptor, "wb") as handle:
        yield handle


def checked_head(chunks: Iterator[bytes]) -> bytes:
    """The first bytes of ``chunks`` (at least the magic's length unless it ends), checked."""
    head = b""
    for chunk in chunks:
        head += chunk
        if len(head) >= len(CUSTOM_MAGIC):
            break
    if not head.startswith(CUSTOM_MAGIC):
        raise BackupError("the stream is not a pg_dump custom-format archive")
    return head


def write_scratch(handle: BinaryIO, chunk: bytes) -> None:
    try:
        handle.write(chunk)
    except OSError as exc:
        raise BackupError(f"cannot write the restore's scratch file: {exc}") from exc


def write_file(source: Reader, path: Path) -> None:
    """The whole (checked) plaintext of ``source`` into the new private file ``path``."""
    chunks = read_chunks(source)
    with scratch_file(path) as handle:
        for chunk in itertools.chain([checked_head(chunks)], chunks):
            write_scratch(handle, chunk)


def written_back(path: Path, handle: BinaryIO) -> Iterator[bytes]:
    """What was written to ``handle`` (the file ``path``) so far, read back in chunks
    (from the page cache: the table of contents, a few MiB at most)."""
    handle.flush()
    length = handle.tell()
    with path.open("rb") as replay:
        while length > 0:
            chunk = replay.read(min(CHUNK_SIZE, length))
            if not chunk:
                raise BackupError("the restore's scratch file is shorter than was written")
            length -= len(chunk)
            yield chunk


def restoring_stdin(
    command: list[str], url: URL, extra_env: Mapping[str, str], *, output: int | None = None
) -> contextlib.AbstractContextManager[subprocess.Popen[bytes]]:
    """A ``pg_restore`` of its stdin (1 MiB reads); its stdout to ``output``, else discarded."""
    return tool_process(
        command,
        url,
        "restore into",
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL if output is None else output,
        input_buffer=True,
        output_buffer=output is not None,
        extra_env=extra_env,
    )
