"""An incremental backup asks the server its questions over one login.

Each login to MariaDB/MySQL costs a round trip and, with PyMySQL, a TLS
context; an hourly incremental is short, so they add up. The logins are
counted with SQLAlchemy's pool ``connect`` event (every engine of the guard
has its own pool), on the binlog-enabled MariaDB.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from migration_guard.backup import create
from migration_guard.config import Config

KEY_VARIABLES = (
    "MIGRATION_GUARD_KEY",
    "MIGRATION_GUARD_KEY_FILE",
    "MIGRATION_GUARD_PASSPHRASE",
    "MIGRATION_GUARD_URL",
    "MIGRATION_GUARD_CONFIG",
)


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    for name in KEY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MIGRATION_GUARD_BACKUP_DIR", str(tmp_path / "backups"))
    monkeypatch.chdir(tmp_path)
    return Config()


@pytest.fixture
def logins() -> Iterator[list[str]]:
    """The database of every new DBAPI connection made while the test runs."""
    made: list[str] = []

    def count(dbapi_connection: object, record: object) -> None:
        made.append(str(getattr(dbapi_connection, "db", b"") or b"", "utf-8"))

    sa.event.listen(sa.pool.Pool, "connect", count)
    try:
        yield made
    finally:
        sa.event.remove(sa.pool.Pool, "connect", count)


def test_an_incremental_backup_logs_in_once(
    config: Config, mysql_binlog_url: str, logins: list[str]
) -> None:
    engine = sa.create_engine(mysql_binlog_url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (id INT PRIMARY KEY, v INT)"))
        conn.execute(sa.text("INSERT INTO t VALUES (1, 1), (2, 2)"))
    full = create(config, url=mysql_binlog_url, encrypt=False)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE t SET v = v + 1"))
    engine.dispose()
    logins.clear()

    incremental = create(config, url=mysql_binlog_url, type="incremental", encrypt=False)

    assert incremental.parent == full.id and incremental.binlog is not None
    assert int(incremental.binlog["position"]) > 0
    database = sa.make_url(mysql_binlog_url).database
    assert logins == [database]
