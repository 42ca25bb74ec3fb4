"""Issue 12 (keys and hygiene) on the real servers: what client processes see, exit codes,
messages without row data, and the leftovers of killed runs."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from migration_guard.backup import create, keygen, restore
from migration_guard.config import Config
from tests.db import test_backup_trust as trust
from tests.db.test_backup_trust import _children_of, run_sql

# The fixtures of the attack tests, shared.
backup_dir = trust.backup_dir
config = trust.config
databases = trust.databases
password_url = trust.password_url


def _client_environments(names: tuple[bytes, ...]) -> tuple[list[bytes], Callable[..., None]]:
    seen: list[bytes] = []

    def inspect(*_: Any) -> None:
        for child in _children_of(os.getpid()):
            try:
                argv = Path(f"/proc/{child}/cmdline").read_bytes()
                environ = Path(f"/proc/{child}/environ").read_bytes()
            except OSError:
                continue
            if any(name in argv for name in names):
                seen.append(environ)

    return seen, inspect


@pytest.mark.mysql
def test_restore_client_inherits_no_secret(
    config: Config,
    password_url: str,
    databases: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    password = sa.make_url(password_url).password
    assert password
    key = keygen()
    monkeypatch.setenv("MIGRATION_GUARD_KEY", key)
    monkeypatch.setenv("MIGRATION_GUARD_URL", password_url)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-secret-for-the-test")
    run_sql(password_url, "CREATE TABLE t (id INT PRIMARY KEY, note VARCHAR(200))")
    run_sql(
        password_url,
        "INSERT INTO t VALUES (:id, :note)",
        params=[{"id": i, "note": os.urandom(100).hex()} for i in range(30000)],
    )
    backup = create(config, backend="mysqldump")
    seen, inspect = _client_environments((b"mariadb\x00", b"mysql\x00", b"/mariadb", b"/mysql"))
    target = databases(create=False)
    result = restore(config, backup.id, url=target, progress=inspect)
    assert result.ok, result.mismatches
    assert seen, "the client was never seen running"
    for environ in seen:
        for secret in (key, password, "aws-secret-for-the-test"):
            assert secret.encode() not in environ
