"""``restore`` and ``decrypt``: options and output around :mod:`migration_guard.commands.backup`.

Keys are never options: they come from the environment (see docs/backups.md).
URLs are printed without passwords. Progress bars appear only on a terminal.
"""

from __future__ import annotations

import sys

import click

from migration_guard.cli import config_file_option
from migration_guard.cli._output import (
    echo_json,
    format_option,
    load_config,
    progress_bar,
    split_values,
)

FORMAT_OPTION = format_option("Output format; json prints objects with an `id` field.")


# -- restore -----------------------------------------------------------------------------------
def _typed_confirmation(database: str) -> bool:
    click.echo(
        f"The database {database!r} exists and is not empty. A safety backup is taken "
        "first, then it is overwritten.",
        err=True,
    )
    typed: str = click.prompt("Type the database name to continue", default="", err=True)
    return typed.strip() == database


@click.command()
@click.argument("backup_id", metavar="ID")
@click.option("--url", required=True, help="Target SQLAlchemy URL (any database name).")
@click.option("--tables", multiple=True, metavar="T", help="Restore only these tables.")
@click.option("--yes", is_flag=True, help="Overwrite a non-empty target without asking.")
@click.option("--dry-run", is_flag=True, help="Show what would happen; change nothing.")
@click.option(
    "--allow-unencrypted",
    is_flag=True,
    help="Restore an unencrypted backup although a key is configured.",
)
@click.option(
    "--until",
    metavar="TIME",
    default=None,
    help="Incremental backups: replay only the changes logged before TIME "
    "(UTC, ISO 8601, e.g. 2026-12-06T20:00:00Z).",
)
@click.option(
    "--until-position",
    metavar="FILE:POS",
    default=None,
    help="Incremental backups: replay only the events before binlog position FILE:POS "
    "(e.g. binlog.000003:1234, as SHOW BINLOG EVENTS shows it).",
)
@click.option(
    "--until-gtid",
    metavar="GTID",
    default=None,
    help="Incremental backups (MariaDB): replay only the transactions before GTID "
    "DOMAIN-SERVER-SEQ (e.g. 0-1-1234).",
)
@click.option(
    "--keep-owners/--no-owner",
    default=False,
    help="PostgreSQL: give every object its owner from the source (the roles must exist); "
    "default: the restoring role owns everything.",
)
@click.option(
    "--grants/--no-grants",
    default=True,
    help="PostgreSQL: restore the source's GRANTs (default) or leave them out.",
)
@FORMAT_OPTION
@config_file_option
def restore(
    backup_id: str,
    url: str,
    tables: tuple[str, ...],
    yes: bool,
    dry_run: bool,
    allow_unencrypted: bool,
    until: str | None,
    until_position: str | None,
    until_gtid: str | None,
    keep_owners: bool,
    grants: bool,
    fmt: str,
    config_file: str | None,
) -> None:
    """Restore backup ID into the database at --url."""
    from migration_guard.commands.backup import restore as run_restore

    confirm = _typed_confirmation if sys.stdin.isatty() else None
    with progress_bar("restore", fmt == "text") as progress:
        result = run_restore(
            load_config(config_file),
            backup_id,
            url=url,
            tables=split_values(tables) or None,
            yes=yes,
            dry_run=dry_run,
            confirm=confirm,
            progress=progress,
            allow_unencrypted=allow_unencrypted,
            until=until,
            until_position=until_position,
            until_gtid=until_gtid,
            keep_owners=keep_owners,
            grants=grants,
        )
    if fmt == "json":
        echo_json(result.to_dict())
    else:
        if dry_run:
            click.echo(f"dry run: restore of {result.backup_id} into {result.target_url}")
        else:
            state = "ok" if result.ok else "finished with differences"
            click.echo(
                f"restored {result.backup_id} into {result.target_url}: "
                f"{len(result.tables)} table(s), {state} ({result.seconds:.1f} s)"
            )
        for note in result.notes:
            click.echo(f"  {note}")
        for mismatch in result.mismatches:
            click.echo(f"  MISMATCH {mismatch}")
    sys.exit(0 if result.ok else 1)


# -- decrypt -----------------------------------------------------------------------------------
@click.command()
@click.argument("file", metavar="FILE")
@click.option("-o", "--output", "out", required=True, help="Plain output file (- for stdout).")
@click.option("--force", is_flag=True, help="Overwrite an existing output file.")
@config_file_option
def decrypt(file: str, out: str, force: bool, config_file: str | None) -> None:
    """Turn an archive (a .mgb file or a backup id) into its plain stream, for manual recovery."""
    from migration_guard.commands.backup import decrypt as run_decrypt

    written = run_decrypt(load_config(config_file), file, out, force=force)
    if out != "-":
        click.echo(f"wrote {written} bytes to {out}", err=True)
