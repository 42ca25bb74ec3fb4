"""``runs list`` and ``runs resolve``: a thin layer over :mod:`migration_guard.commands.runs`."""

from __future__ import annotations

import click

from migration_guard.cli import config_file_option
from migration_guard.cli._output import echo_json, format_option, load_config


@click.group()
def runs() -> None:
    """The records of guarded upgrade/downgrade runs (in <backup dir>/runs)."""


@runs.command("list")
@click.option("--status", default=None, help="Only runs in this state, e.g. restore-failed.")
@format_option()
@config_file_option
def list_command(status: str | None, fmt: str, config_file: str | None) -> None:
    """List the guarded runs, oldest first, with their state.

    A run that is restore-failed stops every later run of its database until
    `runs resolve` marks it resolved.
    """
    from migration_guard.commands.runs import list_runs

    found = list_runs(load_config(config_file), status=status)
    if fmt == "json":
        echo_json([run.to_dict() for run in found])
        return
    if not found:
        click.echo("no runs recorded")
        return
    for run in found:
        line = f"{run.run_id}  {run.status:<14}  {run.command}  {run.database}  {run.who}"
        click.echo(f"{line}  started {run.started_at}")
        if run.status == "restore-failed" and run.error:
            click.echo(f"    {run.error}")


@runs.command("resolve")
@click.argument("run_id")
@click.option(
    "--reason", required=True, help="How the database was put right (recorded in the run)."
)
@config_file_option
def resolve_command(run_id: str, reason: str, config_file: str | None) -> None:
    """Mark a restore-failed run RUN_ID resolved, after the database was repaired by
    hand, so that upgrades of its database may start again."""
    from migration_guard.commands.runs import resolve_run

    record = resolve_run(load_config(config_file), run_id, reason=reason)
    click.echo(f"run {run_id} marked resolved by {record.get('resolved_by')}")
