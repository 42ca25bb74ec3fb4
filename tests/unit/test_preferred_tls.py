"""The guard's own PyMySQL connections skip the CA store PyMySQL's default TLS mode
never consults, and nothing else.

Without TLS options PyMySQL offers TLS with neither certificate nor host name
checked, but builds that context with ``ssl.create_default_context()``, which reads
the system's CA certificates on every login. The guard's connections (the migration
lock, an incremental's questions) get the same context without that store;
any TLS option of the URL keeps PyMySQL's own code.
"""

from __future__ import annotations

import ssl
from typing import Any

import pymysql

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
