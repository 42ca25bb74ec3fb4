"""The human-readable account of a guarded ``upgrade``/``downgrade`` run.

Shared by ``migration-guard upgrade`` and the env.py guard (which reports a failed
plain ``alembic upgrade`` on stderr). It renders from plain data: anything shaped
like :class:`UpgradeAccount` (the safe upgrade's ``UpgradeResult``), so that this
bottom-layer renderer never imports the upgrade engine.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from migration_guard.analysis.model import Finding
from migration_guard.durations import format_size


class PlannedStep(Protocol):
    """One revision step of the plan."""

    @property
    def revision(self) -> str: ...
    @property
    def direction(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def sql(self) -> Sequence[str]: ...


class RestoreAccount(Protocol):
    """What a restore after a failure did and its proof."""

    @property
    def ok(self) -> bool: ...
    @property
    def restored_tables(self) -> Sequence[str]: ...
    @property
    def dropped_tables(self) -> Sequence[str]: ...
    @property
    def proof(self) -> Sequence[str]: ...
    @property
    def mismatches(self) -> Sequence[str]: ...
    @property
    def error(self) -> str | None: ...
    @property
    def manual_command(self) -> str | None: ...
    @property
    def backup_ids(self) -> Sequence[str]: ...
    @property
    def tables(self) -> Sequence[Mapping[str, str]]: ...
    @property
    def notes(self) -> Sequence[str]: ...


class UpgradeAccount(Protocol):
    """The outcome of one guarded run, as far as the text needs it."""

    @property
    def command(self) -> str: ...
    @property
    def target(self) -> str: ...
    @property
    def outcome(self) -> str: ...
    @property
    def database(self) -> str: ...
    @property
    def from_heads(self) -> Sequence[str]: ...
    @property
    def plan(self) -> Sequence[PlannedStep]: ...
    @property
    def applied(self) -> Sequence[str]: ...
    @property
    def findings(self) -> Sequence[Finding]: ...
    @property
    def backup_id(self) -> str | None: ...
    @property
    def backup_tables(self) -> Sequence[str]: ...
    @property
    def backup_full(self) -> bool: ...
    @property
    def backup_planned(self) -> bool: ...
    @property
    def estimated_backup_bytes(self) -> int | None: ...
    @property
    def jit_backups(self) -> Sequence[Mapping[str, Any]]: ...
    @property
    def error(self) -> str | None: ...
    @property
    def restore(self) -> RestoreAccount | None: ...
    @property
    def notes(self) -> Sequence[str]: ...
    @property
    def seconds(self) -> float: ...


def render_text(result: UpgradeAccount) -> str:
    """The human-readable account of a guarded run."""
    lines: list[str] = []
    current = ", ".join(result.from_heads) or "base"
    lines.append(
        f"{result.command} {result.database or '(database)'}: {current} -> {result.target}"
    )
    if result.plan:
        lines.append("plan:")
        for step in result.plan:
            lines.append(f"  {step.revision} {step.direction}  ({step.path})")
            if result.outcome == "dry-run":
                for sql in step.sql:
                    for number, text in enumerate(sql.splitlines() or [""]):
                        lines.append(("    " if number == 0 else "      ") + text)
    if result.findings:
        lines.append("findings:")
        for finding in result.findings:
            state = f"approved: {finding.reason}" if finding.suppressed else str(finding.severity)
            lines.append(
                f"  {finding.file}:{finding.line}: {finding.rule} on "
                f"{finding.table or '(unknown)'} [{state}]"
            )
    if result.outcome == "dry-run":
        if result.backup_planned:
            size = (
                f", about {format_size(result.estimated_backup_bytes)}"
                if result.estimated_backup_bytes is not None
                else ""
            )
            what = "the whole database" if result.backup_full else ", ".join(result.backup_tables)
            lines.append(f"backup: would back up {what}{size}")
        else:
            lines.append("backup: none needed (no finding), just-in-time backups if required")
        if any(not f.suppressed and str(f.severity) == "error" for f in result.findings):
            lines.append("the real run would be refused: unapproved destructive findings")
        lines.append("dry run: nothing was changed")
    if result.backup_id:
        lines.append(f"backup: {result.backup_id} ({', '.join(result.backup_tables)})")
    for jit in result.jit_backups:
        lines.append(f"just-in-time backup: {jit['id']} ({jit['table']})")
    for note in result.notes:
        lines.append(f"note: {note}")
    if result.error:
        lines.append(f"FAILED: {result.error}")
    if result.restore is not None:
        lines.extend(_restore_lines(result))
    lines.append(_summary(result))
    return "\n".join(lines) + "\n"


def _restore_lines(result: UpgradeAccount) -> list[str]:
    report = result.restore
    assert report is not None
    lines: list[str] = []
    if report.ok:
        lines.append("restored the state from before the run:")
        if report.restored_tables:
            lines.append(f"  tables put back: {', '.join(report.restored_tables)}")
        if report.dropped_tables:
            lines.append(f"  tables the run created, dropped: {', '.join(report.dropped_tables)}")
        for entry in report.tables:
            if entry["status"] in ("kept", "rescued"):
                lines.append(f"  {entry['table']}: {entry['status']}: {entry['detail']}")
        lines.extend(f"  note: {note}" for note in report.notes)
        lines.append("proof:")
        lines.extend(f"  {line}" for line in report.proof)
        return lines
    lines.append("!!! RESTORE FAILED: the database is NOT in its state from before the run.")
    if report.error:
        lines.append(f"!!! {report.error}")
    for mismatch in report.mismatches:
        lines.append(f"!!! {mismatch}")
    lines.append(f"!!! nothing was deleted; backups: {', '.join(report.backup_ids) or '(none)'}")
    if report.manual_command:
        lines.append(f"!!! finish the restore by hand: {report.manual_command}")
    return lines


def _summary(result: UpgradeAccount) -> str:
    summary = _SUMMARIES.get(result.outcome)
    if summary is None:
        return f"{result.command} failed: {result.outcome}"
    return summary(result, f"{result.seconds:.1f} s")


def _displaced(report: RestoreAccount) -> bool:
    """Whether rows written during the run are not back in their tables."""
    return any(entry["status"] == "rescued" for entry in report.tables)


#: The last line of the account, by outcome: ``summary(result, seconds_text)``.
_SUMMARIES: dict[str, Callable[[UpgradeAccount, str], str]] = {
    "applied": lambda result, seconds: (
        f"applied {len(result.applied)} revision step(s) in {seconds}"
    ),
    "up-to-date": lambda _result, _seconds: "nothing to do: the database is already at the target",
    "dry-run": lambda result, _seconds: f"dry run of {len(result.plan)} revision step(s)",
    "restored": lambda result, seconds: (
        f"{result.command} failed and was rolled back completely ({seconds})"
        if result.restore is None or not _displaced(result.restore)
        else f"{result.command} failed and was rolled back ({seconds}); rows written during "
        "the run are in a rescue backup, not in their tables (see above)"
    ),
    "recovered": lambda result, _seconds: (
        "an interrupted earlier run was restored; nothing was migrated. "
        f"Run `migration-guard {result.command}` again to apply the migrations."
    ),
}


__all__ = ["PlannedStep", "RestoreAccount", "UpgradeAccount", "render_text"]
