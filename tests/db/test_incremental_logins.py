"""An incremental backup asks the server its questions over one login.

Each login to MariaDB/MySQL costs a round trip and, with PyMySQL, a TLS
context; an hourly incremental is short, so they add up. The logins are
counted with SQLAlchemy's pool ``connect`` event (every engine of the guard
has its own pool), on the binlog-enabled MariaDB.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from migration_guard.backup import create
from migration_guard.config import Config


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


def test_the_recorded_gtid_is_the_servers_own_reading_of_the_end_position(
    config: Config, mysql_binlog_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The end GTID is read from the copied events (GTID events, and the GTID list at
    the start of a new file after a rotation), not asked of the server; it must say
    what the server's BINLOG_GTID_POS says for that position, in another domain too."""
    engine = sa.create_engine(mysql_binlog_url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (id INT PRIMARY KEY, v INT)"))
        conn.execute(sa.text("INSERT INTO t VALUES (1, 1), (2, 2)"))
    full = create(config, url=mysql_binlog_url, encrypt=False)
    assert full.binlog is not None and full.binlog.get("gtid")

    def no_query(*args: object) -> str:
        raise AssertionError("BINLOG_GTID_POS was asked although the events say it")

    monkeypatch.setattr("migration_guard.backup.backends.binlog._gtid_at", no_query)
    for rotate in (False, True):
        with engine.connect() as conn:
            conn.execute(sa.text("SET SESSION gtid_domain_id = 7"))
            conn.execute(sa.text("UPDATE t SET v = v + 1 WHERE id = 1"))
            conn.commit()
            conn.execute(sa.text("SET SESSION gtid_domain_id = 0"))
            if rotate:
                conn.execute(sa.text("FLUSH BINARY LOGS"))
            conn.execute(sa.text("UPDATE t SET v = v + 1 WHERE id = 2"))
            conn.commit()
        incremental = create(config, url=mysql_binlog_url, type="incremental", encrypt=False)
        assert incremental.binlog is not None
        end = incremental.binlog
        with engine.connect() as conn:
            expected = conn.execute(
                sa.text("SELECT BINLOG_GTID_POS(:f, :p)"),
                {"f": end["file"], "p": int(end["position"])},
            ).scalar_one()
        recorded = sorted(str(end["gtid"]).split(","))
        assert recorded == sorted(str(expected).split(",")), rotate
        assert any(part.startswith("7-") for part in recorded)
    engine.dispose()
