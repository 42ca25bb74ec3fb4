"""The servers .ci/services provides are there and configured as the tests expect."""

from __future__ import annotations

import pytest
import sqlalchemy as sa


@pytest.mark.mysql
def test_the_binlog_server_logs_rows_of_a_fresh_database(mysql_binlog_url: str) -> None:
    engine = sa.create_engine(mysql_binlog_url)
    try:
        with engine.begin() as connection:
            settings = connection.execute(
                sa.text("SELECT @@log_bin, @@binlog_format, @@server_id")
            ).one()
            before = connection.execute(sa.text("SHOW MASTER STATUS")).one()
            connection.execute(sa.text("CREATE TABLE t (id INT PRIMARY KEY)"))
            connection.execute(sa.text("INSERT INTO t VALUES (1)"))
        with engine.connect() as connection:
            after = connection.execute(sa.text("SHOW MASTER STATUS")).one()
    finally:
        engine.dispose()
    assert tuple(settings) == (1, "ROW", 1)
    assert (after[0], after[1]) > (before[0], before[1]), "the insert must reach the binlog"
