"""What a guarded ``upgrade``/``downgrade`` returns: plain data, so that the text
renderer (:mod:`migration_guard.render.upgrade`), the JSON output and the audit log
all read the same values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from migration_guard.analysis.model import Finding


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
    #: Per table of the run's scope: ``{"table", "status", "detail"}``, status
    #: ``restored`` (as before the run), ``kept`` (the application's rows written during
    #: the run re-applied), ``rescued`` (rows written during the run are in
    #: ``rescue_backup_id``, not in the table) or ``dropped`` (created by the run).
    tables: list[dict[str, str]] = field(default_factory=list)
    rescue_backup_id: str | None = None
    #: What the restore left alone or could not put back, for the user to read.
    notes: list[str] = field(default_factory=list)

    @property
    def rescued(self) -> list[dict[str, str]]:
        """The tables whose rows written during the run are only in the rescue backup."""
        return [entry for entry in self.tables if entry["status"] == "rescued"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "tables": self.tables,
            "rescue_backup_id": self.rescue_backup_id,
            "notes": self.notes,
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


def describe_failure(error: BaseException) -> str:
    """The one-line account of why a run failed, as the result and the records keep it.

    Our own errors are worded for the user already; anything else is named by its
    type (``OperationalError: ...``) so that the audit log says what kind of failure
    it was.
    """
    from migration_guard.errors import MigrationGuardError, describe

    if isinstance(error, KeyboardInterrupt):
        return "interrupted (Ctrl-C)"
    if isinstance(error, MigrationGuardError):
        return str(error)
    return f"{type(error).__name__}: {describe(error)}"[:500]
