"""Private scratch directories, and the removal of those that killed runs left behind.

A backup or restore sometimes needs a file outside the backup directory: the
client option file that carries the password, the plaintext copy of an SQLite
database, the decrypted database file of a restore. Each lives in a 0700
directory named ``migration-guard-<kind>-*`` (or ``.migration-guard-<kind>-*``
next to an SQLite target) that is removed on exit. A process killed with
SIGKILL cannot remove it, so the directory holds an ``.owner`` file, locked
(``flock``) for as long as its process lives: the next backup or restore
removes every such directory of the same user whose lock is free.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from migration_guard.backup.catalog import PROCESS_START, Catalog, lock_is_live

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("migration_guard.backup")

PREFIX = "migration-guard-"
OWNER_FILE = ".owner"


@contextlib.contextmanager
def scratch_directory(kind: str, parent: Path | None = None) -> Iterator[Path]:
    """A new 0700 directory, locked by this process and removed on exit whatever happens.

    In the temporary directory, or (hidden) in ``parent``.
    """
    prefix = f"{PREFIX}{kind}-" if parent is None else f".{PREFIX}{kind}-"
    directory = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    descriptor = -1
    try:
        descriptor = os.open(
            directory / OWNER_FILE,
            os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0),
            0o600,
        )
        if fcntl is not None:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.write(descriptor, str(os.getpid()).encode("ascii"))
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)
        if descriptor >= 0:
            os.close(descriptor)


def _owner_alive(owner: Path) -> bool:
    """Whether the process that made the directory of ``owner`` may still be running."""
    try:
        if owner.stat(follow_symlinks=False).st_mtime >= PROCESS_START:
            return True  # made after we started: maybe not locked yet
    except FileNotFoundError:
        return False
    except OSError:
        return True  # cannot tell: leave it
    return lock_is_live(owner)


def remove_stale_scratch(parent: Path | None = None) -> list[Path]:
    """Remove the scratch directories of dead runs of this user; returns them.

    In the temporary directory, or the hidden ones in ``parent``. Only directories
    that hold the ``.owner`` file :func:`scratch_directory` writes are candidates;
    one is left alone while its owner's lock is held, when it is younger than this
    process, or when it belongs to another user.
    """
    where = Path(tempfile.gettempdir()) if parent is None else parent
    prefix = PREFIX if parent is None else f".{PREFIX}"
    uid = os.geteuid() if hasattr(os, "geteuid") else None
    removed: list[Path] = []
    try:
        entries = list(os.scandir(where))
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(prefix):
            continue
        try:
            if not entry.is_dir(follow_symlinks=False):
                continue
            info = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if (uid is not None and info.st_uid != uid) or info.st_mtime >= PROCESS_START:
            continue
        path = Path(entry.path)
        owner = path / OWNER_FILE
        if not owner.is_file() or owner.is_symlink():
            continue  # not a scratch directory of ours: never remove what we did not make
        if _owner_alive(owner):
            continue
        shutil.rmtree(path, ignore_errors=True)
        if not path.exists():
            removed.append(path)
            log.info("removed the scratch directory of an interrupted run: %s", path)
    return removed


def clean_up_after_killed_runs(catalog: Catalog) -> list[Path]:
    """What killed runs left: unfinished and orphan files in the catalog, scratch directories.

    Called when a backup or a restore starts; returns what was removed.
    """
    removed = catalog.cleanup_leftovers() if catalog.path.is_dir() else []
    for leftover in removed:
        log.info("removed leftover of an interrupted run: %s", leftover.name)
    return removed + remove_stale_scratch()
