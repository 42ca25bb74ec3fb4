"""The guard's own PyMySQL connections skip the CA store PyMySQL's default TLS mode
never consults, and nothing else.

Without TLS options PyMySQL offers TLS with neither certificate nor host name
checked, but builds that context with ``ssl.create_default_context()``, which reads
the system's CA certificates on every login. The guard's connections (the migration
lock, backups, an incremental's questions) get the same context without that store;
any TLS option of the URL keeps PyMySQL's own code.
"""

from __future__ import annotations

import ssl
from typing import Any

import pymysql
import pytest
import sqlalchemy as sa

from migration_guard.dialects.base import guard_engine
from migration_guard.dialects.mysql_server import _preferred_tls_class


def contexts(sslp: dict[str, Any]) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    cls = _preferred_tls_class()
    ours = cls._create_ssl_ctx(object.__new__(cls), dict(sslp))
    theirs = pymysql.connections.Connection._create_ssl_ctx(
        object.__new__(pymysql.connections.Connection), dict(sslp)
    )
    return ours, theirs


def settings(context: ssl.SSLContext) -> dict[str, object]:
    return {
        "protocol": context.protocol,
        "verify_mode": context.verify_mode,
        "check_hostname": context.check_hostname,
        "options": context.options,
        "verify_flags": context.verify_flags,
        "minimum_version": context.minimum_version,
        "maximum_version": context.maximum_version,
    }


def test_the_default_mode_gets_pymysqls_settings_without_the_ca_store() -> None:
    ours, theirs = contexts({})
    assert settings(ours) == settings(theirs)
    assert ours.verify_mode is ssl.CERT_NONE and not ours.check_hostname
    assert ours.cert_store_stats()["x509_ca"] == 0


def test_tls_options_keep_pymysqls_own_context() -> None:
    ours, theirs = contexts({"check_hostname": False, "verify_mode": "required"})
    assert settings(ours) == settings(theirs)
    assert ours.verify_mode is ssl.CERT_REQUIRED


@pytest.mark.parametrize(
    ("url", "patched"),
    [
        ("mysql+pymysql://root@127.0.0.1:3306/x", True),
        ("mariadb+pymysql://root@127.0.0.1:3306/x", True),
        ("sqlite:///x.db", False),
    ],
)
def test_only_the_guards_pymysql_engines_connect_this_way(url: str, patched: bool) -> None:
    engine = guard_engine(url)
    try:
        assert sa.event.contains(engine, "do_connect", _guard_connect()) is patched
    finally:
        engine.dispose()


def _guard_connect() -> Any:
    from migration_guard.dialects.mysql_server import guard_connect

    return guard_connect
