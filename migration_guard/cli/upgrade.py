"""``migration-guard upgrade`` and ``migration-guard downgrade``."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from migration_guard.cli import config_file_option

if TYPE_CHECKING:
    from migration_guard.alembic.runner import UpgradeResult

F = TypeVar("F", bound=Callable[..., Any])


def _guard_options(function: F) -> F:
    options = [
        click.option(
            "-c",
            "--config",
            "alembic_config",
            metavar="ALEMBIC_INI",
            help="alembic.ini of the project (default ./alembic.ini).",
        ),
        click.option(
            "-x",
            "x_args",
            multiple=True,
            metavar="KEY=VALUE",
            help="Passed to env.py as Alembic's -x arguments (repeatable).",
        ),
        click.option(
            "--protect",
            multiple=True,
            metavar="PATTERN",
            help="Protect tables matching this glob too (repeatable).",
        ),
        click.option(
            "--allow",
            multiple=True,
            metavar="RULE:TABLE",
            help="Approve a destructive step, e.g. drop-column:customers (needs --reason).",
        ),
        click.option("--reason", metavar="TEXT", help="Why the --allow approvals are fine."),
        click.option(
            "--dry-run", is_flag=True, help="Print the plan, findings and backup; change nothing."
        ),
        click.option("--yes", is_flag=True, help="Answer the confirmation questions with yes."),
        click.option(
            "--backup",
            type=click.Choice(["always", "destructive", "never"]),
            default=None,
            help="When to take the safety backup (default: destructive, i.e. when the plan "
            "has any finding).",
        ),
        click.option(
            "--format",
            "fmt",
            type=click.Choice(["text", "json"]),
            default="text",
            show_default=True,
            help="Output format.",
        ),
        config_file_option,
    ]
    for option in reversed(options):
        function = option(function)
    return function


def _confirm_by_typing(name: str) -> bool:
    typed = click.prompt(f"Type {name!r} to confirm", default="", show_default=False, err=True)
    return bool(typed.strip() == name)


def _run(command: str, revision: str, fmt: str, config_file: str | None, **kwargs: Any) -> None:
    from migration_guard.commands import safe_upgrade
    from migration_guard.config import load_config
    from migration_guard.errors import BlockedMigration, UsageError

    if kwargs.get("allow") and not kwargs.get("reason"):
        raise UsageError("--allow needs --reason TEXT explaining why the step is fine")
    config = load_config(config_file)
    interactive = sys.stdin.isatty() and sys.stderr.isatty()
    function = safe_upgrade.upgrade if command == "upgrade" else safe_upgrade.downgrade
    try:
        result = function(
            config,
            revision,
            confirm=_confirm_by_typing if interactive else None,
            **kwargs,
        )
    except BlockedMigration as exc:
        if fmt == "json":
            click.echo(
                json.dumps(
                    {
                        "command": command,
                        "outcome": "refused",
                        "ok": False,
                        "error": str(exc),
                        "findings": [finding.to_dict() for finding in exc.findings],
                    },
                    indent=2,
                )
            )
            sys.exit(1)
        raise
    if fmt == "json":
        click.echo(json.dumps(result.to_dict(), indent=2, default=str))
    else:
        click.echo(render_text(result), nl=False)
    sys.exit(result.exit_code)


def render_text(result: UpgradeResult) -> str:
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
                f", about {_size(result.estimated_backup_bytes)}"
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


def _restore_lines(result: UpgradeResult) -> list[str]:
    report = result.restore
    assert report is not None
    lines: list[str] = []
    if report.ok:
        lines.append("restored the state from before the run:")
        if report.restored_tables:
            lines.append(f"  tables put back: {', '.join(report.restored_tables)}")
        if report.dropped_tables:
            lines.append(f"  tables the run created, dropped: {', '.join(report.dropped_tables)}")
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


def _summary(result: UpgradeResult) -> str:
    seconds = f"{result.seconds:.1f} s"
    if result.outcome == "applied":
        return f"applied {len(result.applied)} revision step(s) in {seconds}"
    if result.outcome == "up-to-date":
        return "nothing to do: the database is already at the target"
    if result.outcome == "dry-run":
        return f"dry run of {len(result.plan)} revision step(s)"
    if result.outcome == "restored":
        return f"{result.command} failed and was rolled back completely ({seconds})"
    if result.outcome == "recovered":
        return (
            "an interrupted earlier run was restored; nothing was migrated. "
            f"Run `migration-guard {result.command}` again to apply the migrations."
        )
    return f"{result.command} failed: {result.outcome}"


def _size(value: int | None) -> str:
    size = float(value or 0)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"  # pragma: no cover


@click.command()
@click.argument("revision", default="head")
@_guard_options
def upgrade(revision: str, fmt: str, config_file: str | None, **kwargs: Any) -> None:
    """Upgrade the database to REVISION (default head), all or nothing.

    Locks the database, checks exactly the pending revisions, takes a safety backup,
    migrates with every statement intercepted and, on any failure, restores the
    state from before the run and proves it. Exit 1 when refused or failed.
    """
    _run("upgrade", revision, fmt, config_file, **kwargs)


@click.command()
@click.argument("revision")
@_guard_options
def downgrade(revision: str, fmt: str, config_file: str | None, **kwargs: Any) -> None:
    """Downgrade the database to REVISION under the same guard as upgrade."""
    _run("downgrade", revision, fmt, config_file, **kwargs)
