"""The backup location and its catalog, built from the manifests found there.

Layout of the backup directory::

    <id>.mgb              the archive (see docs/format.md)
    <id>.manifest.json    the manifest; written last, atomically
    <id>.mgb.partial      an archive being written (never listed)
    <id>.lock             held (flock + pid) by the process writing <id>
    <id>.*.pin            <id> is being restored or verified (see backup.pins)
    prune.lock            held (flock) by prune while it decides and deletes

A backup exists only when its manifest exists, so a killed process leaves
nothing that claims to be complete; the next run removes its leftovers.
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from migration_guard.backup.manifest import ID_PATTERN, Manifest, ManifestError
from migration_guard.config import BACKUP_DIR_ENV, Config
from migration_guard.errors import BackupError, UnknownBackupError, translate

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

ARCHIVE_SUFFIX = ".mgb"
MANIFEST_SUFFIX = ".manifest.json"
PARTIAL_SUFFIX = ".mgb.partial"
TMP_SUFFIX = ".tmp"
LOCK_SUFFIX = ".lock"
DEFAULT_BACKUP_DIR = ".migration-guard/backups"
#: Where a ``backup_dir`` in object storage is cached (relative to the project).
CACHE_DIR = ".migration-guard/cache"
#: The safe upgrade's audit log (one JSON line per run), beside the backups.
AUDIT_FILE = "audit.jsonl"
#: Leftovers younger than this process are never touched: they may belong to a sibling run.
PROCESS_START = time.time()


def fsync_directory(directory: Path) -> None:
    """Make a rename in ``directory`` durable (no-op where directories cannot be opened)."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


@contextlib.contextmanager
def atomic_file(path: Path, *, mode: int = 0o600) -> Iterator[IO[bytes]]:
    """A new file at ``path``, all or nothing: written to a temp file in the same
    directory, fsynced and renamed over ``path`` when the block ends without an error;
    the temp file is removed when it raises."""
    temporary = path.with_name(f"{path.name}.{os.getpid()}{TMP_SUFFIX}")
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(descriptor, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    fsync_directory(path.parent)


def atomic_write_bytes(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Write ``data`` to ``path`` via a temp file in the same directory, fsync and rename."""
    with atomic_file(path, mode=mode) as handle:
        handle.write(data)


def remote_backup_dir(config: Config) -> str | None:
    """The URL of ``backup_dir`` when it names object storage (``s3://BUCKET/PREFIX``), else None.

    Backups then live only there (it is the first offsite location); the local
    directory (:func:`resolve_backup_dir`) is a cache of manifests and state.
    """
    raw = os.environ.get(BACKUP_DIR_ENV) or config.backup_dir or DEFAULT_BACKUP_DIR
    scheme, separator, _rest = raw.partition("://")
    return raw if separator and scheme != "file" else None


def resolve_backup_dir(config: Config) -> Path:
    """The backup directory: ``$MIGRATION_GUARD_BACKUP_DIR``, else ``backup_dir`` of config.

    A relative path is taken relative to the project, i.e. the directory of the
    configuration file, or the working directory when there is none. For a
    ``backup_dir`` in object storage it is the local cache
    ``.migration-guard/cache/<scheme>-<bucket>-<hash>`` of the project: manifests,
    event log and state, never an archive beyond the one an operation reads.
    """
    from_env = os.environ.get(BACKUP_DIR_ENV)
    raw = from_env or config.backup_dir or DEFAULT_BACKUP_DIR
    remote = remote_backup_dir(config)
    if remote is not None:
        scheme, _, rest = remote.partition("://")
        bucket = "".join(c if c.isalnum() or c in "-." else "-" for c in rest.split("/", 1)[0])
        digest = hashlib.sha256(remote.encode("utf-8")).hexdigest()[:12]
        raw = f"{CACHE_DIR}/{scheme}-{bucket}-{digest}"
    elif raw.startswith("file://"):
        raw = raw[len("file://") :]
    path = Path(raw).expanduser()
    if not path.is_absolute():
        base = Path(config.source).resolve().parent if config.source else Path.cwd()
        path = base / path
    return path


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` may still be running.

    Only a process that does not exist (``ESRCH``) is dead, and no pid at all
    (``0`` or less, which ``kill`` would take for a process group). A process of
    another user (``EPERM``) is alive; any other error cannot tell, so it counts
    as alive too: what belongs to a live run must never be removed.
    """
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def lock_is_live(path: Path) -> bool:
    """Whether a live process holds the lock file ``path`` (see :meth:`Catalog.lock`).

    Its ``flock`` decides; where there is no ``flock`` (Windows), the pid written
    in it (:func:`pid_alive`). A missing file is not live; one that cannot be
    opened (a symlink, no permission) or locked for another reason than a holder
    cannot tell and counts as live: it is left alone.
    """
    try:
        descriptor = os.open(path, os.O_RDWR | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return False
    except OSError:
        return True
    try:
        if fcntl is not None:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return True  # held (EWOULDBLOCK), or cannot tell
            fcntl.flock(descriptor, fcntl.LOCK_UN)
            return False
        text = os.read(descriptor, 32).decode("ascii", "replace").strip()
        return text.isdigit() and pid_alive(int(text))
    finally:
        os.close(descriptor)


class Catalog:
    """The backups in one directory. ``list()`` is newest first."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        #: Manifests skipped by a non-strict :meth:`list`, with the reason.
        self.problems: list[str] = []

    @classmethod
    def for_config(cls, config: Config) -> Catalog:
        return cls(resolve_backup_dir(config))

    # -- paths ------------------------------------------------------------------------------
    def archive_path(self, backup_id: str) -> Path:
        return self.path / f"{backup_id}{ARCHIVE_SUFFIX}"

    def partial_path(self, backup_id: str) -> Path:
        return self.path / f"{backup_id}{PARTIAL_SUFFIX}"

    def manifest_path(self, backup_id: str) -> Path:
        return self.path / f"{backup_id}{MANIFEST_SUFFIX}"

    def lock_path(self, backup_id: str) -> Path:
        return self.path / f"{backup_id}{LOCK_SUFFIX}"

    def ensure(self) -> Path:
        """Create the directory (0700: archives are sensitive even when encrypted)."""
        with translate(
            {OSError: BackupError},
            doing=f"cannot create the backup directory {self.path} "
            f"(set backup_dir in config or {BACKUP_DIR_ENV})",
        ):
            self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not os.access(self.path, os.W_OK):
            raise BackupError(f"the backup directory {self.path} is not writable")
        return self.path

    # -- reading ----------------------------------------------------------------------------
    def list(self, *, strict: bool = False) -> list[Manifest]:
        """All complete backups, newest first.

        With ``strict`` a manifest that cannot be read raises :class:`ManifestError`
        (retention must not act on a listing that looks wrong); otherwise it is
        skipped and described in :attr:`problems`.
        """
        self.problems = []
        if not self.path.exists():
            return []
        if not self.path.is_dir():
            raise BackupError(f"the backup location {self.path} is not a directory")
        with translate(
            {OSError: BackupError}, doing=f"cannot read the backup directory {self.path}"
        ):
            names = sorted(os.listdir(self.path))
        manifests: list[Manifest] = []
        for name in names:
            if not name.endswith(MANIFEST_SUFFIX):
                continue
            try:
                manifests.append(self._read(self.path / name))
            except ManifestError as exc:
                if strict:
                    raise
                self.problems.append(str(exc))
        manifests.sort(key=lambda m: (m.started_at, m.id), reverse=True)
        return manifests

    def _read(self, path: Path) -> Manifest:
        with translate({OSError: ManifestError}, doing=f"cannot read {path}"):
            data = path.read_bytes()
        manifest = Manifest.from_json(data, source=str(path))
        expected = path.name[: -len(MANIFEST_SUFFIX)]
        if manifest.id != expected:
            raise ManifestError(f"{path} describes backup {manifest.id!r}, not {expected!r}")
        return manifest

    def ids(self) -> builtins.list[str]:
        """Ids of complete backups, newest first, without parsing the manifests."""
        if not self.path.is_dir():
            return []
        found = [
            name[: -len(MANIFEST_SUFFIX)]
            for name in os.listdir(self.path)
            if name.endswith(MANIFEST_SUFFIX)
        ]
        return sorted(found, reverse=True)

    def get(self, backup_id: str) -> Manifest:
        """The backup ``backup_id`` or the only one whose id starts with it."""
        wanted = backup_id.strip()
        ids = self.ids()
        if wanted in ids:
            return self._read(self.manifest_path(wanted))
        matches = [candidate for candidate in ids if candidate.startswith(wanted)] if wanted else []
        if len(matches) == 1:
            return self._read(self.manifest_path(matches[0]))
        if len(matches) > 1:
            raise UnknownBackupError(
                f"backup id {wanted!r} is ambiguous; it matches {', '.join(matches[:5])}"
                + (" ..." if len(matches) > 5 else "")
                + "; give more characters"
            )
        recent = ", ".join(ids[:5]) if ids else "(none)"
        raise UnknownBackupError(
            f"unknown backup id {wanted!r} in {self.path}; most recent: {recent}; "
            "see `migration-guard backups list`"
        )

    # -- writing ----------------------------------------------------------------------------
    def write_manifest(self, manifest: Manifest) -> Path:
        """Publish (or replace) a manifest atomically; the backup then exists."""
        target = self.manifest_path(manifest.id)
        atomic_write_bytes(target, manifest.to_json().encode("utf-8"))
        return target

    def update(self, manifest: Manifest) -> Path:
        """Replace the manifest of an existing backup atomically."""
        if not self.manifest_path(manifest.id).exists():
            raise UnknownBackupError(f"cannot update unknown backup {manifest.id!r}")
        return self.write_manifest(manifest)

    def delete(self, backup_id: str) -> None:
        """Remove a backup: the manifest first, so it leaves the catalog before its data."""
        for path in (self.manifest_path(backup_id), self.archive_path(backup_id)):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        fsync_directory(self.path)

    @contextlib.contextmanager
    def lock(self, backup_id: str) -> Iterator[Path]:
        """Hold ``<id>.lock`` while a backup is written so that sibling runs leave it alone."""
        path = self.lock_path(backup_id)
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        handle: IO[str] = os.fdopen(descriptor, "r+")
        if fcntl is not None:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.close()
                raise BackupError(
                    f"backup {backup_id} is being written by another process"
                ) from None
        try:
            handle.truncate(0)
            handle.write(str(os.getpid()))
            handle.flush()
            yield path
        finally:
            with contextlib.suppress(OSError):
                path.unlink()
            handle.close()

    def _lock_is_live(self, backup_id: str) -> bool:
        return lock_is_live(self.lock_path(backup_id))

    def cleanup_leftovers(self) -> builtins.list[Path]:
        """Remove what killed runs left behind; returns the removed paths.

        Only files older than this process and not locked by a live process go:
        unfinished archives and temp files, and archives without a manifest
        (killed between publishing the archive and its manifest, or while
        deleting a backup: never a backup that exists).
        """
        if not self.path.is_dir():
            return []
        removed: builtins.list[Path] = []
        for name in sorted(os.listdir(self.path)):
            orphan = (
                name.endswith(ARCHIVE_SUFFIX)
                and bool(ID_PATTERN.match(name[: -len(ARCHIVE_SUFFIX)]))
                and not self.manifest_path(name[: -len(ARCHIVE_SUFFIX)]).exists()
            )
            if not (name.endswith(PARTIAL_SUFFIX) or name.endswith(TMP_SUFFIX) or orphan):
                continue
            path = self.path / name
            backup_id = name.split(".", 1)[0]
            if ID_PATTERN.match(backup_id) and self._lock_is_live(backup_id):
                continue
            try:
                if path.stat().st_mtime >= PROCESS_START:
                    continue
                path.unlink()
            except FileNotFoundError:
                continue
            except OSError:
                continue
            removed.append(path)
            stale_lock = self.lock_path(backup_id)
            if stale_lock.exists() and not self._lock_is_live(backup_id):
                with contextlib.suppress(OSError):
                    stale_lock.unlink()
        if removed:
            fsync_directory(self.path)
        return removed


def mirror_to_table(url: str | URL, table: str, manifest: Manifest, *, ok: bool) -> None:
    """Record a backup in a ``backup_log`` style table of the database (``catalog_table``).

    The table is created when missing. Failures here never fail the backup: the
    files are the catalog, the table is a convenience for people who query the database.
    """
    import sqlalchemy as sa

    metadata = sa.MetaData()
    log = sa.Table(
        table,
        metadata,
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("started_at", sa.String(40), nullable=False),
        sa.Column("finished_at", sa.String(40), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("ok", sa.Boolean, nullable=False),
    )
    from migration_guard.dialects.base import guard_engine

    engine = guard_engine(url)
    try:
        with engine.begin() as connection:
            metadata.create_all(connection)
            row: Mapping[str, Any] = {
                "id": manifest.id,
                "type": manifest.type,
                "started_at": manifest.started_at,
                "finished_at": manifest.finished_at,
                "size": manifest.artifact.size,
                "ok": ok,
            }
            connection.execute(sa.delete(log).where(log.c.id == manifest.id))
            connection.execute(sa.insert(log).values(**row))
    finally:
        engine.dispose()
