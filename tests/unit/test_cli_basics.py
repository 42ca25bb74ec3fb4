from __future__ import annotations

import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from migration_guard.cli import GuardedGroup, main
from migration_guard.config import KEY_ENV, URL_ENV
from migration_guard.errors import BackupError, UnknownBackupError


def test_version_and_help() -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["--version"])
    assert result.exit_code == 0
    assert "migration-guard" in result.output
    result = runner.invoke(main, ["--help"])
    assert result.exit_code == 0
    assert "check" in result.output


def test_unknown_command_is_usage_error() -> None:
    result = CliRunner().invoke(main, ["frobnicate"])
    assert result.exit_code == 2


def test_python_dash_m_works() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "migration_guard", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0
    assert "migration-guard" in completed.stdout


# -- one translation of errors for the whole command line --------------------------------------
def _failing_cli(error: BaseException) -> click.Group:
    """A command line like migration-guard's whose one command raises ``error``."""

    @click.group(cls=GuardedGroup)
    def cli() -> None:
        pass

    @cli.command()
    def run() -> None:
        raise error

    return cli


def _run(error: BaseException) -> tuple[int, str]:
    result = CliRunner().invoke(_failing_cli(error), ["run"], catch_exceptions=False)
    return result.exit_code, result.output


def test_our_errors_keep_their_message_and_exit_code() -> None:
    code, output = _run(UnknownBackupError("unknown backup id 'x'; see `backups list`"))
    assert code == 2
    assert output == "migration-guard: error: unknown backup id 'x'; see `backups list`\n"
    code, output = _run(BackupError("the dump failed"))
    assert (code, output) == (1, "migration-guard: error: the dump failed\n")


def test_an_unparsable_url_is_bad_input_with_the_fix() -> None:
    from sqlalchemy.exc import ArgumentError

    code, output = _run(ArgumentError("Could not parse SQLAlchemy URL from given URL string"))
    assert code == 2
    assert "Could not parse SQLAlchemy URL" in output
    assert "--url" in output and "sqlite:///app.db" in output
    assert "Traceback" not in output


@pytest.mark.parametrize(
    ("error", "code", "expected"),
    [
        (FileNotFoundError(2, "No such file or directory", "/no/such"), 2, "/no/such"),
        (PermissionError(13, "Permission denied", "/root/x"), 2, "permissions"),
        (OSError(28, "No space left on device", "/backups/x"), 1, "No space left"),
    ],
)
def test_operating_system_errors_are_messages(error: OSError, code: int, expected: str) -> None:
    exit_code, output = _run(error)
    assert exit_code == code
    assert output.startswith("migration-guard: error: ")
    assert expected in output
    assert "Traceback" not in output


def test_secrets_never_reach_the_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    key = "mgk1:" + "k" * 43
    monkeypatch.setenv(KEY_ENV, key)
    monkeypatch.setenv(URL_ENV, "mysql+pymysql://app:hunter2hunter2@db/shop")
    message = f"cannot use {key} with mysql://root:s3cret@db/x (password hunter2hunter2)"
    for error in (BackupError(message), OSError(5, message), RuntimeError(message)):
        _, output = _run(error)
        assert key not in output and "s3cret" not in output and "hunter2" not in output
        assert "***" in output


def test_a_bug_keeps_its_traceback_and_exits_1() -> None:
    code, output = _run(RuntimeError("something impossible"))
    assert code == 1
    assert "Traceback" in output
    assert "unexpected RuntimeError: something impossible; this is a bug" in output


def test_click_usage_errors_are_left_to_click() -> None:
    code, output = _run(click.BadParameter("must be positive", param_hint="--level"))
    assert code == 2
    assert "Invalid value for --level: must be positive" in output
    assert "migration-guard: error" not in output


def test_every_command_function_is_exported_by_migration_guard_commands() -> None:
    import importlib

    from migration_guard import commands

    for name in commands.__all__:
        function = getattr(commands, name)
        # A name that is also a submodule's would resolve to the module once it is imported.
        importlib.import_module(function.__module__)
        assert callable(getattr(commands, name)) and getattr(commands, name) is function, name
