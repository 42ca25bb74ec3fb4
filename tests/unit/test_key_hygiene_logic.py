"""Issue 12 (keys and hygiene): what children see, and where processes are started."""

from __future__ import annotations

import ast

from migration_guard.backup.backends.mysql_client import child_environment
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
