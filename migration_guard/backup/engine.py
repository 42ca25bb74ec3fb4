"""Create, restore, verify and prune backups, independent of any one database.

The engine streams ``backend.dump`` through the archive writer into
``<id>.mgb.partial``, fsyncs and renames it, and publishes the manifest last.
It never branches on a dialect: per-database facts come from
:mod:`migration_guard.dialects`, the dump and load from the backend registry.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import logging
import os
import re
import secrets
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar

from migration_guard import __version__
from migration_guard.backup.catalog import (
    Catalog,
    atomic_write_bytes,
    fsync_directory,
    mirror_to_table,
)
from migration_guard.backup.manifest import (
    BACKUP_TYPES,
    Artifact,
    Encryption,
    Manifest,
    TableEntry,
    Verification,
    created_by,
    format_time,
    new_backup_id,
    redact_url,
    utc_now,
)
from migration_guard.backup.retention import POLICY_KEYS, PrunePlan, RetentionPolicy, plan_prune
from migration_guard.config import URL_ENV, Config
from migration_guard.errors import (
    ArchiveError,
    BackupError,
    ConfigError,
    EncryptionKeyError,
    InputError,
    MigrationGuardError,
    UsageError,
)
from migration_guard.urls import resolve_url

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Connection

    from migration_guard.backup.backends.base import RestoreOutcome, TableContent
    from migration_guard.backup.keys import UserKey
    from migration_guard.dialects.base import DialectOps, TableStats

log = logging.getLogger("migration_guard.backup")

#: ``progress(done_bytes, total_bytes_or_None)``; called often, must be cheap.
ProgressCallback = Callable[[int, "int | None"], None]
USER_TYPES = ("full", "critical", "tables")
KEY_ENV_HINT = "MIGRATION_GUARD_KEY, MIGRATION_GUARD_KEY_FILE or MIGRATION_GUARD_PASSPHRASE"
SQLITE_MAGIC = b"SQLite format 3\x00"
MYSQL_DUMP_FOOTER = b"-- Dump completed"
_READ_SIZE = 1 << 20
_PLAIN_TAIL = 4096


# -- settings ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class BackupSettings:
    """``[tool.migration_guard.backup]``; see docs/backups.md."""

    keep_days: int = 30
    keep_daily: int = 0
    keep_weekly: int = 0
    keep_monthly: int = 0
    auto_prune: bool = False
    compress: str = "zstd"
    level: int | None = None
    backend: str | None = None
    catalog_table: str | None = None
    threads: int = 2
    #: ``quick`` re-hashes the written file, ``full`` runs level-1 verify, ``off`` skips.
    verify_after_backup: str = "quick"
    #: Also record the server's own ``CHECKSUM TABLE`` (reads every table again).
    server_checksums: bool = False

    @property
    def retention(self) -> RetentionPolicy:
        return RetentionPolicy(
            keep_days=self.keep_days,
            keep_daily=self.keep_daily,
            keep_weekly=self.keep_weekly,
            keep_monthly=self.keep_monthly,
        )


_SETTING_TYPES: dict[str, tuple[type, ...]] = {
    "keep_days": (int,),
    "keep_daily": (int,),
    "keep_weekly": (int,),
    "keep_monthly": (int,),
    "auto_prune": (bool,),
    "compress": (str,),
    "level": (int,),
    "backend": (str,),
    "catalog_table": (str,),
    "threads": (int,),
    "verify_after_backup": (str,),
    "server_checksums": (bool,),
}
VERIFY_AFTER_BACKUP = ("quick", "full", "off")
_TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


def backup_settings(config: Config) -> BackupSettings:
    """Validated ``[tool.migration_guard.backup]`` settings; unknown keys are a ConfigError."""
    raw: Mapping[str, Any] = config.sections.get("backup", {}) or {}
    where = f"{config.source or 'config'}: [tool.migration_guard.backup]"
    values: dict[str, Any] = {}
    for key, value in raw.items():
        expected = _SETTING_TYPES.get(key)
        if expected is None:
            raise ConfigError(
                f"{where}: unknown key {key!r}; known keys: {', '.join(sorted(_SETTING_TYPES))}",
                key=key,
            )
        is_bool = isinstance(value, bool)
        if not isinstance(value, expected) or (is_bool and bool not in expected):
            kind = expected[0].__name__
            raise ConfigError(f"{where}: {key} must be of type {kind}, not {value!r}", key=key)
        values[key] = value
    for key in (*POLICY_KEYS, "threads"):
        if key in values and values[key] < (1 if key == "threads" else 0):
            raise ConfigError(f"{where}: {key} must not be negative", key=key)
    if values.get("verify_after_backup", "quick") not in VERIFY_AFTER_BACKUP:
        raise ConfigError(
            f"{where}: verify_after_backup must be one of {', '.join(VERIFY_AFTER_BACKUP)}",
            key="verify_after_backup",
        )
    table = values.get("catalog_table")
    if table is not None and not _TABLE_NAME.match(table):
        raise ConfigError(
            f"{where}: catalog_table must be a plain table name (letters, digits, _)",
            key="catalog_table",
        )
    return BackupSettings(**values)


# -- results ----------------------------------------------------------------------------------
@dataclass
class VerifyResult:
    """Outcome of :func:`verify`. ``reason`` is an :class:`ArchiveError` reason or a check name."""

    backup_id: str
    ok: bool
    level: int
    reason: str | None = None
    details: list[str] = field(default_factory=list)
    restore_test: bool = False
    restore_test_ok: bool | None = None
    verified_at: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.backup_id,
            "ok": self.ok,
            "level": self.level,
            "reason": self.reason,
            "details": self.details,
            "restore_test": self.restore_test,
            "restore_test_ok": self.restore_test_ok,
            "verified_at": self.verified_at,
        }


@dataclass
class RestoreResult:
    """Outcome of :func:`restore`. ``mismatches`` empty means the target equals the backup."""

    backup_id: str
    target_url: str
    database: str
    tables: list[str]
    dry_run: bool = False
    safety_backup_id: str | None = None
    target_was_empty: bool = True
    mismatches: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.backup_id,
            "ok": self.ok,
            "target_url": self.target_url,
            "database": self.database,
            "tables": self.tables,
            "dry_run": self.dry_run,
            "safety_backup_id": self.safety_backup_id,
            "target_was_empty": self.target_was_empty,
            "mismatches": self.mismatches,
            "notes": self.notes,
            "seconds": round(self.seconds, 3),
        }


# -- outcome reporting (event log + notifications, see migration_guard.monitoring.events) ----------
_F = TypeVar("_F", bound=Callable[..., Any])


def _reported(subject: str) -> Callable[[_F], _F]:
    """Record the outcome of ``create``/``verify``/``prune`` and notify; never alters it."""

    def decorate(function: _F) -> _F:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            from migration_guard.monitoring.events import report_operation

            started = time.monotonic()
            try:
                result = function(*args, **kwargs)
            except BaseException as exc:
                report_operation(
                    subject, args, kwargs, error=exc, seconds=time.monotonic() - started
                )
                raise
            report_operation(
                subject, args, kwargs, result=result, seconds=time.monotonic() - started
            )
            return result

        return wrapper  # type: ignore[return-value]

    return decorate


# -- helpers ----------------------------------------------------------------------------------
def _dialect_ops(url: URL) -> DialectOps:
    from migration_guard.dialects import get_dialect_ops

    return get_dialect_ops(url.get_backend_name())


def _family(dialect: str) -> str:
    return "mysql" if dialect in ("mysql", "mariadb") else dialect


def _connection(url: URL) -> contextlib.AbstractContextManager[Connection]:
    from migration_guard.dialects.base import transaction

    return transaction(url)


def _load_key() -> UserKey | None:
    from migration_guard.backup.keys import load_user_key

    return load_user_key()


def _key_for(manifest_fingerprint: str | None, what: str) -> UserKey | None:
    """The configured key, checked against the fingerprint an archive was sealed with."""
    if manifest_fingerprint is None:
        return None
    key = _load_key()
    if key is None:
        raise EncryptionKeyError(
            f"{what} is encrypted (key fingerprint {manifest_fingerprint}) and no key is "
            f"configured; set {KEY_ENV_HINT}"
        )
    if key.fingerprint != manifest_fingerprint:
        raise EncryptionKeyError(
            f"wrong key: {what} was encrypted with the key whose fingerprint is "
            f"{manifest_fingerprint}, the configured key has fingerprint {key.fingerprint}; "
            f"set {KEY_ENV_HINT} to the key used for the backup"
        )
    return key


def _fingerprint(manifest: Manifest) -> str | None:
    encryption = manifest.artifact.encryption
    return encryption.key_fingerprint if encryption else None


def _find_enospc(exc: BaseException) -> bool:
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


def _remove_quietly(*paths: Path) -> None:
    for path in paths:
        with contextlib.suppress(OSError):
            path.unlink()


class _CountingSink:
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


class _HashingSource:
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
        while self.read(_READ_SIZE):
            pass


def _stats_entry(stats: TableStats) -> TableEntry:
    return TableEntry(
        rows=stats.rows,
        checksum=stats.checksum,
        size=stats.size_bytes,
        ddl_sha256=stats.ddl_sha256,
        content_sha256=stats.content_sha256,
    )


def _expand_critical(config: Config, url: URL) -> list[str]:
    if not config.protected_tables:
        raise UsageError(
            "--type critical backs up the protected tables, and none are configured; set "
            "protected_tables in [tool.migration_guard] or use --type full / --type tables"
        )
    ops = _dialect_ops(url)
    with _connection(url) as conn:
        live = ops.list_tables(conn)
    matcher = config.protected
    selected = [name for name in live if matcher.is_protected(name)]
    if not selected:
        raise UsageError(
            "--type critical: no table of the database matches protected_tables "
            f"({', '.join(config.protected_tables)})"
        )
    return selected


def _check_tables_exist(url: URL, tables: Sequence[str]) -> list[str]:
    ops = _dialect_ops(url)
    with _connection(url) as conn:
        live = set(ops.list_tables(conn))
    missing = [t for t in tables if t not in live]
    if missing:
        raise UsageError(f"--tables: no such table in {redact_url(url)}: {', '.join(missing)}")
    return list(dict.fromkeys(tables))


def _space_error(directory: Path) -> BackupError:
    return BackupError(
        f"no space left on device in {directory}; free space or set backup_dir "
        "(or MIGRATION_GUARD_BACKUP_DIR) to a larger location. Nothing was kept."
    )


# -- create -----------------------------------------------------------------------------------
@_reported("backup")
def create(
    config: Config,
    *,
    url: str | URL | None = None,
    type: str = "full",
    tables: Sequence[str] | None = None,
    compress: str | None = None,
    level: int | None = None,
    encrypt: bool | None = None,
    backend: str | None = None,
    progress: ProgressCallback | None = None,
    labels: Mapping[str, Any] | None = None,
    server_checksums: bool | None = None,
) -> Manifest:
    """Back up a database into the catalog and return its manifest.

    ``encrypt=None`` encrypts when a key is configured. ``type`` is ``full``,
    ``critical`` (the protected tables), ``tables`` (``tables`` only) or ``safety``.
    ``server_checksums`` (default: the ``server_checksums`` setting) also records
    the database's own per-table checksum beside the stream's row digests.
    """
    from migration_guard.backup import archive
    from migration_guard.backup.backends import default_backend, get_backend

    settings = backup_settings(config)
    target = resolve_url(config, url)
    if type not in BACKUP_TYPES or type == "incremental":
        raise UsageError(f"unknown backup type {type!r}; choose one of {', '.join(USER_TYPES)}")
    compression = compress or settings.compress
    if compression not in archive.COMPRESSIONS:
        raise UsageError(
            f"unknown compression {compression!r}; choose one of {', '.join(archive.COMPRESSIONS)}"
        )
    if type == "tables" and not tables:
        raise UsageError("--type tables needs the tables to back up: --tables T [--tables U]")
    selected: list[str] | None = None
    if type == "critical":
        selected = _expand_critical(config, target)
    elif tables:
        selected = _check_tables_exist(target, tables)

    key = _load_key()
    if encrypt is True and key is None:
        raise EncryptionKeyError(
            f"--encrypt needs a key and none is configured; create one with "
            f"`migration-guard keygen` and set {KEY_ENV_HINT}"
        )
    if encrypt is False:
        key = None

    dialect = target.get_backend_name()
    backend_name = backend or settings.backend or default_backend(dialect)
    dumper = get_backend(backend_name)

    catalog = Catalog.for_config(config)
    directory = catalog.ensure()
    for leftover in catalog.cleanup_leftovers():
        log.info("removed leftover of an interrupted run: %s", leftover.name)

    started = utc_now()
    backup_id = new_backup_id(type, started)
    partial = catalog.partial_path(backup_id)
    final = catalog.archive_path(backup_id)
    published = False
    with catalog.lock(backup_id):
        try:
            descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as handle:
                writer = archive.open_writer(
                    handle,
                    backup_id=backup_id,
                    compression=compression,
                    level=level if level is not None else settings.level,
                    key=key,
                    threads=settings.threads,
                )
                sink = _CountingSink(writer, progress, None)  # type: ignore[arg-type]
                try:
                    result = dumper.dump(
                        target,
                        sink,  # type: ignore[arg-type]
                        tables=selected,
                        server_checksums=(
                            settings.server_checksums
                            if server_checksums is None
                            else server_checksums
                        ),
                    )
                except BaseException:
                    # Unfinished on purpose: an interrupted archive must read as truncated.
                    writer.abort()
                    raise
                writer.close()
                handle.flush()
                os.fsync(handle.fileno())
            stats = writer.stats
            os.replace(partial, final)
            fsync_directory(directory)
            finished = utc_now()
            manifest = Manifest(
                id=backup_id,
                type=type,
                source_url=redact_url(target),
                dialect=dialect,
                started_at=format_time(started),
                finished_at=format_time(finished),
                artifact=Artifact(
                    file=final.name,
                    size=final.stat().st_size,
                    sha256=stats.sha256,
                    compression=compression,
                    encryption=Encryption(key_fingerprint=key.fingerprint) if key else None,
                    stream_format=result.stream_format,
                    plain_size=stats.plain_bytes,
                ),
                backend=backend_name,
                tool_version=__version__,
                created_by=created_by(),
                server_version=result.server_version,
                binlog=dict(result.binlog) if result.binlog else None,
                tables={name: _stats_entry(s) for name, s in result.tables.items()},
                objects=dict(result.objects or {}),
                labels=dict(labels or {}),
                extra=dict(result.extra or {}),
            )
            if settings.verify_after_backup == "quick":
                manifest.verification = _quick_verification(final, manifest)
            catalog.write_manifest(manifest)
            published = True
        except BaseException as exc:
            _remove_quietly(partial)
            if not published:
                _remove_quietly(final, catalog.manifest_path(backup_id))
            if _find_enospc(exc):
                raise _space_error(directory) from None
            if isinstance(exc, MigrationGuardError):
                raise
            if isinstance(exc, OSError):
                raise BackupError(
                    f"cannot write the backup to {directory}: {exc.strerror or exc}"
                ) from None
            raise

    if settings.verify_after_backup == "full":
        verify(config, backup_id)
        manifest = catalog.get(backup_id)
    if settings.catalog_table:
        try:
            mirror_to_table(
                target,
                settings.catalog_table,
                manifest,
                ok=manifest.verification.ok is not False,
            )
        except Exception as exc:  # the files are the catalog; the table is a convenience
            log.warning(
                "could not record backup %s in %s: %s",
                backup_id,
                settings.catalog_table,
                type_name(exc),
            )
    if settings.auto_prune:
        try:
            plan = prune(config)
            for deleted, reason in plan.delete:
                log.info("auto_prune deleted %s (%s)", deleted, reason)
        except BackupError as exc:
            log.warning("auto_prune skipped: %s", exc)
    return manifest


def type_name(exc: BaseException) -> str:
    """An exception's class name only: driver messages may echo credentials."""
    return type(exc).__name__


def _quick_verification(path: Path, manifest: Manifest) -> Verification:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_READ_SIZE):
            digest.update(chunk)
    ok = digest.hexdigest() == manifest.artifact.sha256
    detail = (
        "artifact re-read after writing: SHA-256 matches"
        if ok
        else "artifact re-read after writing: SHA-256 differs from what was written"
    )
    if not ok:
        raise BackupError(
            f"backup {manifest.id}: the file on disk differs from what was written "
            "(storage error?); the backup was discarded"
        )
    return Verification(last_verified_at=format_time(utc_now()), level=0, ok=True, details=[detail])


# -- verify -----------------------------------------------------------------------------------
def _check_structure(stream_format: str, head: bytes, tail: bytes, size: int) -> str | None:
    """A problem with the plain stream's shape, or None."""
    if size == 0:
        return "the plain stream is empty"
    lowered = stream_format.lower()
    if lowered == "sqlite-db" and not head.startswith(SQLITE_MAGIC):
        return "the plain stream does not start with the SQLite header"
    if lowered == "mysql-sql" and MYSQL_DUMP_FOOTER not in tail:
        return "the SQL dump has no '-- Dump completed' footer (incomplete dump)"
    return None


def _verify_level1(
    catalog: Catalog,
    manifest: Manifest,
    key: UserKey | None,
    progress: ProgressCallback | None,
) -> tuple[bool, str | None, list[str]]:
    from migration_guard.backup import archive

    path = catalog.archive_path(manifest.id)
    details: list[str] = []
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return False, "missing", [f"the archive {path.name} is missing"]
    if size != manifest.artifact.size:
        details.append(f"size {size} differs from the manifest's {manifest.artifact.size} bytes")
    head = b""
    tail = b""
    plain = 0
    with path.open("rb") as handle:
        source = _HashingSource(handle, progress, size)
        try:
            reader = archive.open_reader(source, key=key)
            header = reader.header
            if header.backup_id != manifest.id:
                details.append(f"the archive header names backup {header.backup_id}")
            while chunk := reader.read(_READ_SIZE):
                if len(head) < len(SQLITE_MAGIC):
                    head += chunk[: len(SQLITE_MAGIC)]
                tail = (tail + chunk)[-_PLAIN_TAIL:]
                plain += len(chunk)
            source.drain()
        except ArchiveError as exc:
            return False, exc.reason, [*details, str(exc)]
    if source.digest.hexdigest() != manifest.artifact.sha256:
        details.append("SHA-256 of the archive differs from the manifest")
        return False, "corrupted", details
    if details:
        return False, "corrupted", details
    if manifest.artifact.plain_size is not None and plain != manifest.artifact.plain_size:
        return (
            False,
            "corrupted",
            [f"plain stream has {plain} bytes, the manifest says {manifest.artifact.plain_size}"],
        )
    problem = _check_structure(manifest.artifact.stream_format, head, tail, plain)
    if problem:
        return False, "structure", [problem]
    return True, None, [f"archive intact: {size} bytes, SHA-256 matches, {plain} plain bytes"]


def _compare_stats(
    expected: Mapping[str, TableEntry], actual: Mapping[str, TableStats]
) -> list[str]:
    """Mismatches between the manifest's tables and the restored database's, on
    every measure both sides have."""
    mismatches: list[str] = []
    for name, entry in sorted(expected.items()):
        if entry.ref is not None:
            continue
        got = actual.get(name)
        if got is None:
            mismatches.append(f"table {name}: missing after restore")
            continue
        if entry.rows is not None and got.rows is not None and got.rows != entry.rows:
            mismatches.append(f"table {name}: {got.rows} rows, expected {entry.rows}")
        if (
            entry.checksum is not None
            and got.checksum is not None
            and str(got.checksum) != str(entry.checksum)
        ):
            mismatches.append(f"table {name}: checksum {got.checksum}, expected {entry.checksum}")
        if entry.ddl_sha256 and got.ddl_sha256 and got.ddl_sha256 != entry.ddl_sha256:
            mismatches.append(f"table {name}: definition (DDL) differs")
    return mismatches


def _compare_content(
    expected: Mapping[str, TableEntry], content: Mapping[str, TableContent], source: str
) -> list[str]:
    """Mismatches between the manifest's row digests and those read from ``source``
    ("the restored stream", "a new dump of the restored database")."""
    mismatches: list[str] = []
    for name, entry in sorted(expected.items()):
        if entry.ref is not None or not entry.content_sha256:
            continue
        seen = content.get(name)
        if seen is None:
            mismatches.append(f"table {name}: no rows of it in {source}")
        elif seen.sha256 != entry.content_sha256:
            mismatches.append(
                f"table {name}: the rows in {source} differ from the backup's "
                f"(content_sha256 {seen.sha256[:12]}, expected {entry.content_sha256[:12]})"
            )
        elif seen.rows is not None and entry.rows is not None and seen.rows != entry.rows:
            mismatches.append(f"table {name}: {seen.rows} rows in {source}, expected {entry.rows}")
    return mismatches


def _measure_checksums(entries: Mapping[str, TableEntry]) -> bool:
    """Whether any entry records a server checksum (only then is it worth reading)."""
    return any(entry.checksum is not None for entry in entries.values())


def _compare_objects(expected: Mapping[str, Any], actual: Mapping[str, Any]) -> list[str]:
    """Views, triggers, routines, events: by definition hash when known, else by name."""
    mismatches: list[str] = []
    for kind, wanted in sorted(expected.items()):
        got = actual.get(kind) or {}
        singular = kind[:-1] if kind.endswith("s") else kind
        if isinstance(wanted, Mapping):
            for name, digest in sorted(wanted.items()):
                if name not in got:
                    mismatches.append(f"{singular} {name}: missing")
                elif got[name] != digest:
                    mismatches.append(f"{singular} {name}: definition differs")
        elif isinstance(wanted, (list, tuple)):
            names = sorted(map(str, wanted))
            mismatches.extend(f"{singular} {name}: missing" for name in names if name not in got)
    return mismatches


def _scratch_target(config: Config, manifest: Manifest, scratch_url: str | None) -> URL:
    """Where a restore test goes: a new database with a generated name."""
    from sqlalchemy.engine import make_url

    name = f"mg_verify_{secrets.token_hex(4)}"
    if _family(manifest.dialect) == "sqlite":
        directory = Path(tempfile.gettempdir())
        if scratch_url:
            base = make_url(scratch_url)
            if base.database:
                directory = Path(base.database).parent
        return make_url(f"sqlite:///{directory / (name + '.db')}")
    if scratch_url:
        base = make_url(scratch_url)
    else:
        candidate = config.url or os.environ.get(URL_ENV) or manifest.source_url
        base = make_url(candidate)
    if _family(base.get_backend_name()) != _family(manifest.dialect):
        raise UsageError(
            f"--scratch-url is a {base.get_backend_name()} URL but backup {manifest.id} is "
            f"{manifest.dialect}; give a URL of a {manifest.dialect} server"
        )
    return _dialect_ops(base).scratch_url(base, name)


def _create_database(ops: DialectOps, url: URL, options: Mapping[str, Any]) -> None:
    with _connection(ops.admin_url(url)) as admin:
        ops.create_database(
            admin,
            ops.database_name(url),
            charset=options.get("charset"),
            collation=options.get("collation"),
        )


def _drop_database(ops: DialectOps, url: URL) -> None:
    with _connection(ops.admin_url(url)) as admin:
        ops.drop_database(admin, ops.database_name(url))


def _stream_restore(
    manifest: Manifest,
    catalog: Catalog,
    key: UserKey | None,
    url: URL,
    tables: Sequence[str] | None,
    progress: ProgressCallback | None,
) -> RestoreOutcome:
    from migration_guard.backup import archive
    from migration_guard.backup.backends import get_backend

    loader = get_backend(manifest.backend)
    path = catalog.archive_path(manifest.id)
    if not path.is_file():
        raise BackupError(f"the archive of backup {manifest.id} is missing: {path}")
    with path.open("rb") as handle:
        source = _HashingSource(handle, progress, path.stat().st_size)
        reader = archive.open_reader(source, key=key)
        return loader.restore(
            url,
            reader,  # type: ignore[arg-type]
            stream_format=manifest.artifact.stream_format,
            tables=list(tables) if tables else None,
        )


def _database_options(manifest: Manifest) -> dict[str, Any]:
    options = manifest.extra.get("database_options")
    return dict(options) if isinstance(options, Mapping) else {}


def _restore_test(
    config: Config,
    catalog: Catalog,
    manifest: Manifest,
    key: UserKey | None,
    scratch_url: str | None,
) -> tuple[bool, list[str]]:
    from migration_guard.backup.backends import get_backend

    scratch = _scratch_target(config, manifest, scratch_url)
    ops = _dialect_ops(scratch)
    created = False
    try:
        _create_database(ops, scratch, _database_options(manifest))
        created = True
        outcome = _stream_restore(manifest, catalog, key, scratch, None, None)
        tables = list(manifest.tables)
        with _connection(scratch) as conn:
            actual = ops.table_stats(conn, tables, checksums=_measure_checksums(manifest.tables))
            objects = ops.objects(conn)
        mismatches = _compare_stats(manifest.tables, actual)
        mismatches += _compare_content(manifest.tables, outcome.content, "the restored stream")
        redumped = get_backend(manifest.backend).content_digests(scratch, tables)
        if redumped is not None:
            mismatches += _compare_content(
                manifest.tables, redumped, "a new dump of the restored database"
            )
        mismatches += _compare_objects(manifest.objects, objects)
    finally:
        if created:
            try:
                _drop_database(ops, scratch)
            except MigrationGuardError as exc:
                log.warning("could not drop the scratch database: %s", exc)
    if mismatches:
        return False, mismatches
    return True, [f"restore test into a scratch database: {len(manifest.tables)} tables equal"]


@_reported("verify")
def verify(
    config: Config,
    backup_id: str,
    *,
    restore_test: bool = False,
    scratch_url: str | None = None,
    progress: ProgressCallback | None = None,
) -> VerifyResult:
    """Check a backup and record the outcome in its manifest.

    Level 1 decrypts, decompresses and hashes the whole archive against the
    manifest and checks the stream's structure. ``restore_test`` (level 2) also
    restores into a scratch database, compares every table and drops it again.
    """
    catalog = Catalog.for_config(config)
    manifest = catalog.get(backup_id)
    key = _key_for(_fingerprint(manifest), f"backup {manifest.id}")
    ok, reason, details = _verify_level1(catalog, manifest, key, progress)
    result = VerifyResult(
        backup_id=manifest.id,
        ok=ok,
        level=1,
        reason=reason,
        details=details,
        verified_at=format_time(utc_now()),
    )
    if restore_test:
        result.restore_test = True
        result.level = 2
        if ok:
            test_ok, test_details = _restore_test(config, catalog, manifest, key, scratch_url)
            result.restore_test_ok = test_ok
            result.details.extend(test_details)
            if not test_ok:
                result.ok = False
                result.reason = "restore-test"
        else:
            result.restore_test_ok = False
            result.details.append("restore test skipped: the archive failed level 1")
    manifest.verification = Verification(
        last_verified_at=result.verified_at,
        level=result.level,
        ok=result.ok,
        restore_test_at=(
            result.verified_at if restore_test else manifest.verification.restore_test_at
        ),
        restore_test_ok=(
            result.restore_test_ok if restore_test else manifest.verification.restore_test_ok
        ),
        details=result.details,
    )
    catalog.update(manifest)
    return result


# -- restore ----------------------------------------------------------------------------------
def restore(
    config: Config,
    backup_id: str,
    *,
    url: str | URL | None,
    tables: Sequence[str] | None = None,
    yes: bool = False,
    dry_run: bool = False,
    confirm: Callable[[str], bool] | None = None,
    safety_backup: bool = True,
    progress: ProgressCallback | None = None,
) -> RestoreResult:
    """Restore ``backup_id`` into the database at ``url`` (any database name).

    A target that exists and holds tables is only overwritten with ``yes`` or
    when ``confirm(database_name)`` returns True; a safety backup of it is taken
    first. Afterwards each table is compared with the manifest.
    """
    started = time.monotonic()
    catalog = Catalog.for_config(config)
    manifest = catalog.get(backup_id)
    if url is None:
        raise UsageError("restore needs the target: pass --url TARGET_URL")
    target = resolve_url(config, url)
    if _family(target.get_backend_name()) != _family(manifest.dialect):
        raise UsageError(
            f"backup {manifest.id} is a {manifest.dialect} backup and cannot be restored into "
            f"a {target.get_backend_name()} database; give a {manifest.dialect} URL"
        )
    wanted = list(dict.fromkeys(tables)) if tables else None
    if wanted:
        unknown = [t for t in wanted if t not in manifest.tables]
        if unknown:
            raise UsageError(
                f"backup {manifest.id} has no table {', '.join(unknown)}; it holds: "
                f"{', '.join(sorted(manifest.tables)) or '(none)'}"
            )
    key = _key_for(_fingerprint(manifest), f"backup {manifest.id}")
    if not catalog.archive_path(manifest.id).is_file():
        raise BackupError(f"the archive of backup {manifest.id} is missing from {catalog.path}")

    ops = _dialect_ops(target)
    database = ops.database_name(target)
    exists = ops.database_exists(target)
    empty = ops.is_empty(target)
    result = RestoreResult(
        backup_id=manifest.id,
        target_url=redact_url(target),
        database=database,
        tables=wanted or sorted(manifest.tables),
        dry_run=dry_run,
        target_was_empty=empty,
    )
    if not empty and not yes and not dry_run:
        if confirm is None:
            raise UsageError(
                f"the target database {database!r} exists and is not empty; pass --yes to "
                "overwrite it (a safety backup is taken first) or restore into another database"
            )
        if not confirm(database):
            raise UsageError(f"restore cancelled: the database name {database!r} was not confirmed")
    if dry_run:
        if not empty:
            result.notes.append(
                f"would overwrite the non-empty database {database!r}"
                + (" after a safety backup of it" if safety_backup else "")
            )
        result.notes.append(
            f"would restore {len(result.tables)} table(s) from {manifest.id} "
            f"({manifest.artifact.size} bytes, {manifest.artifact.compression}"
            + (", encrypted" if manifest.encrypted else "")
            + ")"
        )
        result.seconds = time.monotonic() - started
        return result
    if not empty and safety_backup:
        safety = create(
            config,
            url=target,
            type="safety",
            labels={"before_restore_of": manifest.id, "target": redact_url(target)},
        )
        result.safety_backup_id = safety.id
        result.notes.append(f"safety backup of the target taken first: {safety.id}")
    if not exists:
        _create_database(ops, target, _database_options(manifest))
    outcome = _stream_restore(manifest, catalog, key, target, wanted, progress)
    expected = {name: manifest.tables[name] for name in result.tables}
    with _connection(target) as conn:
        live = ops.list_tables(conn)
        actual = ops.table_stats(
            conn, [t for t in result.tables if t in live], checksums=_measure_checksums(expected)
        )
        objects = ops.objects(conn) if not wanted else {}
    result.mismatches = _compare_stats(expected, actual)
    result.mismatches += _compare_content(expected, outcome.content, "the restored stream")
    if not wanted:
        result.mismatches += _compare_objects(manifest.objects, objects)
        extra = sorted(set(live) - set(manifest.tables))
        if extra:
            result.notes.append(
                f"tables in the target that are not in the backup were left alone: "
                f"{', '.join(extra)}"
            )
    result.seconds = time.monotonic() - started
    return result


# -- prune, list, show, decrypt, keygen ---------------------------------------------------------
@_reported("prune")
def prune(config: Config, *, dry_run: bool = False, now: Any = None) -> PrunePlan:
    """Apply the retention policy; ``dry_run`` only returns what would go."""
    from migration_guard.backup.manifest import ManifestError

    settings = backup_settings(config)
    catalog = Catalog.for_config(config)
    if not catalog.path.is_dir():
        raise BackupError(
            f"refusing to prune: the backup location {catalog.path} does not exist or is "
            "not a directory; check backup_dir / MIGRATION_GUARD_BACKUP_DIR"
        )
    try:
        manifests = catalog.list(strict=True)
    except ManifestError as exc:
        raise BackupError(f"refusing to prune: {exc}") from None
    plan = plan_prune(manifests, now or utc_now(), settings.retention)
    if not dry_run:
        for backup_id, _ in plan.delete:
            catalog.delete(backup_id)
        catalog.cleanup_leftovers()
    return plan


def list_backups(config: Config) -> list[Manifest]:
    """Every complete backup in the catalog, newest first."""
    return Catalog.for_config(config).list()


def show(config: Config, backup_id: str) -> Manifest:
    """The manifest of one backup (a unique id prefix is enough)."""
    return Catalog.for_config(config).get(backup_id)


def decrypt(
    config: Config,
    file: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    force: bool = False,
) -> int:
    """Write the plain stream of an archive (a path or a backup id) to ``out``; bytes written.

    The output appears atomically and only when complete; an existing ``out``
    is replaced only with ``force``. Use ``-`` for standard output.
    """
    import sys

    from migration_guard.backup import archive

    source = Path(file)
    if not source.is_file():
        catalog = Catalog.for_config(config)
        try:
            source = catalog.archive_path(catalog.get(str(file)).id)
        except MigrationGuardError:
            raise InputError(f"{file}: no such archive file or backup id") from None
    with source.open("rb") as handle:
        try:
            header = archive.read_header(handle)
        except ArchiveError as exc:
            raise ArchiveError(f"{source}: {exc}", reason=exc.reason) from None
    key = _key_for(header.key_fingerprint if header.encrypted else None, str(source))
    if str(out) == "-":
        with source.open("rb") as handle:
            return int(archive.copy_plain(handle, sys.stdout.buffer, key=key))
    target = Path(out)
    if target.exists() and not force:
        raise UsageError(f"{target} exists; remove it or pass --force to overwrite it")
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as output, source.open("rb") as handle:
            written = int(archive.copy_plain(handle, output, key=key))
            output.flush()
            os.fsync(output.fileno())
        os.replace(temporary, target)
    except BaseException as exc:
        _remove_quietly(temporary)
        if _find_enospc(exc):
            raise _space_error(target.parent) from None
        if isinstance(exc, OSError) and not isinstance(exc, MigrationGuardError):
            raise InputError(f"cannot write {target}: {exc.strerror or exc}") from None
        raise
    fsync_directory(target.parent)
    return written


def keygen() -> str:
    """A new random 256-bit key in its text form (``mgk1:...``). Store it, never pass it in argv."""
    from migration_guard.backup.keys import generate_key

    return generate_key()


__all__ = [
    "BackupSettings",
    "RestoreResult",
    "VerifyResult",
    "atomic_write_bytes",
    "backup_settings",
    "create",
    "decrypt",
    "keygen",
    "list_backups",
    "prune",
    "resolve_url",
    "restore",
    "show",
    "verify",
]
