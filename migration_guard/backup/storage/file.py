"""The built-in ``file`` storage: offsite copies in a directory (a mounted NAS, a second disk).

Objects are written like everything else migration-guard writes: a temp file,
fsync, rename. The SHA-256 recorded at ``put`` is kept in ``<name>.sha256``
beside the object, as an S3 backend keeps it in the object's metadata.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlsplit

from migration_guard.backup.catalog import TMP_SUFFIX, fsync_directory
from migration_guard.backup.storage.base import ObjectInfo, Storage, StorageError

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

    def put(self, name: str, path: Path, *, sha256: str) -> None:
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

    @staticmethod
    def _write(target: Path, source: Path) -> None:
        temporary = target.with_name(f"{target.name}.{os.getpid()}{TMP_SUFFIX}")
        try:
            with source.open("rb") as reader, temporary.open("wb") as writer:
                shutil.copyfileobj(reader, writer, COPY_SIZE)
                writer.flush()
                os.fsync(writer.fileno())
            os.replace(temporary, target)
        except BaseException:
            with contextlib.suppress(OSError):
                temporary.unlink()
            raise

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
