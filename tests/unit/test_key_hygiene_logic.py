"""Issue 12 (keys and hygiene): what children see, and where processes are started."""

from __future__ import annotations

import ast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from migration_guard.backup.backends.mysql_client import child_environment
from migration_guard.errors import BackupError, redact_values, translate
from tests.conftest import REPO_ROOT


def test_child_environment_is_an_allow_list() -> None:
    environ = {
        "PATH": "/usr/bin",
        "HOME": "/home/app",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "TZ": "UTC",
        "TMPDIR": "/tmp",
        "MIGRATION_GUARD_KEY": "mgk1:secret",
        "MIGRATION_GUARD_PASSPHRASE": "a long passphrase",
        "MIGRATION_GUARD_URL": "mysql://u:pw@db/app",
        "MIGRATION_GUARD_APP_PASSWORD": "pw",
        "MYSQL_PWD": "pw",
        "AWS_SECRET_ACCESS_KEY": "aws",
        "DATABASE_URL": "postgresql://u:pw@db/app",
        "LD_PRELOAD": "/tmp/evil.so",
    }
    assert child_environment(environ) == {
        "PATH": "/usr/bin",
        "HOME": "/home/app",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "TZ": "UTC",
        "TMPDIR": "/tmp",
    }


def _process_calls(tree: ast.AST) -> list[ast.Call]:
    calls = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            name = node.func.attr
            if (
                isinstance(owner, ast.Name)
                and owner.id == "subprocess"
                and name in {"run", "Popen", "call", "check_call", "check_output"}
            ):
                calls.append(node)
            if (
                isinstance(owner, ast.Name)
                and owner.id == "os"
                and name.startswith(("exec", "spawn", "system", "popen", "posix_spawn"))
            ):
                calls.append(node)
    return calls


def test_every_process_is_started_with_the_allow_listed_environment() -> None:
    found = 0
    for path in sorted((REPO_ROOT / "migration_guard").rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for call in _process_calls(tree):
            found += 1
            where = f"{path.relative_to(REPO_ROOT)}:{call.lineno}"
            env = [keyword.value for keyword in call.keywords if keyword.arg == "env"]
            assert env, f"{where} starts a process with the inherited environment"
            value = env[0]
            assert (
                isinstance(value, ast.Call)
                and isinstance(value.func, ast.Name)
                and value.func.id == "child_environment"
            ), f"{where} starts a process without env=child_environment()"
    assert found >= 2, "the scan no longer sees the places that start processes"


# -- no row data in messages ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "ERROR 1062 (23000) at line 12: Duplicate entry 'alice@example.com' for key 'email'",
            "ERROR 1062 (23000) at line 12: Duplicate entry '***' for key 'email'",
        ),
        (
            "(1366) Incorrect integer value: 'abc' for column `db`.`t`.`x` at row 1",
            "(1366) Incorrect integer value: '***' for column `db`.`t`.`x` at row 1",
        ),
        (
            "Access denied for user 'app'@'10.0.0.1' (using password: YES)",
            "Access denied for user 'app'@'10.0.0.1' (using password: YES)",
        ),
        ("Unknown column 'x' in 'field list'", "Unknown column 'x' in 'field list'"),
        (
            "mariadb-dump: Got error: 1045: \"Access denied for user 'app'@'localhost' "
            '(using password: YES)" when trying to connect',
            "mariadb-dump: Got error: 1045: \"Access denied for user 'app'@'localhost' "
            '(using password: YES)" when trying to connect',
        ),
        (
            "(1062, \"Duplicate entry 'alice@example.com' for key 'email'\")",
            "(1062, \"Duplicate entry '***' for key 'email'\")",
        ),
        ("Data too long for column 'note' at row 1", "Data too long for column 'note' at row 1"),
        (
            "DETAIL:  Key (email)=(alice@example.com) already exists.",
            "DETAIL:  Key (email)=(***) already exists.",
        ),
        (
            'invalid input syntax for type integer: "abc"',
            'invalid input syntax for type integer: "***"',
        ),
        # MySQL prints values raw: quotes inside a value must not end the redaction.
        (
            "Duplicate entry 'o'brien' for key 'uq' for key 'PRIMARY'",
            "Duplicate entry '***' for key 'PRIMARY'",
        ),
        ("Truncated incorrect DOUBLE value: 'it's 12'", "Truncated incorrect DOUBLE value: '***'"),
    ],
)
def test_redact_values_removes_values_and_keeps_names(text: str, expected: str) -> None:
    assert redact_values(text) == expected


@given(value=st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=40))
@settings(max_examples=300, deadline=None)
def test_no_duplicate_entry_value_survives(value: str) -> None:
    for template in (
        "ERROR 1062 (23000) at line 3: Duplicate entry 'SECRET{v}' for key 'uq_email'",
        "(1062, \"Duplicate entry 'SECRET{v}' for key 'PRIMARY'\")",
        "Incorrect string value: 'SECRET{v}' for column 'name' at row 1",
        "DETAIL:  Key (email)=(SECRET{v}) already exists.",
        "DETAIL:  Failing row contains (1, SECRET{v}, null).",
    ):
        text = template.format(v=value)
        assert "SECRET" not in redact_values(text)
        # A client prints only its error lines: a value with a line break is cut there.
        assert "SECRET" not in redact_values(text.splitlines()[0])


def test_translate_with_row_data_redacts_the_driver_text() -> None:
    import sqlite3

    with (
        pytest.raises(BackupError) as caught,
        translate({sqlite3.Error: BackupError}, doing="restoring", row_data=True),
    ):
        raise sqlite3.IntegrityError("Duplicate entry 'alice@example.com' for key 'email'")
    assert "alice" not in str(caught.value) and "'email'" in str(caught.value)
    with pytest.raises(BackupError) as caught, translate({sqlite3.Error: BackupError}, doing="x"):
        raise sqlite3.OperationalError("near 'alice': syntax error")
    assert "alice" in str(caught.value), "only where row data can appear"
