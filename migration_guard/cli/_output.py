"""Options and output helpers the sub-command modules share.

Imported only by sub-command modules, never by :mod:`migration_guard.cli` itself,
so ``migration-guard --help`` stays quick; rich is imported on first use.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from rich.console import Console

    from migration_guard.config import Config

F = TypeVar("F", bound=Callable[..., Any])


def format_option(help: str = "Output format.") -> Callable[[F], F]:
    """``--format text|json`` (default text), passed to the command as ``fmt``."""
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(["text", "json"]),
        default="text",
        show_default=True,
        help=help,
    )


def load_config(config_file: str | None) -> Config:
    """The configuration from ``--config-file`` (or its default)."""
    from migration_guard.config import load_config as load

    return load(config_file)


def echo_json(data: Any) -> None:
    """``data`` as indented JSON on stdout, non-ASCII characters as they are."""
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def stdout_console() -> Console:
    """A rich console on stdout; wide when redirected so ids are never cut."""
    from rich.console import Console

    return Console(soft_wrap=True, width=None if sys.stdout.isatty() else 200)
