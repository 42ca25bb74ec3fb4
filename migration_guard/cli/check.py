"""``migration-guard check``."""

from __future__ import annotations

import sys

import click

from migration_guard.cli import QuickExit, config_file_option
from migration_guard.config import DIALECTS, load_config
from migration_guard.render import FORMATS


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(allow_dash=True))
@click.option(
    "-c",
    "--config",
    "alembic_config",
    metavar="ALEMBIC_INI",
    help="alembic.ini of the project to check when no PATHS are given (default ./alembic.ini).",
)
@click.option(
    "--range",
    "range_",
    metavar="FROM:TO",
    help="Revision range, e.g. base:head or ae1027a6acf:head (default: current:head).",
)
@click.option("--dialect", help=f"{', '.join(DIALECTS[:-1])} or {DIALECTS[-1]}.")
@click.option(
    "--protect",
    multiple=True,
    metavar="PATTERN",
    help="Protect tables matching this glob (repeatable; may be schema-qualified).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="text",
    show_default=True,
    help="Output format.",
)
@click.option(
    "--pretty",
    is_flag=True,
    help="Indent the JSON output (the default when stdout is a terminal; compact otherwise).",
)
@config_file_option
def check(
    paths: tuple[str, ...],
    alembic_config: str | None,
    range_: str | None,
    dialect: str | None,
    protect: tuple[str, ...],
    fmt: str,
    pretty: bool,
    config_file: str | None,
) -> None:
    """Find destructive operations in pending migrations.

    PATHS may be .sql files, Alembic revision files, directories, or - for SQL
    on stdin. Without PATHS the Alembic project is rendered offline for the
    revision range. Exits 1 when an unsuppressed error is found.
    """
    from migration_guard.commands.static_check import check as run_check
    from migration_guard.render import render_report

    config = load_config(config_file)
    report = run_check(
        config,
        paths,
        alembic_config=alembic_config,
        range_=range_,
        dialect=dialect,
        protect=protect,
    )
    terminal = sys.stdout.isatty()
    output = render_report(report, fmt, color=fmt == "text" and terminal, pretty=pretty or terminal)
    click.echo(output, nl=not output.endswith("\n"))
    code = 1 if report.has_errors else 0
    if paths:  # files only: no connection to close (the Alembic path may ask the database)
        raise QuickExit(code)
    sys.exit(code)
