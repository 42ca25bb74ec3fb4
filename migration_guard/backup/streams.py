"""The byte streams between a backend, the archive and the disk, and failures writing them.

:class:`CountingSink` sits between a backend's dump and the archive writer,
:class:`HashingSource` between the archive file and the reader. Both pass
buffers straight through (no copy) and only count, hash and report progress.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import IO

from migration_guard.config import BACKUP_DIR_ENV
from migration_guard.errors import BackupError

#: ``progress(done_bytes, total_bytes_or_None)``; called often, must be cheap.
ProgressCallback = Callable[[int, "int | None"], None]
#: Bytes read per call when the engine itself reads an archive or a plain stream.
READ_SIZE = 1 << 20


class CountingSink:
    """A write-only stream that counts bytes and reports progress to ``progress``."""

    def __init__(self, target: IO[bytes], progress: ProgressCallback | None, total: int | None):
        self._target = target
        self._progress = progress
        self._total = total
        self.count = 0

    def write(self, data: bytes | bytearray | memoryview) -> int:
        written = self._target.write(data)
        size = len(data) if written is None else written
        self.count += size
        if self._progress is not None:
            self._progress(self.count, self._total)
        return size

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def seekable(self) -> bool:
        return False

    def flush(self) -> None:
        self._target.flush()

    def close(self) -> None:
        """Closing is the engine's job; backends that close their sink do no harm."""

    @property
    def closed(self) -> bool:
        return False


class HashingSource:
    """A read-only stream over a file that hashes and counts what is read."""

    def __init__(self, source: IO[bytes], progress: ProgressCallback | None, total: int | None):
        self._source = source
        self._progress = progress
        self._total = total
        self.digest = hashlib.sha256()
        self.count = 0

    def _seen(self, data: bytes | memoryview) -> None:
        self.digest.update(data)
        self.count += len(data)
        if self._progress is not None:
            self._progress(self.count, self._total)

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(size)
        self._seen(data)
        return data

    def readinto(self, buffer: bytearray | memoryview) -> int:
        view = memoryview(buffer)
        count = self._source.readinto(view)  # type: ignore[attr-defined]
        count = count or 0
        self._seen(view[:count])
        return int(count)

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return False

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        """The engine closes the underlying file."""

    @property
    def closed(self) -> bool:
        return False

    def drain(self) -> None:
        """Read what the consumer left (trailing bytes still count for the hash)."""
        while self.read(READ_SIZE):
            pass


def stream_sha256(stream: IO[bytes]) -> tuple[str, int]:
    """SHA-256 (hex) and length of what ``stream`` holds from where it stands, read in
    :data:`READ_SIZE` pieces."""
    digest = hashlib.sha256()
    size = 0
    while chunk := stream.read(READ_SIZE):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def file_sha256(path: Path) -> str:
    """SHA-256 (hex) of the file ``path``."""
    with path.open("rb") as handle:
        return stream_sha256(handle)[0]


def is_out_of_space(exc: BaseException) -> bool:
    """Whether ``exc`` or anything in its cause/context chain is ``ENOSPC``."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno == errno.ENOSPC:
            return True
        if "No space left on device" in str(current):
            return True
        current = current.__cause__ or current.__context__
    return False


def space_error(directory: Path) -> BackupError:
    """The error for a full disk: what to do about it, and that nothing was kept."""
    return BackupError(
        f"no space left on device in {directory}; free space or set backup_dir "
        f"(or {BACKUP_DIR_ENV}) to a larger location. Nothing was kept."
    )


def remove_quietly(*paths: Path) -> None:
    """Delete ``paths``; the ones already gone or not removable are left alone."""
    for path in paths:
        with contextlib.suppress(OSError):
            path.unlink()
