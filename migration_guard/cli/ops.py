"""``status``, ``monitor``, ``drill`` and ``schedule``: a thin layer over
:mod:`migration_guard.commands.ops`."""

from __future__ import annotations

import sys
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import click

from migration_guard.cli import config_file_option
from migration_guard.cli._output import echo_json, format_option, load_config, stdout_console
from migration_guard.config import SCRATCH_URL_ENV

if TYPE_CHECKING:
    from migration_guard.commands.ops import StatusReport

FORMAT_OPTION = format_option()


def _yes_no(flag: bool | None, when: str | None) -> str:
    if flag is None or when is None:
        return "never"
    return f"{'yes' if flag else 'FAILED'} ({when})"


def _render_status(report: StatusReport) -> None:
    from rich.markup import escape
    from rich.table import Table

    from migration_guard.durations import format_duration, format_size

    console = stdout_console()
    console.print(f"[bold]Backups[/bold] in {escape(report.backup_dir)}")
    if report.location_error:
        console.print(
            f"[red]cannot read the backup location:[/red] {escape(report.location_error)}"
        )
        return
    if report.types:
        table = Table(show_edge=False)
        for column in (
            "type",
            "last backup",
            "age",
            "size",
            "tables",
            "rows",
            "verified",
            "restore-tested",
            "count",
        ):
            table.add_column(column)
        for item in report.types:
            table.add_row(
                item.type,
                f"{item.last_id}\n{item.finished_at}",
                format_duration(timedelta(seconds=item.age_seconds)),
                format_size(item.size),
                str(item.tables),
                "-" if item.rows is None else str(item.rows),
                _yes_no(item.verified if item.verified_at else None, item.verified_at)
                if item.verification_level != 0
                else f"written ok ({item.verified_at})",
                _yes_no(item.restore_test_ok, item.restore_test_at),
                str(item.count),
            )
        console.print(table)
    else:
        console.print("[yellow]no backups yet[/yellow]")
    for point in report.recovery:
        console.print(
            f"Newest recovery point of {escape(point['source'])}: {point['point']} "
            f"({format_duration(timedelta(seconds=point['age_seconds']))} ago, "
            f"{point['type']} backup {point['backup_id']})"
        )
    retention = report.retention
    policy = (
        ", ".join(f"{k}={v}" for k, v in retention.items() if k.startswith("keep_") and v)
        or "keep everything"
    )
    console.print(
        f"Retention: {policy}; {retention.get('kept', 0)} kept, "
        f"{len(retention.get('due_for_pruning', []))} due for pruning"
        + ("" if retention.get("auto_prune") else " (auto_prune off)")
    )
    console.print(
        f"Storage used: {format_size(report.storage_bytes)} in {report.backups} backup(s)"
    )
    if report.monitor:
        state = "healthy" if report.monitor.get("healthy") else "[red]UNHEALTHY[/red]"
        console.print(f"Monitor: {state} (checked {report.monitor.get('checked_at')})")
    for problem in report.problems:
        console.print(f"[yellow]problem:[/yellow] {escape(problem)}")
    if report.failures:
        failures = Table(title="Last failures", show_edge=False, title_justify="left")
        for column in ("when", "event", "backup", "reason"):
            failures.add_column(column)
        for event in report.failures:
            failures.add_row(
                str(event["timestamp"]),
                str(event["event"]),
                str(event.get("backup_id") or "-"),
                escape(str(event["summary"])),
            )
        console.print(failures)
    else:
        console.print("Last failures: none recorded")
    if report.upgrades:
        upgrades = Table(title="Last upgrades", show_edge=False, title_justify="left")
        for column in ("when", "who", "from", "to", "outcome", "duration", "backup"):
            upgrades.add_column(column)
        for run in report.upgrades:
            upgrades.add_row(
                *(
                    escape(_audit_value(run, key))
                    for key in (
                        "when",
                        "who",
                        "from",
                        "to",
                        "outcome",
                        "duration_seconds",
                        "backup_id",
                    )
                )
            )
        console.print(upgrades)
    else:
        console.print("Last upgrades: none recorded")


def _audit_value(run: dict[str, Any], key: str) -> str:
    """One cell of the upgrades table; tolerant of older or partial audit records."""
    value = run.get(key)
    if value is None and key == "duration_seconds":
        value = run.get("duration")
    if key == "to" and not value and run.get("outcome") != "applied":
        # a refused or restored run never reached its target: show what it aimed at
        value = f"{run.get('target') or '?'} (not reached)"
    if value is None:
        return "-"
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "(base)"
    if key == "duration_seconds" and isinstance(value, (int, float)):
        return f"{value:.1f} s"
    return str(value)


@click.command()
@FORMAT_OPTION
@config_file_option
def status(fmt: str, config_file: str | None) -> None:
    """Show the backups per type, retention, storage, failures and upgrades.

    Exits 1 when the backup location cannot be read.
    """
    from migration_guard.commands.ops import status as build

    report = build(load_config(config_file))
    if fmt == "json":
        echo_json(report.to_dict())
    else:
        _render_status(report)
    if report.location_error:
        sys.exit(1)


@click.command()
@FORMAT_OPTION
@config_file_option
def monitor(fmt: str, config_file: str | None) -> None:
    """Run the backup health checks; exit 1 when any fails.

    Notifications go out only when the verdict changes (healthy -> unhealthy and back).
    """
    from rich.markup import escape
    from rich.table import Table

    from migration_guard.commands.ops import monitor as run

    report = run(load_config(config_file))
    if fmt == "json":
        echo_json(report.to_dict())
    else:
        console = stdout_console()
        table = Table(show_edge=False)
        for column in ("check", "subject", "status", "summary"):
            table.add_column(column)
        colours = {"ok": "green", "failed": "red", "skipped": "dim"}
        for result in report.results:
            colour = colours.get(result.status, "white")
            table.add_row(
                result.check,
                result.subject or "",
                f"[{colour}]{result.status}[/{colour}]",
                escape(result.summary),
            )
        console.print(table)
        verdict = "healthy" if report.healthy else "UNHEALTHY"
        change = f" (state changed: {report.transition})" if report.transition else ""
        console.print(f"backups are {verdict}{change}")
        for note in report.notes:
            console.print(f"[yellow]note:[/yellow] {escape(note)}")
    if not report.healthy:
        sys.exit(1)


@click.command()
@click.option(
    "--url",
    envvar=SCRATCH_URL_ENV,
    default=None,
    help=f"Scratch server URL (or {SCRATCH_URL_ENV}); a new database with "
    "a generated name is created there and dropped. SQLite: sqlite://",
)
@click.option("--id", "backup_id", default=None, help="Backup to drill (default: the newest).")
@FORMAT_OPTION
@config_file_option
def drill(url: str | None, backup_id: str | None, fmt: str, config_file: str | None) -> None:
    """Recovery drill: restore a backup into a scratch database and prove it equal."""
    from migration_guard.commands.ops import drill as run

    result = run(load_config(config_file), url=url, backup_id=backup_id)
    if fmt == "json":
        echo_json(result.to_dict())
    else:
        verdict = "passed" if result.ok else f"FAILED ({result.reason})"
        click.echo(
            f"drill of {result.backup_id} ({result.backup_type}) {verdict} in "
            f"{result.seconds:.1f} s: {result.tables} table(s)"
            + ("" if result.rows is None else f", {result.rows} row(s)")
        )
        for detail in result.details:
            click.echo(f"  {detail}")
    if not result.ok:
        sys.exit(1)


@click.command()
@click.option("--cron", "kind", flag_value="cron", default=True, help="Crontab lines (default).")
@click.option("--systemd", "kind", flag_value="systemd", help="systemd service and timer units.")
@click.option(
    "--output-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="With --systemd: write the unit files into this directory.",
)
@config_file_option
def schedule(kind: str, output_dir: str | None, config_file: str | None) -> None:
    """Print a ready-to-install schedule built from [tool.migration_guard.schedule]."""
    from migration_guard.commands.ops import schedule as build

    config = load_config(config_file)
    if output_dir is None:
        click.echo(build(config, kind), nl=False)
        return
    for path in build(config, kind, output_dir):
        click.echo(f"wrote {path}")
