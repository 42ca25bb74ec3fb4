"""``migration-guard upgrade`` and ``migration-guard downgrade``."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from migration_guard.cli import config_file_option
from migration_guard.render.upgrade import render_text

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
