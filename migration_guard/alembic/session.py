"""The guard session: the state and the steps of one guarded run against one database.

The steps run in this order, each only when the one before succeeded: lock, recover
an interrupted earlier run, plan, check, approve, confirm, measure, safety backup,
attach the statement interceptor, migrate (Alembic), then succeed, or fail and
restore with proof; finally release the lock and audit. A :class:`GuardSession` is
driven by :func:`migration_guard.alembic.runner.run_guarded` and by the env.py guard
(:mod:`migration_guard.alembic.env`).
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from migration_guard.alembic.approvals import (
    Allowance,
    Approvals,
    ConfirmCallback,
    apply_approvals,
    confirm_approved,
)
from migration_guard.alembic.changes import RunChanges
from migration_guard.alembic.drift import check_protection
from migration_guard.alembic.events import upgrade_event
from migration_guard.alembic.hooks import steps_once
from migration_guard.alembic.interrupted import heartbeat, lock_for_restore, recover_interrupted
from migration_guard.alembic.rebuilds import check_after_rebuilds, rebuild_aware
from migration_guard.alembic.records import (
    append_audit,
    audit_entry,
    measured,
    now,
    runs_dir,
    who,
    write_record,
)
from migration_guard.alembic.recovery import restore_pre_run_state
from migration_guard.alembic.results import RestoreReport, UpgradeResult, describe_failure
from migration_guard.alembic.runs import check_transition
from migration_guard.alembic.scope import backup_scope, parsed_plan, parses_by_text
from migration_guard.alembic.settings import BACKUP_MODES, upgrade_settings
from migration_guard.analysis.model import Operation, Report, Statement
from migration_guard.config import Config, Dialect
from migration_guard.errors import (
    BackupError,
    BlockedStatement,
    MigrationGuardError,
    UsageError,
    describe,
)
from migration_guard.events import EventSink

if TYPE_CHECKING:
    from alembic.runtime.environment import EnvironmentContext
    from sqlalchemy.engine import URL, Connection

    from migration_guard.alembic.intercept import StatementInterceptor
    from migration_guard.dialects.base import DialectOps, ForeignKeyAction, HeldLock


@dataclass
class GuardOptions:
    """What the user asked for, independent of how Alembic is driven."""

    command: str = "upgrade"
    target: str = "head"
    protect: tuple[str, ...] = ()
    allow: tuple[Allowance, ...] = ()
    dry_run: bool = False
    yes: bool = False
    backup: str | None = None
    confirm: ConfirmCallback | None = None
    lock_timeout: float | None = None


class DryRunComplete(BaseException):
    """Ends a dry run inside env.py before Alembic runs anything.

    A ``BaseException``, like the next one, so that an ``except Exception`` in the
    user's env.py does not swallow it and let the migration run.
    """


class InterruptedRunRestored(BaseException):
    """Ends a run that restored an earlier, interrupted run instead of migrating."""


class GuardSession:
    """The state and the steps of one guarded run against one database."""

    def __init__(
        self, config: Config, options: GuardOptions, *, on_event: EventSink | None = None
    ) -> None:
        #: Receives the events of the run and of its backups (to record and notify).
        self.on_event = on_event
        self.config = config
        self.options = options
        self.settings = upgrade_settings(config)
        self.protected = config.protected.with_patterns(options.protect)
        self.backup_mode = options.backup or self.settings.backup
        if self.backup_mode not in BACKUP_MODES:
            raise UsageError(
                f"--backup must be one of {', '.join(BACKUP_MODES)}, not {self.backup_mode!r}"
            )
        self.run_id = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:8]
        self.result = UpgradeResult(
            command=options.command, target=options.target, run_id=self.run_id
        )
        self.started = time.monotonic()
        self.started_at = now()
        self.url: URL | None = None
        self.ops: DialectOps | None = None
        self.lock: HeldLock | None = None
        self.interceptor: StatementInterceptor | None = None
        self.connection: Connection | None = None  # the one env.py migrates on
        self.migrating = False
        self.prepared = False
        self.version_table = config.version_table
        self.pre_tables: list[str] = []
        self.pre_heads: list[str] = []
        self.pre_stats: dict[str, dict[str, Any]] = {}
        self.backups: list[dict[str, Any]] = []
        self.backup_full = False
        self.record_path: Path | None = None
        self.approved: Approvals = Approvals()
        self.changes = RunChanges()
        self.fk_suspended = False
        self.status = ""  # of the run record; moves along runs.TRANSITIONS only
        self.last_heartbeat = 0.0
        self.last_lock_check = time.monotonic()  # the lock was just taken

    # -- helpers -------------------------------------------------------------------------
    @property
    def database(self) -> str:
        from migration_guard.backup.manifest import redact_url

        return redact_url(self.url) if self.url is not None else ""

    @contextlib.contextmanager
    def _connection(self) -> Iterator[Connection]:
        from migration_guard.dialects.base import transaction

        assert self.url is not None
        lock_connection = self.lock.connection if self.lock is not None else None
        if lock_connection is not None:
            # The lock's dedicated connection serves the guard's reads: no second login.
            try:
                yield lock_connection
                lock_connection.commit()
            except BaseException:
                lock_connection.rollback()
                raise
            return
        with transaction(self.url) as conn:
            yield conn

    def _record(self, status: str, **extra: Any) -> dict[str, Any]:
        record: dict[str, Any] = {
            "run_id": self.run_id,
            "status": status,
            "command": self.options.command,
            "target": self.options.target,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "who": who(),
            "started_at": self.started_at,
            "database": self.database,
            "dialect": self.ops.name if self.ops else None,
            "version_table": self.version_table,
            "pre_tables": self.pre_tables,
            "pre_heads": self.pre_heads,
            "pre_stats": self.pre_stats,
            "backups": self.backups,
            "backup_full": self.backup_full,
            "changes": self.changes.to_dict(),
            "lock": self.lock.description if self.lock is not None else None,
            "heartbeat_at": time.time(),
        }
        record.update(extra)
        return record

    def _save_record(self, status: str, **extra: Any) -> None:
        check_transition(self.status, status, self.run_id)
        if self.record_path is None:
            self.record_path = runs_dir(self.config) / f"{self.run_id}.json"
        write_record(self.record_path, self._record(status, **extra))
        self.status, self.last_heartbeat = status, time.time()

    # -- 1. preparation, inside env.py's run_migrations ----------------------------------
    def prepare(self, environment: EnvironmentContext) -> bool:
        """Lock, plan, check, back up and attach the interceptor.

        Returns False when there is nothing to guard (offline ``--sql`` mode).
        Raises to stop the run before anything changed.
        """
        from migration_guard.dialects import get_dialect_ops

        context = environment.get_context()
        connection = context.connection
        if connection is None or context.as_sql:
            return False
        self.url, self.connection = connection.engine.url, connection
        self.result.database = self.database
        self.ops = get_dialect_ops(connection.dialect.name)
        self.protected = replace(self.protected, default_schema=self.ops.default_schema(connection))
        self.version_table = context.version_table or self.version_table
        if not self.options.dry_run:
            from migration_guard.alembic.lock import acquire

            timeout = self.options.lock_timeout
            self.lock = acquire(
                self.url, timeout=self.settings.lock_timeout if timeout is None else timeout
            )
            self._recover_interrupted_runs()
        heads = list(context.get_current_heads())
        self.pre_heads = heads
        self.result.from_heads = heads
        steps_of = context._migrations_fn
        steps = list(steps_of(tuple(heads), context)) if steps_of is not None else []
        if steps_of is not None:
            context._migrations_fn = steps_once(steps_of, tuple(heads), steps)
        if not steps:
            self.result.outcome = "up-to-date"
            self.result.to_heads = heads
            if self.options.dry_run:
                self.result.outcome = "dry-run"
                raise DryRunComplete()
            return True
        dialect = _analysis_dialect(connection)
        report, statements = self._check(environment, steps, dialect)
        parsed = parsed_plan(statements, dialect)
        operations = [operation for _statement, found in parsed for operation in found]
        self.approved = apply_approvals(
            report,
            self.options.allow,
            self.result,
            command=self.options.command,
            refuse=not self.options.dry_run,
            default_schema=self.protected.default_schema,
        )
        # One connection of the guard's own for everything it reads before the run:
        # every new connection costs a round of authentication on a real server.
        with self._connection() as conn:
            live = self.ops.list_tables(conn)
            self.pre_tables = live
            if not self.options.dry_run:
                check_protection(self, conn, live)
            self.backup_full = self.settings.backup_scope == "full"
            scope = backup_scope(
                operations,
                live,
                full=self.backup_full,
                protected=self.protected,
                version_table=self.version_table,
            )
            take_backup = self.backup_mode == "always" or (
                self.backup_mode == "destructive" and bool(report.findings)
            )
            backed_up = scope
            if self.backup_mode == "destructive" and not take_backup and self.ops.transactional_ddl:
                # A backup mid-run could wait for the run's own locks (alembic.jit): the
                # tables the plan changes are backed up before it instead of just in time.
                backed_up = backup_scope(
                    operations,
                    live,
                    full=self.backup_full,
                    protected=None,
                    version_table=self.version_table,
                )
                take_backup = any(t.lower() != self.version_table.lower() for t in backed_up)
            self.result.backup_planned = take_backup
            self.result.backup_full = self.backup_full
            self.result.backup_tables = backed_up
            if self.options.dry_run:
                if take_backup:
                    sizes = self.ops.table_stats(conn, backed_up, rows=False, checksums=False)
                    known = [s.size_bytes for s in sizes.values() if s.size_bytes is not None]
                    self.result.estimated_backup_bytes = sum(known) if known else None
                self.result.outcome = "dry-run"
                raise DryRunComplete()
            confirm_approved(
                report,
                command=self.options.command,
                yes=self.options.yes,
                confirm=self.options.confirm,
            )
            self.pre_stats = measured(self.ops, conn, scope)
        if take_backup and backed_up:
            self._safety_backup(backed_up)
        self.changes.plan(operations, live, self.version_table)
        self._attach(connection, steps, dialect, live, parsed)
        if self.on_version_apply not in context.on_version_apply_callbacks:  # env.py guard
            context.on_version_apply_callbacks = (
                *context.on_version_apply_callbacks,
                self.on_version_apply,
            )
        self._save_record("migrating")
        self.migrating = True
        self.prepared = True
        return True

    def _check(
        self, environment: EnvironmentContext, steps: Sequence[Any], dialect: str
    ) -> tuple[Report, list[Statement]]:
        from migration_guard.alembic.hooks import render_steps
        from migration_guard.analysis.analyzer import analyze

        plan, statements, sources = render_steps(environment, steps, dialect)
        self.result.plan = plan
        report = analyze(statements, dialect=dialect, protected=self.protected, sources=sources)
        return report, statements

    def _labels(self, kind: str, **extra: Any) -> dict[str, Any]:
        labels: dict[str, Any] = {
            "purpose": f"{self.options.command}-{kind}",
            "run_id": self.run_id,
            "command": self.options.command,
            "from": self.pre_heads,
            "target": self.options.target,
            "revisions": [step.revision for step in self.result.plan],
            "who": who(),
            "findings": [f"{f.rule}:{f.table}" for f in self.result.findings],
        }
        labels.update(extra)
        return labels

    def _safety_backup(self, scope: Sequence[str]) -> None:
        from migration_guard.backup import create

        try:
            manifest = create(
                self.config,
                url=self.url,
                type="safety" if self.backup_full else "tables",
                tables=None if self.backup_full else list(scope),
                labels=self._labels("safety"),
                on_event=self.on_event,
            )
        except MigrationGuardError as exc:
            raise BackupError(f"the safety backup failed, so nothing was migrated: {exc}") from exc
        self.backups.append(
            {"id": manifest.id, "tables": sorted(manifest.tables), "kind": "safety"}
        )
        self.result.backup_id = manifest.id
        self.result.backup_tables = sorted(manifest.tables)

    def _attach(
        self,
        connection: Connection,
        steps: Sequence[Any],
        dialect: str,
        live: Sequence[str],
        parsed: Sequence[tuple[Statement, list[Operation]]],
    ) -> None:
        from migration_guard.alembic.intercept import StatementInterceptor

        covered = {name.lower() for backup in self.backups for name in backup["tables"]}
        # The version table is reset from the heads recorded here when no backup holds it.
        covered.add(self.version_table.lower())
        revision_files = {
            os.path.abspath(step.revision.path) for step in steps if step.revision is not None
        }
        revision_files |= {step.revision.path for step in steps if step.revision is not None}
        self.interceptor = StatementInterceptor(
            dialect=dialect,
            protected=self.protected,
            approved=self.approved,
            existing_tables={name.lower(): name for name in live},
            covered=covered,
            backup_table=None if self.backup_mode == "never" else self._jit_backup,
            revision_files=revision_files,
            record_change=rebuild_aware(self, connection),
            ops=self.ops,
            known=parses_by_text(parsed),
        )
        self.changes.load_foreign_keys = self._foreign_keys
        self.changes.on_change = lambda: self._save_record("migrating")
        self.interceptor.attach(connection)

    def _foreign_keys(self) -> list[ForeignKeyAction]:
        assert self.ops is not None
        with self._connection() as conn:
            return self.ops.foreign_key_actions(conn)

    def _jit_backup(self, table: str) -> None:
        from migration_guard.alembic.jit import jit_backup

        jit_backup(self, table)

    def on_version_apply(self, *, ctx: Any, step: Any, heads: Any, run_args: Any) -> None:
        """Alembic callback after each revision step: progress for the result."""
        del ctx, run_args
        final = len(self.result.applied) + 1 >= len(self.result.plan)
        heartbeat(self, final=final)  # the lock must still be ours before Alembic commits
        self.result.applied.append(str(step.up_revision_id))
        self.result.to_heads = sorted(str(head) for head in heads)

    # -- interrupted earlier runs (see migration_guard.alembic.interrupted) ------------
    def _recover_interrupted_runs(self) -> None:
        recover_interrupted(self)

    # -- 2. the end of a run -------------------------------------------------------------
    def detach(self) -> None:
        if self.interceptor is not None:
            self.interceptor.detach()
            self.result.statements_executed = len(self.interceptor.executed)
            for note in self.interceptor.notes[:20]:
                self.result.notes.append(note)

    def succeed(self) -> None:
        """The migration finished: close the record."""
        if self.interceptor is not None and self.interceptor.blocked is not None:
            # Something swallowed the BlockedStatement; the run still failed.
            raise self.interceptor.blocked
        if self.fk_suspended and self.ops is not None:
            with self._connection() as conn:
                check_after_rebuilds(self.ops, conn)
        if self.prepared:
            self._save_record("succeeded", finished_at=now())
        if self.result.outcome not in ("up-to-date",):
            self.result.outcome = "applied"

    def fail(self, error: BaseException) -> None:
        """The migration failed: restore the state from before it and prove it."""
        self.result.error = describe_failure(error)
        if isinstance(error, BlockedStatement):
            self.result.blocked = {
                **error.finding.to_dict(),
                "sql": error.sql,
            }
        if not self.migrating:
            return
        lost = lock_for_restore(self)
        if lost is not None:  # the record stays "migrating" for the next run
            self.result.restore = RestoreReport(ok=False, error=lost)
            self.result.outcome = "restore-failed"
            return
        self._save_record("restoring", error=self.result.error)
        report = restore_pre_run_state(self.config, self.url, self._record("restoring"))  # type: ignore[arg-type]
        self.result.restore = report
        self.result.outcome = "restored" if report.ok else "restore-failed"
        self._save_record(
            "restored" if report.ok else "restore-failed",
            error=self.result.error,
            restore=report.to_dict(),
            finished_at=now(),
        )
        if report.restored_tables:  # a reload may recreate a table its protection named
            with contextlib.suppress(Exception), self._connection() as conn:
                check_protection(self, conn, self.ops.list_tables(conn))  # type: ignore[union-attr]

    def release(self) -> None:
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    def audit(self) -> None:
        """Append this run to the audit log and hand its event to ``on_event`` (never
        fails the run)."""
        self.result.seconds = time.monotonic() - self.started
        if self.options.dry_run:
            return
        entry = audit_entry(
            self.result,
            command=self.options.command,
            target=self.options.target,
            started_at=self.started_at,
        )
        try:
            append_audit(self.config, entry)
        except OSError as exc:
            self.result.notes.append(f"could not write the audit record: {exc.strerror or exc}")
        if self.on_event is not None:
            try:
                self.on_event(upgrade_event(entry))
            except Exception as exc:  # the run is over: reporting must not change it
                self.result.notes.append(f"could not report the run: {describe(exc)}")


def _analysis_dialect(connection: Connection) -> str:
    # SQLAlchemy serves MariaDB with its mysql dialect and says so in ``is_mariadb``;
    # the analysis has rules of its own for MariaDB.
    if getattr(connection.dialect, "is_mariadb", False):
        return Dialect.MARIADB.value
    return str(connection.dialect.name)
