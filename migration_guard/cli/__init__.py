"""The ``migration-guard`` command line: a thin click layer over
:mod:`migration_guard.commands`.

Each sub-command lives in its own module in this package and is imported only
when it is invoked, so ``migration-guard check`` starts quickly. Errors are
turned into messages and exit codes in one place, :class:`GuardedGroup` with
:mod:`migration_guard.cli._errors`: 0 fine, 1 a problem found or an operation
failed, 2 usage or configuration error.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import click

from migration_guard import __version__

#: sub-command name -> "module:attribute" of its click command.
COMMANDS: dict[str, str] = {
    "check": "migration_guard.cli.check:check",
    "keygen": "migration_guard.cli.backup:keygen",
    "backup": "migration_guard.cli.backup:backup",
    "backups": "migration_guard.cli.backup:backups",
    "restore": "migration_guard.cli.restore:restore",
    "decrypt": "migration_guard.cli.restore:decrypt",
    "protect": "migration_guard.cli.protect:protect",
    "upgrade": "migration_guard.cli.upgrade:upgrade",
    "downgrade": "migration_guard.cli.upgrade:downgrade",
    "status": "migration_guard.cli.ops:status",
    "monitor": "migration_guard.cli.ops:monitor",
    "drill": "migration_guard.cli.ops:drill",
    "schedule": "migration_guard.cli.ops:schedule",
    "runs": "migration_guard.cli.runs:runs",
}

F = TypeVar("F", bound=Callable[..., Any])


class LazyGroup(click.Group):
    """A group whose sub-commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(COMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        reference = COMMANDS.get(cmd_name)
        if reference is None:
            return None
        import importlib

        module_name, _, attribute = reference.partition(":")
        loaded: click.Command = getattr(importlib.import_module(module_name), attribute)
        return loaded


def config_file_option(function: F) -> F:
    # Imported here, by the sub-command modules, so that `--version` does not read it.
    from migration_guard.config import CONFIG_ENV

    return click.option(
        "--config-file",
        type=click.Path(dir_okay=False),
        default=None,
        envvar=CONFIG_ENV,
        help="TOML file with a [tool.migration_guard] table (default: ./pyproject.toml).",
    )(function)


class QuickExit(SystemExit):
    """The command is done and holds nothing that needs the interpreter's shutdown: no
    connection, thread, temporary file or unflushed file besides stdout and stderr.

    Everywhere it is a :class:`SystemExit` with the same code; the process entry
    point (:func:`migration_guard.__main__.run`) may then end the process at once,
    skipping the teardown of every object the command made, as mypy does.
    """


def fail(message: str, exit_code: int) -> NoReturn:
    """Print ``message`` as migration-guard's error on stderr and exit with ``exit_code``."""
    click.echo(f"migration-guard: error: {message}", err=True)
    sys.exit(exit_code)


class GuardedGroup(LazyGroup):
    """Every error that reaches the command line becomes a message and an exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Abort, click.exceptions.Exit):
            raise  # click reports its own usage errors (exit code 2) and exits
        except KeyboardInterrupt:
            fail("interrupted", 130)
        except BrokenPipeError:
            sys.exit(1)  # the reader went away (`| head`): nothing left to tell
        except Exception as exc:
            from migration_guard.cli._errors import exit_with

            exit_with(exc)


@click.group(cls=GuardedGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="migration-guard")
def main() -> None:
    """Keep schema migrations from destroying production data.

    Exit codes: 0 fine, 1 problems found or an operation failed,
    2 usage or configuration error.
    """
