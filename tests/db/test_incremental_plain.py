"""An incremental backup run as its own process, without SQLAlchemy.

``migration-guard backup --type incremental`` with a plain ``mysql+pymysql`` URL
parses the URL itself and asks the server its questions straight through PyMySQL
(:mod:`migration_guard.dialects.mysql_server`); SQLAlchemy, most of such a short
command's start-up, is never imported. The backup is the same as through SQLAlchemy:
it follows the full backup, it verifies, and the chain restores to the source's state.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable

import sqlalchemy as sa

from migration_guard.backup import create, restore, verify
from migration_guard.config import Config
from tests.db import test_incremental as base

# The incremental tests' fixture and helper.
new_binlog_database = base.new_binlog_database
run = base.run


def rows(url: str) -> list[tuple[object, ...]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.exec_driver_sql("SELECT * FROM t ORDER BY id")]
    finally:
        engine.dispose()


def guard_process(*args: str) -> subprocess.CompletedProcess[str]:
    """The CLI in a fresh interpreter, with ``-X importtime`` (its imports on stderr)."""
    return subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "migration_guard", *args],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        check=False,
    )


def test_an_incremental_process_needs_no_sqlalchemy_and_restores_like_any_other(
    config: Config, mysql_binlog_url: str, new_binlog_database: Callable[[], str]
) -> None:
    run(
        mysql_binlog_url,
        "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20))",
        "INSERT INTO t VALUES (1, 'a'), (2, 'b')",
    )
    full = create(config, url=mysql_binlog_url, encrypt=False)
    run(
        mysql_binlog_url, "UPDATE t SET v = 'changed' WHERE id = 1", "INSERT INTO t VALUES (3, 'c')"
    )

    done = guard_process(
        "backup", "--url", mysql_binlog_url, "--type", "incremental", "--format", "json"
    )

    assert done.returncode == 0, done.stderr[-3000:]
    imported = [line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()]
    assert not [name for name in imported if name.split(".")[0] == "sqlalchemy"]
    manifest = json.loads(done.stdout)
    assert manifest["parent"] == full.id and manifest["type"] == "incremental"
    assert manifest["source_url"] == full.source_url
    assert manifest["binlog"]["start"]["position"] == full.binlog["position"]  # type: ignore[index]
    assert verify(config, manifest["id"]).ok
    restored_database = new_binlog_database()
    assert restore(config, manifest["id"], url=restored_database, yes=True).ok
    assert rows(restored_database) == rows(mysql_binlog_url)


def test_without_a_binary_log_the_process_exits_2_saying_how_to_turn_it_on(
    config: Config, mysql_url: str
) -> None:
    assert create(config, url=mysql_url, encrypt=False).binlog is None
    done = guard_process("backup", "--url", mysql_url, "--type", "incremental", "--no-encrypt")
    assert done.returncode == 2, done.stderr[-3000:]
    assert "log_bin" in done.stderr and "restart" in done.stderr


def test_an_unreachable_server_is_a_clear_error_without_the_password(config: Config) -> None:
    url = "mysql+pymysql://root:hunter2@127.0.0.1:1/mg_test_nowhere"
    done = guard_process("backup", "--url", url, "--type", "incremental", "--no-encrypt")
    assert done.returncode != 0
    assert "hunter2" not in done.stderr + done.stdout
    assert "Traceback" not in done.stderr
