from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner

from migration_guard.cli import main


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
