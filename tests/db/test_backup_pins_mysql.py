"""Issue 12.5 on the real MariaDB: a restore never prunes, least of all what it restores."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from migration_guard.backup import create, list_backups, prune, restore
from migration_guard.config import Config
from tests.unit.test_backup_trust_logic import KEY_VARIABLES


def fill(url: str, rows: int) -> None:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "CREATE TABLE IF NOT EXISTS accounts (id INT PRIMARY KEY, name VARCHAR(40))"
            )
            conn.exec_driver_sql("DELETE FROM accounts")
            for number in range(rows):
                conn.exec_driver_sql(
                    "INSERT INTO accounts VALUES (%s, %s)", (number, f"name {number}")
                )
    finally:
        engine.dispose()


def count(url: str) -> int:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return int(conn.exec_driver_sql("SELECT COUNT(*) FROM accounts").scalar_one())
    finally:
        engine.dispose()


@pytest.mark.mysql
def test_restore_with_auto_prune_keeps_the_backup_it_restores(
    mysql_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in KEY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MIGRATION_GUARD_BACKUP_DIR", str(tmp_path / "backups"))
    monkeypatch.chdir(tmp_path)
    plain = Config()
    pruning = Config(sections={"backup": {"keep_days": 0, "auto_prune": True}})
    fill(mysql_url, 30)
    old = create(plain, url=mysql_url)
    fill(mysql_url, 5)
    newer = create(plain, url=mysql_url)  # with keep_days = 0 only this one is selected

    result = restore(pruning, old.id, url=mysql_url, yes=True)
    assert result.ok, result.mismatches
    assert count(mysql_url) == 30
    assert result.safety_backup_id is not None
    left = {m.id for m in list_backups(plain)}
    assert {old.id, newer.id, result.safety_backup_id} <= left, "pruned during the restore"
    # The restore is over: the same policy now deletes what it had to leave alone.
    assert old.id in prune(pruning).delete_ids
