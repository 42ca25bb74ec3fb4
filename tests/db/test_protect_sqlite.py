"""``protect`` on SQLite: delete triggers, bypass table, status, verify, remove."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from migration_guard.cli import main
from migration_guard.commands.protect import (
    protect_install,
    protect_remove,
    protect_status,
    protect_verify,
)
from migration_guard.config import Config
from migration_guard.dialects.sqlite import quote_sqlite_identifier as quote_identifier
from migration_guard.errors import UsageError
from migration_guard.protect.sqlite import allow_deletes

#: A table name an attacker might choose; it must be quoted, never spliced.
ODD_NAME = 'it\'s "odd"); DROP TABLE y; --'
ODD_QUOTED = quote_identifier(ODD_NAME)


@pytest.fixture
def database(tmp_path: Path) -> Path:
    path = tmp_path / "app.db"
    conn = sqlite3.connect(path)
    conn.executescript(
        f"""
        CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, note TEXT);
        INSERT INTO customers VALUES (1, 'ada', 'x'), (2, 'bob', 'y');
        CREATE TABLE {ODD_QUOTED} (id INTEGER PRIMARY KEY);
        INSERT INTO {ODD_QUOTED} VALUES (1);
        CREATE TABLE y (id INTEGER);
        CREATE TABLE scratch (id INTEGER);
        INSERT INTO scratch VALUES (1);
        """
    )
    conn.commit()
    conn.close()
    return path


def _url(path: Path) -> str:
    return f"sqlite:///{path}"


def _config(*patterns: str) -> Config:
    return Config(protected_tables=patterns)


def _count(path: Path, table: str) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0])
    finally:
        conn.close()


def test_install_blocks_deletes_and_bypass_allows_them(database: Path) -> None:
    result = protect_install(_config("customers", "it*"), url=_url(database), yes=True)
    assert result.applied
    conn = sqlite3.connect(database)
    try:
        for sql in ("DELETE FROM customers", "DELETE FROM customers WHERE id = 1"):
            with pytest.raises(sqlite3.DatabaseError, match="migration-guard: deleting from"):
                conn.execute(sql)
        with pytest.raises(sqlite3.DatabaseError, match="migration-guard"):
            conn.execute(f"DELETE FROM {ODD_QUOTED}")
        conn.execute("DELETE FROM scratch")
        conn.execute("INSERT INTO customers VALUES (3, 'cy', 'z')")
        conn.execute("UPDATE customers SET name = 'ADA' WHERE id = 1")
        conn.commit()
        with allow_deletes(conn):
            conn.execute("DELETE FROM customers WHERE id = 3")
        conn.commit()
        assert conn.execute("SELECT COUNT(*) FROM migration_guard_bypass").fetchone()[0] == 0
        with pytest.raises(sqlite3.DatabaseError):
            conn.execute("DELETE FROM customers WHERE id = 2")
    finally:
        conn.close()
    assert _count(database, "customers") == 2
    assert _count(database, "y") == 0  # the odd table name injected nothing


def test_idempotent_status_drift_and_remove(database: Path) -> None:
    protect_install(_config("customers"), url=_url(database), yes=True)
    assert protect_install(_config("customers"), url=_url(database)).plan.is_empty
    status = protect_status(_config("customers"), url=_url(database))
    assert not status.drifted
    assert any("DROP TABLE" in item for item in status.limitations)

    runner = CliRunner()
    shown = runner.invoke(main, ["protect", "status", "--url", _url(database)])
    assert shown.exit_code == 0, shown.output
    assert "cannot protect: DROP TABLE" in shown.output

    conn = sqlite3.connect(database)
    conn.execute("DROP TRIGGER mg_guard_customers_bd")
    conn.commit()
    conn.close()
    drifted = runner.invoke(main, ["protect", "status", "--url", _url(database)])
    assert drifted.exit_code == 1
    assert "missing" in drifted.output

    protect_install(_config("customers"), url=_url(database), yes=True)
    assert not protect_status(_config(), url=_url(database)).drifted
    protect_remove(_config(), url=_url(database), yes=True)
    conn = sqlite3.connect(database)
    try:
        conn.execute("DELETE FROM customers")
        names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    finally:
        conn.close()
    assert "migration_guard_meta" not in names and "migration_guard_bypass" not in names


def test_verify_and_dry_run(database: Path) -> None:
    runner = CliRunner()
    dry = runner.invoke(
        main, ["protect", "install", "--url", _url(database), "--protect", "customers", "--dry-run"]
    )
    assert dry.exit_code == 0
    assert "CREATE TRIGGER" in dry.output
    conn = sqlite3.connect(database)
    conn.execute("DELETE FROM customers WHERE id = 2")
    conn.commit()
    conn.close()

    protect_install(_config("customers"), url=_url(database), yes=True)
    results = protect_verify(_config(), url=_url(database))
    delete = next(result for result in results if result.operation == "DELETE")
    assert delete.outcome == "refused"
    assert _count(database, "customers") == 1


def test_bad_input(database: Path) -> None:
    with pytest.raises(UsageError, match="no_such"):
        protect_install(_config("no_such*"), url=_url(database))
    with pytest.raises(UsageError, match="--protect"):
        protect_install(_config(), url=_url(database))
    with pytest.raises(UsageError, match="no accounts"):
        protect_install(_config("customers"), url=_url(database), app_users=["app"])
    with pytest.raises(UsageError, match="does not exist"):
        protect_install(_config("customers"), url=_url(database.with_name("missing.db")))


def test_monitor_reports_protection_drift(
    database: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from migration_guard.monitoring.checks.protection import check_protection_drift
    from migration_guard.monitoring.health import run_checks

    config = Config(
        protected_tables=("customers",), url=_url(database), backup_dir=str(tmp_path / "bk")
    )
    _, results = run_checks(config, names=["protection_drift"])
    [skipped] = [r for r in results if r.check == "protection_drift"]
    assert "not installed" in skipped.summary

    protect_install(config, yes=True)
    _, results = run_checks(config, names=["protection_drift"])
    assert [r.status for r in results if r.check == "protection_drift"] == ["ok"]

    conn = sqlite3.connect(database)
    conn.execute("DROP TRIGGER mg_guard_customers_bd")
    conn.commit()
    conn.close()
    context, results = run_checks(config, names=["protection_drift"])
    [failed] = [r for r in results if r.check == "protection_drift"]
    assert failed.status == "failed"
    assert any("customers" in detail for detail in failed.details)
    # the check alone gives the same verdict as the monitor run
    assert [r.status for r in check_protection_drift(context)] == ["failed"]


def test_app_users_come_from_the_protect_section(tmp_path: Path) -> None:
    from migration_guard.commands.protect import configured_app_users
    from migration_guard.errors import ConfigError

    config = Config(sections={"protect": {"app_users": ["app@%", "worker"]}})
    assert configured_app_users(config) == ("app@%", "worker")
    with pytest.raises(ConfigError, match="known keys: app_users"):
        configured_app_users(Config(sections={"protect": {"app_user": "x"}}))
