"""``migration-guard protect install|status|verify|remove``."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from migration_guard.cli import config_file_option
from migration_guard.cli._output import format_option, load_config
from migration_guard.config import URL_ENV

F = TypeVar("F", bound=Callable[..., Any])

_url_option = click.option(
    "--url",
    help="SQLAlchemy URL of the database (admin account for install/remove; default: config "
    f"url or {URL_ENV}).",
)
_app_user_option = click.option(
    "--app-user",
    "app_users",
    multiple=True,
    metavar="USER[@HOST]",
    help="Application account to guard (repeatable; host defaults to %; on PostgreSQL "
    "the role name).",
)
_format_option = format_option()
_dry_run_option = click.option(
    "--dry-run", is_flag=True, help="Print the exact SQL and change nothing."
)
_yes_option = click.option(
    "--yes", is_flag=True, help="Apply the plan (without it, only print the SQL)."
)


def _plan_options(function: F) -> F:
    """``--dry-run`` and ``--yes``: a plan is only printed unless it is applied."""
    return _dry_run_option(_yes_option(function))


def _emit(fmt: str, text: str, data: Any) -> None:
    if fmt == "json":
        click.echo(json.dumps(data, indent=2, sort_keys=True))
    else:
        click.echo(text, nl=not text.endswith("\n"))


@click.group()
def protect() -> None:
    """Make the database itself refuse deletes, TRUNCATE, DROP and ALTER on protected tables.

    See docs/protect.md.
    """


@protect.command()
@_url_option
@_app_user_option
@click.option(
    "--protect",
    "patterns",
    multiple=True,
    metavar="PATTERN",
    help="Protect tables matching this glob, in addition to protected_tables (repeatable).",
)
@_plan_options
@_format_option
@config_file_option
def install(
    url: str | None,
    app_users: tuple[str, ...],
    patterns: tuple[str, ...],
    dry_run: bool,
    yes: bool,
    fmt: str,
    config_file: str | None,
) -> None:
    """Install delete triggers and the DDL privilege guard (idempotent, re-runnable)."""
    from migration_guard.commands.protect import protect_install

    result = protect_install(
        load_config(config_file),
        url=url,
        app_users=app_users,
        protect=patterns,
        dry_run=dry_run,
        yes=yes,
    )
    _emit(fmt, result.render(), result.to_dict())


@protect.command()
@_url_option
@_app_user_option
@_format_option
@config_file_option
def status(url: str | None, app_users: tuple[str, ...], fmt: str, config_file: str | None) -> None:
    """Report triggers and privilege guards per table; exit 1 on drift."""
    from migration_guard.commands.protect import protect_status

    report = protect_status(load_config(config_file), url=url, app_users=app_users)
    _emit(fmt, report.render(), report.to_dict())
    sys.exit(1 if report.drifted else 0)


@protect.command()
@_url_option
@_app_user_option
@_format_option
@config_file_option
def verify(url: str | None, app_users: tuple[str, ...], fmt: str, config_file: str | None) -> None:
    """Connect as the application account and attempt the refused operations harmlessly.

    The application account's password comes from MIGRATION_GUARD_APP_PASSWORD (or
    its whole URL from MIGRATION_GUARD_APP_URL), never from the command line.
    Exits 1 when an operation that protection should refuse was allowed.
    """
    from migration_guard.commands.protect import protect_verify, render_probes

    results = protect_verify(load_config(config_file), url=url, app_users=app_users)
    _emit(fmt, render_probes(results), [result.to_dict() for result in results])
    sys.exit(1 if any(result.outcome == "allowed" for result in results) else 0)


@protect.command()
@_url_option
@_app_user_option
@_plan_options
@_format_option
@config_file_option
def remove(
    url: str | None,
    app_users: tuple[str, ...],
    dry_run: bool,
    yes: bool,
    fmt: str,
    config_file: str | None,
) -> None:
    """Drop the guard triggers and restore the grants recorded at install.

    With --app-user only those accounts' grants are restored and the triggers stay.
    """
    from migration_guard.commands.protect import protect_remove

    result = protect_remove(
        load_config(config_file), url=url, app_users=app_users, dry_run=dry_run, yes=yes
    )
    _emit(fmt, result.render(), result.to_dict())
