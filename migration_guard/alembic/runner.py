"""The safe upgrade: lock -> plan -> check -> backup -> migrate with interception -> restore
on failure -> audit. It orchestrates; the SQL lives in :mod:`migration_guard.dialects`,
the backups in :mod:`migration_guard.backup` and the analysis in
:mod:`migration_guard.analysis`.

Alembic runs programmatically with the user's ``env.py`` unchanged. For the duration of
the command :meth:`EnvironmentContext.run_migrations` is wrapped, so that when env.py
hands its connection to Alembic the guard learns the database env.py *really* uses
(the one it locks, backs up and restores) and does its preparation before the first
migration step runs. :class:`GuardSession` holds the state of one run; the env.py guard
(:mod:`migration_guard.alembic.env`) reuses it for a plain ``alembic upgrade``.
"""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import getpass
import json
import os
import socket
import time
import types
import uuid
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from migration_guard.analysis.model import Finding, Operation, OpKind, Report, Severity, Statement
from migration_guard.config import Config
from migration_guard.errors import (
    BackupError,
    BlockedMigration,
    BlockedStatement,
    ConfigError,
    MigrationGuardError,
    UsageError,
)

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig
    from alembic.runtime.environment import EnvironmentContext
    from sqlalchemy.engine import URL, Connection

    from migration_guard.alembic.intercept import StatementInterceptor
    from migration_guard.dialects.base import DialectOps, HeldLock, TableStats

BACKUP_MODES = ("always", "destructive", "never")
BACKUP_SCOPES = ("touched", "full")
RUNS_DIR = "runs"
AUDIT_FILE = "audit.jsonl"
#: ``confirm(word)`` returns True when the user typed ``word`` (a table or database name).
ConfirmCallback = Callable[[str], bool]


# ------------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class UpgradeSettings:
    """``[tool.migration_guard.upgrade]``; see docs/upgrade.md."""

    lock_timeout: float = 60.0
    #: ``touched``: the tables the plan touches, the protected ones and the version table;
    #: ``full``: the whole database.
    backup_scope: str = "touched"
    #: Default of ``--backup``.
    backup: str = "destructive"


def upgrade_settings(config: Config) -> UpgradeSettings:
    """Validated ``[tool.migration_guard.upgrade]``; unknown keys are a ConfigError."""
    raw: Mapping[str, Any] = config.sections.get("upgrade", {}) or {}
    where = f"{config.source or 'config'}: [tool.migration_guard.upgrade]"
    known = ("lock_timeout", "backup_scope", "backup")
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in known:
            raise ConfigError(
                f"{where}: unknown key {key!r}; known keys: {', '.join(known)}", key=key
            )
        values[key] = value
    timeout = values.get("lock_timeout", 60.0)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout < 0:
        raise ConfigError(
            f"{where}: lock_timeout must be a number of seconds >= 0, e.g. lock_timeout = 60",
            key="lock_timeout",
        )
    values["lock_timeout"] = float(timeout)
    if values.get("backup_scope", "touched") not in BACKUP_SCOPES:
        raise ConfigError(
            f"{where}: backup_scope must be one of {', '.join(BACKUP_SCOPES)}",
            key="backup_scope",
        )
    if values.get("backup", "destructive") not in BACKUP_MODES:
        raise ConfigError(f"{where}: backup must be one of {', '.join(BACKUP_MODES)}", key="backup")
    return UpgradeSettings(**values)


# ------------------------------------------------------------------------------- options
@dataclass(frozen=True)
class Allowance:
    """``--allow RULE:TABLE``: approval of a rule on a table (``*`` for any table)."""

    rule: str
    table: str
    reason: str

    def matches(self, finding: Finding) -> bool:
        if finding.rule != self.rule:
            return False
        if self.table == "*":
            return True
        if finding.table is None:
            return False
        name = finding.table.lower()
        return fnmatch.fnmatchcase(name, self.table.lower()) or fnmatch.fnmatchcase(
            name.rsplit(".", 1)[-1], self.table.lower()
        )


def parse_allowances(allow: Sequence[str], reason: str | None) -> list[Allowance]:
    """``RULE:TABLE`` texts as :class:`Allowance` values; a reason is required."""
    from migration_guard.analysis.rules import rule_ids

    if not allow:
        return []
    if not reason or not reason.strip():
        raise UsageError(
            "--allow needs --reason TEXT: every approval of a destructive step is recorded "
            "with its reason (e.g. --reason 'archived in ticket #1234')"
        )
    known = set(rule_ids())
    result: list[Allowance] = []
    for text in allow:
        rule, separator, table = text.partition(":")
        rule, table = rule.strip(), table.strip()
        if not separator or not rule or not table:
            raise UsageError(
                f"--allow {text!r} is not RULE:TABLE, e.g. --allow drop-column:customers"
            )
        if rule not in known:
            raise UsageError(
                f"--allow {text!r}: unknown rule {rule!r}; known rules: {', '.join(sorted(known))}"
            )
        result.append(Allowance(rule, table, reason.strip()))
    return result


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


# ------------------------------------------------------------------------------- results
@dataclass
class PlannedRevision:
    """One step of the plan with the SQL it renders to."""

    revision: str
    direction: str
    path: str
    sql: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "revision": self.revision,
            "direction": self.direction,
            "path": self.path,
            "sql": self.sql,
        }


@dataclass
class RestoreReport:
    """What a restore after a failure did and the proof that it worked."""

    ok: bool = False
    restored_tables: list[str] = field(default_factory=list)
    dropped_tables: list[str] = field(default_factory=list)
    version_reset_to: list[str] = field(default_factory=list)
    proof: list[str] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)
    error: str | None = None
    manual_command: str | None = None
    backup_ids: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "restored_tables": self.restored_tables,
            "dropped_tables": self.dropped_tables,
            "version_reset_to": self.version_reset_to,
            "proof": self.proof,
            "mismatches": self.mismatches,
            "error": self.error,
            "manual_command": self.manual_command,
            "backup_ids": self.backup_ids,
        }


@dataclass
class UpgradeResult:
    """The outcome of one guarded ``upgrade`` or ``downgrade``.

    ``outcome`` is ``applied``, ``up-to-date``, ``dry-run``, ``restored`` (the migration
    failed and the database was put back), ``restore-failed`` or ``recovered`` (an
    interrupted earlier run was restored; nothing was migrated).
    """

    command: str
    target: str
    outcome: str = "applied"
    run_id: str = ""
    database: str = ""
    from_heads: list[str] = field(default_factory=list)
    to_heads: list[str] = field(default_factory=list)
    plan: list[PlannedRevision] = field(default_factory=list)
    applied: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    approvals: list[dict[str, Any]] = field(default_factory=list)
    backup_id: str | None = None
    backup_tables: list[str] = field(default_factory=list)
    backup_full: bool = False
    backup_planned: bool = False
    estimated_backup_bytes: int | None = None
    jit_backups: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    blocked: dict[str, Any] | None = None
    restore: RestoreReport | None = None
    notes: list[str] = field(default_factory=list)
    statements_executed: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.outcome in ("applied", "up-to-date", "dry-run")

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "command": self.command,
            "target": self.target,
            "outcome": self.outcome,
            "ok": self.ok,
            "run_id": self.run_id,
            "database": self.database,
            "from": self.from_heads,
            "to": self.to_heads,
            "plan": [step.to_dict() for step in self.plan],
            "applied": self.applied,
            "findings": [finding.to_dict() for finding in self.findings],
            "approvals": self.approvals,
            "backup": {
                "id": self.backup_id,
                "tables": self.backup_tables,
                "full": self.backup_full,
                "planned": self.backup_planned,
                "estimated_bytes": self.estimated_backup_bytes,
                "just_in_time": self.jit_backups,
            },
            "error": self.error,
            "blocked": self.blocked,
            "restore": self.restore.to_dict() if self.restore else None,
            "notes": self.notes,
            "statements_executed": self.statements_executed,
            "seconds": round(self.seconds, 3),
        }


class _DryRunComplete(BaseException):
    """Ends a dry run inside env.py before Alembic runs anything."""


class _InterruptedRunRestored(BaseException):
    """Ends a run that restored an earlier, interrupted run instead of migrating."""


# ------------------------------------------------------------------------------- records
def runs_dir(config: Config) -> Path:
    """Where run records live: ``<backup dir>/runs``."""
    from migration_guard.backup.catalog import resolve_backup_dir

    return resolve_backup_dir(config) / RUNS_DIR


def _write_record(path: Path, record: Mapping[str, Any]) -> None:
    from migration_guard.backup.catalog import atomic_write_bytes

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, json.dumps(record, indent=2, sort_keys=True).encode("utf-8"))


def append_audit(config: Config, entry: Mapping[str, Any]) -> Path:
    """Append one JSON line to ``<backup dir>/audit.jsonl`` (flock-serialised, fsynced)."""
    from migration_guard.backup.catalog import resolve_backup_dir

    directory = resolve_backup_dir(config)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / AUDIT_FILE
    line = (json.dumps(entry, sort_keys=True, default=str) + "\n").encode("utf-8")
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        with contextlib.suppress(ImportError, OSError):
            import fcntl

            fcntl.flock(descriptor, fcntl.LOCK_EX)
        os.write(descriptor, line)
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    return path


def _who() -> str:
    try:
        user = getpass.getuser()
    except Exception:  # containers without a user name
        user = str(os.getuid()) if hasattr(os, "getuid") else "unknown"
    return f"{user}@{socket.gethostname()}"


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _stats_dict(stats: TableStats) -> dict[str, Any]:
    return {
        "rows": stats.rows,
        "checksum": stats.checksum,
        "ddl_sha256": stats.ddl_sha256,
        "size": stats.size_bytes,
    }


def _same_stats(before: Mapping[str, Any], after: TableStats) -> list[str]:
    problems: list[str] = []
    if before.get("rows") is not None and before["rows"] != after.rows:
        problems.append(f"{after.rows} rows, expected {before['rows']}")
    if before.get("checksum") is not None and str(before["checksum"]) != str(after.checksum):
        problems.append(f"checksum {after.checksum}, expected {before['checksum']}")
    if before.get("ddl_sha256") and after.ddl_sha256 and before["ddl_sha256"] != after.ddl_sha256:
        problems.append("definition (DDL) differs")
    return problems


# ------------------------------------------------------------------------------- proxies
@contextlib.contextmanager
def _preserved_alembic_proxies() -> Iterator[None]:
    """Keep Alembic's global ``context``/``op`` proxies as they are across the block.

    Offline rendering installs (and on exit removes) its own proxies; the real run,
    which is in progress around it, needs its own back.
    """
    from alembic.operations import Operations
    from alembic.runtime.environment import EnvironmentContext

    saved: list[tuple[MutableMapping[str, Any], dict[str, Any], set[str]]] = []
    for cls in (EnvironmentContext, Operations):
        attr_names, modules = cls._setups[cls]  # type: ignore[attr-defined]
        for globals_, _locals in modules:
            keys = {"_proxy", *attr_names}
            saved.append((globals_, {k: globals_[k] for k in keys if k in globals_}, keys))
    try:
        yield
    finally:
        for globals_, values, keys in saved:
            for key in keys:
                if key in values:
                    globals_[key] = values[key]
                else:
                    globals_.pop(key, None)


@contextlib.contextmanager
def _quiet_alembic_logs() -> Iterator[None]:
    """Offline rendering would log "Generating static SQL" as if the user ran ``--sql``."""
    import logging

    logger = logging.getLogger("alembic.runtime.migration")
    was_disabled = logger.disabled
    logger.disabled = True
    try:
        yield
    finally:
        logger.disabled = was_disabled


# ------------------------------------------------------------------------------- session
class GuardSession:
    """The state and the steps of one guarded run against one database."""

    def __init__(self, config: Config, options: GuardOptions) -> None:
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
        self.started_at = _now()
        self.url: URL | None = None
        self.ops: DialectOps | None = None
        self.lock: HeldLock | None = None
        self.interceptor: StatementInterceptor | None = None
        self.migrating = False
        self.prepared = False
        self.version_table = config.version_table
        self.pre_tables: list[str] = []
        self.pre_heads: list[str] = []
        self.pre_stats: dict[str, dict[str, Any]] = {}
        self.backups: list[dict[str, Any]] = []
        self.backup_full = False
        self.record_path: Path | None = None
        self.approved: set[tuple[str, str]] = set()

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
            "who": _who(),
            "started_at": self.started_at,
            "database": self.database,
            "dialect": self.ops.name if self.ops else None,
            "version_table": self.version_table,
            "pre_tables": self.pre_tables,
            "pre_heads": self.pre_heads,
            "pre_stats": self.pre_stats,
            "backups": self.backups,
            "backup_full": self.backup_full,
        }
        record.update(extra)
        return record

    def _save_record(self, status: str, **extra: Any) -> None:
        if self.record_path is None:
            self.record_path = runs_dir(self.config) / f"{self.run_id}.json"
        _write_record(self.record_path, self._record(status, **extra))

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
        self.url = connection.engine.url
        self.result.database = self.database
        self.ops = get_dialect_ops(connection.dialect.name)
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
        if not steps:
            self.result.outcome = "up-to-date"
            self.result.to_heads = heads
            if self.options.dry_run:
                self.result.outcome = "dry-run"
                raise _DryRunComplete()
            return True
        dialect = _analysis_dialect(connection)
        report, statements = self._check(environment, steps, dialect)
        self._approve(report)
        # One connection of the guard's own for everything it reads before the run:
        # every new connection costs a round of authentication on a real server.
        with self._connection() as conn:
            live = self.ops.list_tables(conn)
            self.pre_tables = live
            if not self.options.dry_run:
                _check_protection(self, conn, live)
            scope = self._scope(statements, live, dialect)
            take_backup = self.backup_mode == "always" or (
                self.backup_mode == "destructive" and bool(report.findings)
            )
            self.result.backup_planned = take_backup
            self.result.backup_full = self.backup_full
            self.result.backup_tables = scope
            if self.options.dry_run:
                if take_backup:
                    sizes = self.ops.table_stats(conn, scope)
                    known = [s.size_bytes for s in sizes.values() if s.size_bytes is not None]
                    self.result.estimated_backup_bytes = sum(known) if known else None
                self.result.outcome = "dry-run"
                raise _DryRunComplete()
            self._confirm(report)
            stats = self.ops.table_stats(conn, scope)
        self.pre_stats = {name: _stats_dict(value) for name, value in stats.items()}
        if take_backup and scope:
            self._safety_backup(scope, steps)
        self._attach(connection, steps, dialect, live)
        self._save_record("migrating")
        self.migrating = True
        self.prepared = True
        return True

    def _check(
        self, environment: EnvironmentContext, steps: Sequence[Any], dialect: str
    ) -> tuple[Report, list[Statement]]:
        from migration_guard.alembic.render import OfflineRenderer
        from migration_guard.analysis.analyzer import analyze

        plan: list[PlannedRevision] = []
        statements: list[Statement] = []
        sources: dict[str, str] = {}
        with (
            _preserved_alembic_proxies(),
            _quiet_alembic_logs(),
            OfflineRenderer(dialect, environment.config, environment.script) as renderer,
        ):
            for step in steps:
                script = step.revision
                if script is None:
                    continue
                path = _display_path(script.path)
                direction = "upgrade" if step.is_upgrade else "downgrade"
                module = script.module if step.is_upgrade else _downgrade_shim(script.module)
                rendered = renderer.render_module(module, path=path, unit=script.revision)
                statements.extend(rendered)
                with contextlib.suppress(OSError):
                    sources[path] = Path(script.path).read_text(encoding="utf-8", errors="replace")
                plan.append(
                    PlannedRevision(
                        script.revision, direction, path, [s.sql.strip() for s in rendered]
                    )
                )
        self.result.plan = plan
        report = analyze(statements, dialect=dialect, protected=self.protected, sources=sources)
        return report, statements

    def _approve(self, report: Report) -> None:
        import dataclasses

        findings: list[Finding] = []
        used: set[Allowance] = set()
        for finding in report.findings:
            if not finding.suppressed:
                for allowance in self.options.allow:
                    if allowance.matches(finding):
                        used.add(allowance)
                        finding = dataclasses.replace(
                            finding, suppressed=True, reason=f"--allow: {allowance.reason}"
                        )
                        break
            findings.append(finding)
        report.findings = findings
        self.result.findings = findings
        for allowance in self.options.allow:
            if allowance not in used:
                self.result.notes.append(
                    f"--allow {allowance.rule}:{allowance.table} matched no finding of the plan"
                )
        for finding in findings:
            if finding.suppressed:
                self.approved.add((finding.rule, (finding.table or "*").rsplit(".", 1)[-1].lower()))
                self.result.approvals.append(
                    {
                        "rule": finding.rule,
                        "table": finding.table,
                        "file": finding.file,
                        "line": finding.line,
                        "reason": finding.reason,
                        "by": "command line"
                        if (finding.reason or "").startswith("--allow")
                        else "inline suppression",
                    }
                )
        if report.has_errors and not self.options.dry_run:
            blocking = [f for f in report.active if f.severity is Severity.ERROR]
            lines = [
                f"  {f.file}:{f.line}: {f.rule} on {f.table or '(unknown table)'}: {f.message}"
                for f in blocking
            ]
            raise BlockedMigration(
                f"{self.options.command} refused before anything changed: "
                f"{len(blocking)} unapproved destructive finding(s):\n"
                + "\n".join(lines)
                + "\nApprove a step with an inline comment "
                "`# migration-guard: allow RULE because: REASON` above the op call, or with "
                "--allow RULE:TABLE --reason TEXT.",
                blocking,
            )

    def _confirm(self, report: Report) -> None:
        tables = sorted(
            {
                f.table
                for f in report.findings
                if f.suppressed and f.severity is Severity.ERROR and f.table
            }
        )
        if not tables or self.options.yes:
            return
        if self.options.confirm is None:
            raise UsageError(
                f"the plan has approved destructive steps on {', '.join(tables)}; "
                "pass --yes to confirm them (no terminal to ask on)"
            )
        for table in tables:
            if not self.options.confirm(table):
                raise UsageError(
                    f"{self.options.command} cancelled: the table name {table!r} was not confirmed"
                )

    def _scope(
        self, statements: Sequence[Statement], live: Sequence[str], dialect: str
    ) -> list[str]:
        by_lower = {name.lower(): name for name in live}
        if self.settings.backup_scope == "full" or self.protected.protects_everything:
            self.backup_full = self.settings.backup_scope == "full"
            return list(live)
        wanted: dict[str, None] = {}
        for statement in statements:
            for operation in _statement_operations(statement, dialect):
                if operation.kind is OpKind.UNANALYZABLE:
                    # What it touches cannot be known: cover everything.
                    return list(live)
                if operation.table is not None:
                    wanted.setdefault(operation.table.name.lower(), None)
                if operation.new_name:
                    wanted.setdefault(operation.new_name.lower(), None)
        for name in live:
            if self.protected.is_protected(name):
                wanted.setdefault(name.lower(), None)
        wanted.setdefault(self.version_table.lower(), None)
        return [by_lower[name] for name in wanted if name in by_lower]

    def _labels(self, kind: str, **extra: Any) -> dict[str, Any]:
        labels: dict[str, Any] = {
            "purpose": f"{self.options.command}-{kind}",
            "run_id": self.run_id,
            "command": self.options.command,
            "from": self.pre_heads,
            "target": self.options.target,
            "revisions": [step.revision for step in self.result.plan],
            "who": _who(),
            "findings": [f"{f.rule}:{f.table}" for f in self.result.findings],
        }
        labels.update(extra)
        return labels

    def _safety_backup(self, scope: Sequence[str], steps: Sequence[Any]) -> None:
        from migration_guard.backup import create

        del steps
        try:
            if self.backup_full:
                manifest = create(
                    self.config, url=self.url, type="safety", labels=self._labels("safety")
                )
            else:
                manifest = create(
                    self.config,
                    url=self.url,
                    type="tables",
                    tables=list(scope),
                    labels=self._labels("safety"),
                )
        except MigrationGuardError as exc:
            raise BackupError(f"the safety backup failed, so nothing was migrated: {exc}") from exc
        self.backups.append(
            {"id": manifest.id, "tables": sorted(manifest.tables), "kind": "safety"}
        )
        self.result.backup_id = manifest.id
        self.result.backup_tables = sorted(manifest.tables)

    def _attach(
        self, connection: Connection, steps: Sequence[Any], dialect: str, live: Sequence[str]
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
        )
        self.interceptor.attach(connection)

    def _jit_backup(self, table: str) -> None:
        from migration_guard.backup import create

        manifest = create(
            self.config,
            url=self.url,
            type="tables",
            tables=[table],
            labels=self._labels("just-in-time", table=table),
            # Its stats stand in for the pre-run measurement of this table, which
            # the restore proof compares by CHECKSUM TABLE.
            server_checksums=True,
        )
        self.backups.append({"id": manifest.id, "tables": [table], "kind": "just-in-time"})
        entry = manifest.tables.get(table)
        if entry is not None and table not in self.pre_stats:
            self.pre_stats[table] = {
                "rows": entry.rows,
                "checksum": entry.checksum,
                "ddl_sha256": entry.ddl_sha256,
                "size": entry.size,
            }
        self.result.jit_backups.append({"id": manifest.id, "table": table})
        self._save_record("migrating")

    def on_version_apply(self, *, ctx: Any, step: Any, heads: Any, run_args: Any) -> None:
        """Alembic callback after each revision step: progress for the result."""
        del ctx, run_args
        self.result.applied.append(str(step.up_revision_id))
        self.result.to_heads = sorted(str(head) for head in heads)

    # -- interrupted earlier runs --------------------------------------------------------
    def _recover_interrupted_runs(self) -> None:
        """Restore a run of this database that died mid-migration (we hold the lock, so
        no live run can own it)."""
        directory = runs_dir(self.config)
        if not directory.is_dir():
            return
        for path in sorted(directory.glob("*.json")):
            try:
                record = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if record.get("status") not in ("migrating", "restore-failed"):
                continue
            if record.get("database") != self.database or record.get("run_id") == self.run_id:
                continue
            self._restore_interrupted(path, record)

    def _restore_interrupted(self, path: Path, record: dict[str, Any]) -> None:
        assert self.ops is not None
        database = self.ops.database_name(self.url) if self.url is not None else "?"
        described = (
            f"run {record.get('run_id')} ({record.get('command')} to {record.get('target')}, "
            f"started {record.get('started_at')} by {record.get('who')}, pid "
            f"{record.get('pid')}) was interrupted mid-migration"
        )
        if not self.options.yes:
            if self.options.confirm is None:
                raise UsageError(
                    f"{described}; its changes are still in the database. Pass --yes to "
                    "restore the state from before it (no terminal to ask on)"
                )
            if not self.options.confirm(database):
                raise UsageError(f"{described}; restore declined, nothing was changed")
        report = restore_pre_run_state(self.config, self.url, record)  # type: ignore[arg-type]
        record["status"] = "recovered" if report.ok else "restore-failed"
        record["recovered_by"] = self.run_id
        record["restore"] = report.to_dict()
        _write_record(path, record)
        self.result.restore = report
        self.result.notes.append(described)
        self.result.error = (
            f"{described}; migration-guard restored the state from before it"
            if report.ok
            else f"{described}; restoring it failed"
        )
        self.result.outcome = "recovered" if report.ok else "restore-failed"
        raise _InterruptedRunRestored()

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
        if self.prepared:
            self._save_record("succeeded", finished_at=_now())
        if self.result.outcome not in ("up-to-date",):
            self.result.outcome = "applied"

    def fail(self, error: BaseException) -> None:
        """The migration failed: restore the state from before it and prove it."""
        self.result.error = _describe(error)
        if isinstance(error, BlockedStatement):
            self.result.blocked = {
                **error.finding.to_dict(),
                "sql": error.sql,
            }
        if not self.migrating:
            return
        self._save_record("restoring", error=self.result.error)
        report = restore_pre_run_state(self.config, self.url, self._record("restoring"))  # type: ignore[arg-type]
        self.result.restore = report
        self.result.outcome = "restored" if report.ok else "restore-failed"
        self._save_record(
            "restored" if report.ok else "restore-failed",
            error=self.result.error,
            restore=report.to_dict(),
            finished_at=_now(),
        )

    def release(self) -> None:
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    def audit(self) -> None:
        """Append this run to the audit log (never fails the run)."""
        self.result.seconds = time.monotonic() - self.started
        if self.options.dry_run:
            return
        entry = {
            "run_id": self.run_id,
            "command": self.options.command,
            "who": _who(),
            "when": self.started_at,
            "database": self.database,
            "from": self.result.from_heads,
            "to": self.result.to_heads,
            "target": self.options.target,
            "outcome": self.result.outcome,
            "error": self.result.error,
            "findings": [
                {
                    "rule": f.rule,
                    "table": f.table,
                    "file": f.file,
                    "line": f.line,
                    "severity": f.severity.value,
                    "suppressed": f.suppressed,
                }
                for f in self.result.findings
            ],
            "approvals": self.result.approvals,
            "backup_id": self.result.backup_id,
            "just_in_time_backups": self.result.jit_backups,
            "restore": self.result.restore.to_dict() if self.result.restore else None,
            "duration_seconds": round(self.result.seconds, 3),
        }
        try:
            append_audit(self.config, entry)
        except OSError as exc:
            self.result.notes.append(f"could not write the audit record: {exc.strerror or exc}")
        from migration_guard.monitoring.events import report_upgrade

        report_upgrade(self.config, entry)  # never raises: a notifier must not fail the run


def _describe(error: BaseException) -> str:
    if isinstance(error, KeyboardInterrupt):
        return "interrupted (Ctrl-C)"
    if isinstance(error, MigrationGuardError):
        return str(error)
    text = str(getattr(error, "orig", None) or error).strip()
    first = text.splitlines()[0] if text else ""
    return f"{type(error).__name__}: {first}"[:500]


def _analysis_dialect(connection: Connection) -> str:
    name = connection.dialect.name
    if name == "mysql" and getattr(connection.dialect, "is_mariadb", False):
        return "mariadb"
    return name


def _display_path(path: str) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return path


def _downgrade_shim(module: types.ModuleType) -> types.ModuleType:
    """A stand-in module whose ``upgrade()`` is ``module.downgrade()``, for rendering."""
    shim = types.ModuleType(module.__name__ + "_downgrade")
    shim.__dict__.update({k: v for k, v in vars(module).items() if not k.startswith("__")})
    downgrade = getattr(module, "downgrade", None)
    shim.upgrade = downgrade  # type: ignore[attr-defined]
    return shim


def _statement_operations(statement: Statement, dialect: str) -> list[Operation]:
    if statement.known_operations:
        return list(statement.known_operations)
    from migration_guard.analysis.parse import parse_statement

    try:
        return list(parse_statement(statement, dialect))
    except Exception:
        return [Operation(OpKind.UNANALYZABLE, statement, reason="parser failed")]


# ------------------------------------------------------------------------------- restore
def restore_pre_run_state(config: Config, url: URL, record: Mapping[str, Any]) -> RestoreReport:
    """Put the database back as it was before the run described by ``record``, then prove it.

    Tables the run created are dropped, touched tables come back from the run's backups,
    the version table gets its old heads; then row counts, checksums and DDL are compared
    with the values recorded before the run. Never raises for a failed restore: the report
    says what failed and gives the command to finish by hand.
    """
    from migration_guard.backup import restore
    from migration_guard.backup.manifest import redact_url
    from migration_guard.dialects import get_dialect_ops
    from migration_guard.dialects.base import transaction

    report = RestoreReport()
    ops = get_dialect_ops(url.get_backend_name())
    pre_tables: list[str] = list(record.get("pre_tables") or [])
    pre_lower = {name.lower() for name in pre_tables}
    pre_stats: dict[str, dict[str, Any]] = dict(record.get("pre_stats") or {})
    backups: list[dict[str, Any]] = list(record.get("backups") or [])
    version_table: str = record.get("version_table") or config.version_table
    pre_heads: list[str] = list(record.get("pre_heads") or [])
    report.backup_ids = [backup["id"] for backup in backups]
    pending_backup: dict[str, Any] | None = None
    pending_tables: list[str] = []
    try:
        with transaction(url) as conn:
            live = ops.list_tables(conn)
            created = [name for name in live if name.lower() not in pre_lower]
            if created:
                ops.drop_tables(conn, created)
            report.dropped_tables = created
            live = [name for name in live if name.lower() in pre_lower]
            current = ops.table_stats(conn, [t for t in pre_stats if t in live])
        damaged = [
            table
            for table, before in pre_stats.items()
            if table not in current or _same_stats(before, current[table])
        ]
        done: set[str] = set()
        for backup in backups:
            wanted = [t for t in backup["tables"] if t in damaged and t not in done]
            if not wanted:
                continue
            pending_backup, pending_tables = backup, wanted
            result = restore(
                config, backup["id"], url=url, tables=wanted, yes=True, safety_backup=False
            )
            if not result.ok:
                raise BackupError(
                    f"backup {backup['id']} restored with mismatches: "
                    + "; ".join(result.mismatches)
                )
            done.update(wanted)
            report.restored_tables.extend(wanted)
        pending_backup = None
        version_restored = version_table in done
        if version_table.lower() in pre_lower and not version_restored:
            _reset_version_table(url, version_table, pre_heads)
            report.version_reset_to = pre_heads
        elif version_restored:
            report.version_reset_to = pre_heads
        _prove(report, ops, url, pre_tables, pre_stats, version_table, pre_heads)
    except Exception as exc:
        report.ok = False
        report.error = _describe(exc)
        failed = pending_backup or (backups[0] if backups else None)
        if failed is not None:
            tables = pending_tables or list(failed["tables"])
            report.manual_command = (
                f"migration-guard restore {failed['id']} --url '{redact_url(url)}' "
                + " ".join(f"--tables {t}" for t in tables)
                + " --yes"
            )
        return report
    report.ok = not report.mismatches
    return report


def _reset_version_table(url: URL, version_table: str, heads: Sequence[str]) -> None:
    import sqlalchemy as sa

    from migration_guard.dialects.base import transaction

    table = sa.Table(version_table, sa.MetaData(), sa.Column("version_num", sa.String(32)))
    with transaction(url) as conn:
        conn.execute(table.delete())
        for head in heads:
            conn.execute(table.insert().values(version_num=head))


def _read_heads(conn: Connection, version_table: str) -> list[str]:
    import sqlalchemy as sa

    table = sa.Table(version_table, sa.MetaData(), sa.Column("version_num", sa.String(32)))
    return sorted(str(row[0]) for row in conn.execute(sa.select(table.c.version_num)))


def _prove(
    report: RestoreReport,
    ops: DialectOps,
    url: URL,
    pre_tables: Sequence[str],
    pre_stats: Mapping[str, Mapping[str, Any]],
    version_table: str,
    pre_heads: Sequence[str],
) -> None:
    from migration_guard.dialects.base import transaction

    with transaction(url) as conn:
        live = ops.list_tables(conn)
        after = ops.table_stats(conn, [t for t in pre_stats if t in live])
        heads = (
            _read_heads(conn, version_table)
            if version_table.lower() in {t.lower() for t in live}
            else []
        )
    before_set = {t.lower() for t in pre_tables}
    live_set = {t.lower() for t in live}
    for extra in sorted(live_set - before_set):
        report.mismatches.append(f"table {extra} exists now but did not before the run")
    for missing in sorted(before_set - live_set):
        report.mismatches.append(f"table {missing} existed before the run and is missing")
    for table, before in sorted(pre_stats.items()):
        now = after.get(table)
        if now is None:
            continue
        problems = _same_stats(before, now)
        if problems:
            report.mismatches.append(f"table {table}: {'; '.join(problems)}")
        else:
            checksum = str(now.checksum or "")[:12]
            report.proof.append(
                f"{table}: {now.rows} rows, checksum {checksum}, DDL identical to before the run"
            )
    if version_table.lower() in before_set:
        if sorted(heads) != sorted(pre_heads):
            report.mismatches.append(
                f"{version_table}: at {', '.join(heads) or 'base'}, expected "
                f"{', '.join(pre_heads) or 'base'}"
            )
        else:
            report.proof.append(f"{version_table}: back at {', '.join(pre_heads) or 'base'}")
    report.proof.append(
        f"{len(live)} table(s), the same set as before the run"
        if live_set == before_set
        else f"{len(live)} table(s); the set differs from before the run"
    )


# ------------------------------------------------------------------------------- alembic
#: Runs of :func:`run_guarded` in progress in this process; the env.py guard steps aside
#: for them instead of guarding (and locking) the same run twice.
ACTIVE_RUNS: list[GuardSession] = []


@contextlib.contextmanager
def hooked_alembic(session: GuardSession) -> Iterator[None]:
    """Wrap ``EnvironmentContext.configure``/``run_migrations`` for the duration."""
    from alembic.runtime.environment import EnvironmentContext

    original_configure = EnvironmentContext.configure
    original_run = EnvironmentContext.run_migrations
    state = {"busy": False}

    def configure(self: EnvironmentContext, *args: Any, **kw: Any) -> None:
        if not state["busy"] and not kw.get("as_sql"):
            existing = kw.get("on_version_apply") or ()
            if callable(existing):
                existing = (existing,)
            kw["on_version_apply"] = (*tuple(existing), session.on_version_apply)
        original_configure(self, *args, **kw)

    def run_migrations(self: EnvironmentContext, **kw: Any) -> None:
        if state["busy"]:
            original_run(self, **kw)
            return
        state["busy"] = True
        try:
            guarded = session.prepare(self)
        finally:
            state["busy"] = False
        try:
            original_run(self, **kw)
        finally:
            if guarded:
                session.detach()

    EnvironmentContext.configure = configure  # type: ignore[method-assign]
    EnvironmentContext.run_migrations = run_migrations  # type: ignore[method-assign]
    try:
        yield
    finally:
        EnvironmentContext.configure = original_configure  # type: ignore[method-assign]
        EnvironmentContext.run_migrations = original_run  # type: ignore[method-assign]


def run_guarded(
    config: Config,
    alembic_config: AlembicConfig,
    options: GuardOptions,
    *,
    x_args: Sequence[str] = (),
) -> UpgradeResult:
    """Run ``alembic upgrade``/``downgrade`` under the guard and return what happened.

    Raises :class:`BlockedMigration`, :class:`~migration_guard.errors.LockTimeout`,
    :class:`BackupError` and usage errors when the run stops before anything changed.
    A failure while migrating is restored and reported in the result (exit code 1).
    """
    from alembic import command

    session = GuardSession(config, options)
    alembic_config.cmd_opts = argparse.Namespace(x=list(x_args))  # type: ignore[assignment]
    runner = command.upgrade if options.command == "upgrade" else command.downgrade
    ACTIVE_RUNS.append(session)
    try:
        with hooked_alembic(session):
            try:
                runner(alembic_config, options.target, sql=False)
                session.succeed()
            except (_DryRunComplete, _InterruptedRunRestored):
                pass
            except BaseException as error:
                session.detach()
                if not session.migrating:
                    session.result.outcome = "refused"
                    session.result.error = _describe(error)
                    raise _translate(error) from error
                session.fail(error)
                if isinstance(error, SystemExit):
                    raise
    finally:
        ACTIVE_RUNS.remove(session)
        session.release()
        if not options.dry_run:
            session.audit()
        session.result.seconds = time.monotonic() - session.started
    return session.result


def _translate(error: BaseException) -> BaseException:
    """Errors before anything changed, in migration-guard's own terms."""
    if isinstance(error, (MigrationGuardError, KeyboardInterrupt, SystemExit)):
        return error
    from alembic.util import CommandError

    if isinstance(error, CommandError):
        return UsageError(f"Alembic: {error}")
    import sqlalchemy as sa

    if isinstance(error, sa.exc.DBAPIError):
        return MigrationGuardError(f"the database refused the preparation: {_describe(error)}")
    return error


def _check_protection(session: GuardSession, conn: Connection, tables: Sequence[str]) -> None:
    """Warn, never stop, when the in-database protection is installed and has drifted."""
    from migration_guard.protect import META_TABLE

    if META_TABLE not in {table.lower() for table in tables}:
        return  # never installed here: nothing can have drifted
    from migration_guard.protect.operations import protect_status

    try:
        status = protect_status(session.config, url=session.url, connection=conn)
    except Exception as exc:  # the guard must not depend on the protection being healthy
        session.result.notes.append(f"could not check the protection status: {_describe(exc)}")
        return
    if status.installed and status.drifted:
        session.result.notes.append(
            "warning: the in-database protection has drifted from its configuration; "
            "run `migration-guard protect status` for details"
        )


__all__ = [
    "Allowance",
    "GuardOptions",
    "GuardSession",
    "RestoreReport",
    "UpgradeResult",
    "UpgradeSettings",
    "append_audit",
    "parse_allowances",
    "restore_pre_run_state",
    "run_guarded",
    "upgrade_settings",
]
