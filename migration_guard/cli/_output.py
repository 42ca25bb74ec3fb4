"""Options and output helpers the sub-command modules share.

Imported only by sub-command modules, never by :mod:`migration_guard.cli` itself,
so ``migration-guard --help`` stays quick; rich is imported on first use.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from rich.console import Console

    from migration_guard.commands.backup import ProgressCallback
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


def split_values(values: tuple[str, ...]) -> list[str]:
    """``--tables a --tables b,c`` -> ``[a, b, c]``."""
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


@contextlib.contextmanager
def progress_bar(description: str, enabled: bool) -> Iterator[ProgressCallback | None]:
    """A rich progress bar in bytes on stderr when it is a terminal; else nothing."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TransferSpeedColumn,
    )

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        yield update
