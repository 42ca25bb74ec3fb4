"""The migration lock's connection on MariaDB skips the CA store PyMySQL's default TLS
mode never consults (see tests/unit/test_preferred_tls.py), and is the lock as before."""

from __future__ import annotations

import sqlalchemy as sa

from migration_guard.alembic.lock import acquire, still_held


def test_the_lock_connection_is_made_without_loading_the_ca_store(mysql_url: str) -> None:
    url = sa.make_url(mysql_url)
    lock = acquire(url, timeout=5)
    try:
        assert lock.connection is not None
        driver = lock.connection.connection.dbapi_connection
        assert type(driver).__name__ == "PreferredTLSConnection"
        assert still_held(url, lock)
    finally:
        lock.release()
