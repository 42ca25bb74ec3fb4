"""The built-in ``file`` storage: offsite copies in a directory (a mounted NAS, a second disk).

Objects are written like everything else migration-guard writes: a temp file,
fsync, rename. The SHA-256 recorded at ``put`` is kept in ``<name>.sha256``
beside the object, as an S3 backend keeps it in the object's metadata.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlsplit

from migration_guard.backup.catalog import TMP_SUFFIX, atomic_file, fsync_directory
from migration_guard.backup.storage.base import ObjectInfo, Storage, StorageError, Upload

DIGEST_SUFFIX = ".sha256"
COPY_SIZE = 1024 * 1024


class FileStorage(Storage):
    """``file:///absolute/directory`` (or a plain path)."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        parts = urlsplit(url)
        self.root = Path(unquote(parts.path) if parts.scheme == "file" else url).expanduser()

    def _path(self, name: str) -> Path:
        return self.root / name

    def put(
        self, name: str, path: Path, *, sha256: str, retain_until: datetime | None = None
    ) -> None:
        target = self._path(name)
        try:
            self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._write(target, path)
            digest = target.with_name(target.name + DIGEST_SUFFIX)
            digest.write_text(sha256 + "\n", encoding="ascii")
        except OSError as exc:
            raise StorageError(
                f"cannot write {self.describe(name)}: {exc.strerror or type(exc).__name__}"
            ) from None
        fsync_directory(self.root)

    def open_upload(self, name: str, *, retain_until: datetime | None = None) -> Upload | None:
        return _FileUpload(self, name)

    @staticmethod
    def _write(target: Path, source: Path) -> None:
        with source.open("rb") as reader, atomic_file(target, mode=0o644) as writer:
            shutil.copyfileobj(reader, writer, COPY_SIZE)

    @contextlib.contextmanager
    def _open(self, name: str) -> Iterator[BinaryIO]:
        try:
            handle = self._path(name).open("rb")
        except OSError as exc:
            raise StorageError(
                f"cannot read {self.describe(name)}: {exc.strerror or type(exc).__name__}"
            ) from None
        with handle:
            yield handle

    def get(self, name: str) -> contextlib.AbstractContextManager[BinaryIO]:
        return self._open(name)

    def head(self, name: str) -> ObjectInfo | None:
        path = self._path(name)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StorageError(f"cannot read {self.describe(name)}: {exc.strerror}") from None
        try:
            recorded: str | None = (
                path.with_name(path.name + DIGEST_SUFFIX).read_text("ascii").strip()
            )
        except OSError:
            recorded = None
        return ObjectInfo(size=size, sha256=recorded)

    def list(self) -> list[str]:
        try:
            names = os.listdir(self.root)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise StorageError(f"cannot list {self.url}: {exc.strerror}") from None
        return sorted(
            n for n in names if not n.endswith(DIGEST_SUFFIX) and not n.endswith(TMP_SUFFIX)
        )

    def delete(self, name: str) -> None:
        path = self._path(name)
        for victim in (path, path.with_name(path.name + DIGEST_SUFFIX)):
            with contextlib.suppress(FileNotFoundError):
                victim.unlink()
        fsync_directory(self.root)


class _FileUpload(Upload):
    """A temp file beside the object, fsynced and renamed by ``commit``."""

    def __init__(self, storage: FileStorage, name: str) -> None:
        self._storage = storage
        self._name = name
        self._target = storage._path(name)
        self._temporary = self._target.with_name(f"{self._target.name}.{os.getpid()}{TMP_SUFFIX}")
        self._digest = hashlib.sha256()
        self._error: str | None = None
        self._handle: BinaryIO | None = None
        try:
            storage.root.mkdir(parents=True, exist_ok=True, mode=0o700)
            descriptor = os.open(self._temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            self._handle = os.fdopen(descriptor, "wb")
        except OSError as exc:
            self._error = exc.strerror or type(exc).__name__

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._handle is None:
            return
        try:
            self._handle.write(data)
            self._digest.update(data)
        except OSError as exc:
            self._error = exc.strerror or type(exc).__name__
            self.abort()

    def commit(self) -> None:
        if self._handle is None or self._error is not None:
            self.abort()
            raise StorageError(f"cannot write {self._storage.describe(self._name)}: {self._error}")
        try:
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._handle.close()
            self._handle = None
            os.replace(self._temporary, self._target)
            digest = self._target.with_name(self._target.name + DIGEST_SUFFIX)
            digest.write_text(self._digest.hexdigest() + "\n", encoding="ascii")
        except OSError as exc:
            self.abort()
            raise StorageError(
                f"cannot write {self._storage.describe(self._name)}: "
                f"{exc.strerror or type(exc).__name__}"
            ) from None
        fsync_directory(self._storage.root)

    def abort(self) -> None:
        if self._handle is not None:
            with contextlib.suppress(OSError):
                self._handle.close()
            self._handle = None
        with contextlib.suppress(OSError):
            self._temporary.unlink()
