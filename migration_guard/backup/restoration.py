"""Restore a backup into any database of its family, then prove the result equal."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from migration_guard.backup.catalog import Catalog
from migration_guard.backup.compare import (
    compare_content,
    compare_objects,
    compare_stats,
    measure_checksums,
    recorded_digest,
)
from migration_guard.backup.creation import create
from migration_guard.backup.database import (
    check_database_options,
    check_identifiers,
    connection,
    create_database,
    database_options,
    dialect_ops,
    same_family,
)
from migration_guard.backup.load import load_checked
from migration_guard.backup.manifest import Manifest, TableEntry, redact_url
from migration_guard.backup.pins import pinning
from migration_guard.backup.scratch import clean_up_after_killed_runs
from migration_guard.backup.streams import ProgressCallback
from migration_guard.backup.trust import check_before_restore, checked_archive
from migration_guard.backup.verification import archive_key
from migration_guard.config import Config
from migration_guard.errors import (
    BackupError,
    LoadRolledBack,
    MigrationGuardError,
    RestoreFailed,
    UsageError,
)
from migration_guard.urls import resolve_url

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Connection

    from migration_guard.backup.backends.base import RestoreOptions, RestoreOutcome
    from migration_guard.backup.catalog import Catalog as CatalogType
    from migration_guard.backup.keys import UserKey
    from migration_guard.dialects.base import DialectOps, TableStats
    from migration_guard.events import EventSink


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


@pinning("restore")  # nothing is pruned while this runs, least of all this backup
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
    on_event: EventSink | None = None,
    allow_unencrypted: bool = False,
    options: RestoreOptions | None = None,
) -> RestoreResult:
    """Restore ``backup_id`` into the database at ``url`` (any database name).

    A target that exists and holds tables is only overwritten with ``yes`` or
    when ``confirm(database_name)`` returns True; a safety backup of it is taken
    first. Afterwards each table is compared with the manifest. The restore
    itself is not an event; ``on_event`` receives the safety backup's.

    All or nothing: the archive header and the manifest's MAC are checked first,
    then (after the safety backup) the whole archive, and only then does the
    first statement run. An unencrypted backup is refused while a key is
    configured unless ``allow_unencrypted``. A failure after the safety backup
    raises :class:`~migration_guard.errors.RestoreFailed`, whose message says
    what state the target is in and names the safety backup. A backend that
    loads in one transaction (pgdump into a non-empty database) reports a
    failure as rolled back; the target is then measured against the safety
    backup's manifest, and said to be unchanged only when every table matches.
    ``options`` (owners, grants) go to the backend, which refuses any it
    cannot honour before anything happens.
    """
    started = time.monotonic()
    catalog = Catalog.for_config(config)
    manifest = catalog.get(backup_id)
    if url is None:
        raise UsageError("restore needs the target: pass --url TARGET_URL")
    target = resolve_url(config, url)
    if not same_family(target.get_backend_name(), manifest.dialect):
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
    key = archive_key(manifest, catalog.archive_path(manifest.id))
    if not dry_run:
        clean_up_after_killed_runs(catalog)
    if not catalog.archive_path(manifest.id).is_file():
        raise BackupError(f"the archive of backup {manifest.id} is missing from {catalog.path}")
    warnings = check_before_restore(catalog, manifest, key, allow_unencrypted=allow_unencrypted)
    check_identifiers(manifest)
    if options is not None:
        from migration_guard.backup.backends import get_backend

        get_backend(manifest.backend).configured(options)  # refuses unusable options now

    ops = dialect_ops(target)
    # The restored rows are measured as the backup's were; a method this version
    # lacks stops the restore here, before anything is written.
    digest = recorded_digest(ops, manifest)
    ops.check_server_digest(target, digest)  # a server too old for it: the same
    database = ops.database_name(target)
    exists = ops.database_exists(target)
    empty = not exists or not ops.holds_tables(target)
    database_settings = database_options(manifest)
    if not exists:
        check_database_options(ops, target, database_settings)
    result = RestoreResult(
        backup_id=manifest.id,
        target_url=redact_url(target),
        database=database,
        tables=wanted or sorted(manifest.tables),
        dry_run=dry_run,
        target_was_empty=empty,
    )
    result.notes.extend(f"warning: {warning}" for warning in warnings)
    if not empty:
        from migration_guard.backup.backends import get_backend

        problem = get_backend(manifest.backend).overwrite_problem(manifest.extra, wanted)
        if problem is not None:
            raise UsageError(f"cannot restore {manifest.id} into {database!r}: {problem}")
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
    before: dict[str, TableEntry] | None = None
    before_digest: str | None = None
    if not empty and safety_backup:
        safety = create(
            config,
            url=target,
            type="safety",
            labels={"before_restore_of": manifest.id, "target": redact_url(target)},
            on_event=on_event,
        )
        result.safety_backup_id = safety.id
        before = dict(safety.tables)
        before_digest = recorded_digest(ops, safety)
        result.notes.append(f"safety backup of the target taken first: {safety.id}")
    outcome = _load(
        catalog,
        manifest,
        key,
        (ops, target),
        wanted,
        database_settings,
        exists,
        result,
        progress,
        options=options,
        before=before,
        before_digest=before_digest,
    )
    expected = {name: manifest.tables[name] for name in result.tables}
    with connection(target) as conn:
        live = ops.backup_tables(conn)
        actual = _restored_stats(
            ops, conn, [t for t in result.tables if t in live], expected, outcome, digest
        )
        objects = ops.objects(conn) if not wanted else {}
    result.mismatches = compare_stats(expected, actual, digest)
    result.mismatches += compare_content(expected, outcome.content, "the restored stream")
    if not wanted:
        result.mismatches += compare_objects(manifest.objects, objects)
        extra = sorted(set(live) - set(manifest.tables))
        if extra:
            result.notes.append(
                f"tables in the target that are not in the backup were left alone: "
                f"{', '.join(extra)}"
            )
    result.seconds = time.monotonic() - started
    return result


def _restored_stats(
    ops: DialectOps,
    conn: Connection,
    tables: list[str],
    expected: dict[str, TableEntry],
    outcome: RestoreOutcome,
    digest: str | None,
) -> dict[str, TableStats]:
    """Every table's rows, checksum and definition in the restored target, the
    checksums by the backup's row digest method ``digest``.

    Rows and checksums the backend already read after loading
    (``outcome.measured``, when by that method) are not read again; the
    definitions are, now that the restore is complete, and so is every table the
    backend did not measure.
    """
    checksums = measure_checksums(expected)
    measured = {name: stats for name, stats in outcome.measured.items() if stats.digest == digest}
    unmeasured = [t for t in tables if t not in measured]
    actual = (
        ops.table_stats(conn, unmeasured, checksums=checksums, digest=digest) if unmeasured else {}
    )
    known = [t for t in tables if t in measured]
    if known:
        for name, stats in ops.table_stats(conn, known, rows=False, checksums=False).items():
            rows = measured[name]
            actual[name] = replace(
                stats, rows=rows.rows, checksum=rows.checksum, digest=rows.digest
            )
    return actual


def _load(
    catalog: CatalogType,
    manifest: Manifest,
    key: UserKey | None,
    where: tuple[DialectOps, URL],
    wanted: list[str] | None,
    database_settings: dict[str, Any],
    exists: bool,
    result: RestoreResult,
    progress: ProgressCallback | None,
    *,
    options: RestoreOptions | None,
    before: dict[str, TableEntry] | None,
    before_digest: str | None,
) -> RestoreOutcome:
    """Check the whole archive, then create the target if needed and load it.

    Any failure becomes a :class:`RestoreFailed` that says what state the
    target is in: untouched when the check failed, partial once loading began,
    unchanged after a rolled-back load that the safety backup's manifest confirms.
    """
    ops, target = where
    loading = False
    try:
        with checked_archive(catalog, manifest, key) as handle:
            if not exists:
                create_database(ops, target, database_settings)
            loading = True
            return load_checked(manifest, handle, key, target, wanted, progress, options)
    except LoadRolledBack as exc:
        state, proof = _state_after_rollback(ops, target, before, before_digest)
        message = _failure_message(exc, result, loading=state != "unchanged", created=False)
        raise RestoreFailed(
            message if state != "unchanged" else _rolled_back_message(exc, result, proof),
            target_state=state,
            safety_backup_id=result.safety_backup_id,
            exit_code=exc.exit_code,
        ) from exc
    except MigrationGuardError as exc:
        raise RestoreFailed(
            _failure_message(exc, result, loading=loading, created=not exists),
            target_state=("partial" if loading else "unchanged" if exists else "not-created"),
            safety_backup_id=result.safety_backup_id,
            exit_code=exc.exit_code,
        ) from exc
    except BaseException as exc:  # interrupted, or a bug: keep it, but say where things stand
        add_note = getattr(exc, "add_note", None)  # Python 3.11+
        if add_note is not None:
            add_note(_failure_message(exc, result, loading=loading, created=not exists))
        raise


def _state_after_rollback(
    ops: DialectOps, target: URL, before: dict[str, TableEntry] | None, digest: str | None
) -> tuple[str, str]:
    """``unchanged`` or ``partial`` after a rolled-back load, and how that is known.

    With a safety backup the target's tables are measured and compared with its
    manifest: only then is the rollback proven, not assumed.
    """
    if before is None:
        return "unchanged", "the server rolled the transaction back"
    try:
        with connection(target) as conn:
            live = ops.backup_tables(conn)
            actual = ops.table_stats(conn, [t for t in before if t in live], digest=digest)
    except Exception:  # unmeasurable: claim nothing
        return "partial", ""
    if compare_stats(before, actual, digest) or set(live) != set(before):
        return "partial", ""
    return "unchanged", (
        "the server rolled the transaction back, and every table's row count, checksum and "
        "definition equal those of the safety backup taken just before"
    )


def _rolled_back_message(exc: BaseException, result: RestoreResult, proof: str) -> str:
    message = (
        f"restore of {result.backup_id} failed: {exc}. The target database {result.database!r} "
        f"was not changed: {proof}"
    )
    safety = result.safety_backup_id
    return message + (f". Safety backup of the target taken before: {safety}." if safety else ".")


def _failure_message(
    exc: BaseException, result: RestoreResult, *, loading: bool, created: bool
) -> str:
    database = result.database
    if not loading:
        state = (
            f"the database {database!r} was not created"
            if created
            else f"the target database {database!r} was not changed: the archive failed its "
            "check before any statement ran"
        )
    elif created:
        state = (
            f"the database {database!r} was created by this restore and is partly loaded; "
            "drop it, or restore again"
        )
    else:
        state = f"the target database {database!r} is partly restored"
    message = f"restore of {result.backup_id} failed: {exc}. {state[0].upper()}{state[1:]}"
    safety = result.safety_backup_id
    if safety is None:
        return message + "."
    if loading:
        return (
            f"{message}; its state before the restore is in safety backup {safety}: "
            f"`migration-guard restore {safety} --url {result.target_url} --yes` puts it back."
        )
    return f"{message}. Safety backup of the target taken before: {safety}."
