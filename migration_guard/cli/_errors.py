"""What the user reads when a command fails: the one translation of errors for the CLI.

:class:`~migration_guard.cli.GuardedGroup` hands every exception that is not
click's own to :func:`exit_with`. migration-guard's errors already name the
problem and the fix; outside exceptions (a URL SQLAlchemy cannot parse, a path
the OS refuses) go through :func:`migration_guard.errors.translate` with the
table :func:`outside_errors`, so bad input ends in exit code 2 and a message,
never a traceback. Anything else is a bug and keeps its traceback. Every text
printed passes :func:`migration_guard.errors.redact` first.

Imported only when a command fails.
"""

from __future__ import annotations

import os
import sys
import traceback
from typing import NoReturn
from urllib.parse import urlsplit

import click

from migration_guard.cli import fail
from migration_guard.config import KEY_ENV, PASSPHRASE_ENV, SCRATCH_URL_ENV, URL_ENV
from migration_guard.errors import (
    InputError,
    MigrationGuardError,
    Translation,
    UsageError,
    describe,
    redact,
    translate,
)

#: Variables whose whole value is a secret.
_SECRET_VALUE_ENVS = (KEY_ENV, PASSPHRASE_ENV)
#: Variables holding a URL whose password is a secret.
_SECRET_URL_ENVS = (URL_ENV, SCRATCH_URL_ENV)


def secret_values() -> list[str]:
    """The secrets of this process's environment, to be removed from anything printed."""
    secrets = [os.environ.get(name, "") for name in _SECRET_VALUE_ENVS]
    for name in _SECRET_URL_ENVS:
        try:
            secrets.append(urlsplit(os.environ.get(name, "")).password or "")
        except ValueError:  # not a URL: its text is never printed whole
            continue
    return [secret for secret in secrets if secret]


def _because(error: type[MigrationGuardError], problem: str, fix: str) -> Translation:
    """A translation to ``error`` whose message names the problem, the detail and the fix."""

    def build(_exc: BaseException, detail: str) -> MigrationGuardError:
        return error(f"{problem}: {detail}; {fix}")

    return build


_BAD_PATH = _because(InputError, "bad path", "check the path given")


def outside_errors() -> dict[type[BaseException], Translation]:
    """Outside exceptions that can reach the CLI, most specific first, and what they mean.

    SQLAlchemy's classes are listed only when SQLAlchemy was imported: if it
    was not, none of its exceptions can be in flight, and no command pays for it.
    """
    mapping: dict[type[BaseException], Translation] = {}
    sqlalchemy_errors = sys.modules.get("sqlalchemy.exc")
    if sqlalchemy_errors is not None:
        mapping[sqlalchemy_errors.ArgumentError] = _because(
            UsageError,
            "invalid database URL or argument",
            f"check --url, --scratch-url, url in the configuration and {URL_ENV}; "
            "expected e.g. mysql+pymysql://user@host/db or sqlite:///app.db",
        )
        mapping[sqlalchemy_errors.SQLAlchemyError] = _because(
            MigrationGuardError,
            "database error",
            "check that the server is running and reachable and that the user may do this",
        )
    mapping[PermissionError] = _because(
        InputError, "permission denied", "check the permissions of the file or directory"
    )
    mapping[FileNotFoundError] = _BAD_PATH
    mapping[NotADirectoryError] = _BAD_PATH
    mapping[IsADirectoryError] = _BAD_PATH
    mapping[FileExistsError] = _BAD_PATH
    mapping[OSError] = _because(
        MigrationGuardError,
        "operating system error",
        "check the disk, the paths configured and their permissions",
    )
    return mapping


def _translated(exc: Exception, secrets: list[str]) -> MigrationGuardError | None:
    """``exc`` as one of our errors, or ``None`` when nothing in the table matches it."""
    try:
        with translate(outside_errors(), doing="", secrets=secrets):
            raise exc
    except MigrationGuardError as error:
        return error
    except Exception:
        return None


def exit_with(exc: Exception) -> NoReturn:
    """Print ``exc`` for the user, secrets removed, and exit with its code.

    Exit codes: 2 for :class:`~migration_guard.errors.UsageError` (bad input or
    configuration), 1 for any other failure, bugs included.
    """
    secrets = secret_values()
    error = exc if isinstance(exc, MigrationGuardError) else _translated(exc, secrets)
    if error is None:
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        click.echo(redact(text, secrets).rstrip(), err=True)
        fail(
            f"unexpected {type(exc).__name__}: {redact(describe(exc), secrets)}; this is a bug "
            "in migration-guard, please report it with the traceback above",
            1,
        )
    fail(redact(str(error), secrets), error.exit_code)
