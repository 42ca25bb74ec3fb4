"""The binary-log questions a backup asks a MySQL/MariaDB server, over one login.

Over a SQLAlchemy connection, or, for a :class:`~migration_guard.urls.PlainURL`
(an hourly incremental backup run as its own process), straight through PyMySQL
with the connection arguments SQLAlchemy's ``mysql+pymysql`` dialect would pass:
three reads do not need SQLAlchemy, and importing it is most of such a short
command's start-up. The SQL is written once, here.

These connections, and the migration lock's (:func:`guard_connect`), skip one cost
of PyMySQL's default TLS mode (:func:`preferred_tls_connection`).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from migration_guard.errors import MigrationGuardError, describe

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Connection

    from migration_guard.urls import PlainURL

#: Runs one statement (``%s`` placeholders) and returns its rows.
Rows = Callable[[str, tuple[object, ...]], list[tuple[Any, ...]]]


class ServerQuestions:
    """``@@log_bin``, ``SHOW BINARY LOGS`` and ``BINLOG_GTID_POS`` on one connection."""

    def __init__(self, rows: Rows, driver_errors: tuple[type[BaseException], ...]) -> None:
        self._rows = rows
        self._driver_errors = driver_errors

    @classmethod
    def over(cls, conn: Connection) -> ServerQuestions:
        """The questions asked on a SQLAlchemy connection."""
        import sqlalchemy as sa

        def rows(sql: str, params: tuple[object, ...]) -> list[tuple[Any, ...]]:
            result = conn.exec_driver_sql(sql, params) if params else conn.exec_driver_sql(sql)
            return [tuple(row) for row in result]

        return cls(rows, (sa.exc.DBAPIError,))

    def log_bin_enabled(self) -> bool:
        """Whether the server writes a binary log (``@@log_bin``)."""
        return bool(int(self._rows("SELECT @@log_bin", ())[0][0] or 0))

    def binary_logs(self) -> list[tuple[str, int]]:
        """The binlog files the server still has, oldest first, with their sizes."""
        return [(str(row[0]), int(row[1])) for row in self._rows("SHOW BINARY LOGS", ())]

    def gtid_at(self, file: str, position: int) -> str:
        """The GTID position at ``file:position`` (MariaDB), or empty where it cannot
        be read."""
        try:
            rows = self._rows("SELECT BINLOG_GTID_POS(%s, %s)", (file, position))
        except self._driver_errors:
            return ""
        return str(rows[0][0] or "") if rows else ""


@contextlib.contextmanager
def server_questions(url: URL | PlainURL) -> Iterator[ServerQuestions]:
    """:class:`ServerQuestions` over one login to ``url``, closed afterwards."""
    from migration_guard.urls import PlainURL

    if not isinstance(url, PlainURL):
        from migration_guard.dialects.base import connected

        with connected(url) as conn:
            yield ServerQuestions.over(conn)
        return
    import pymysql

    with _direct_connection(url) as connection:
        try:
            yield ServerQuestions(_direct_rows(connection), (pymysql.err.MySQLError,))
        except pymysql.err.MySQLError as exc:
            # What the CLI makes of the same error raised through SQLAlchemy.
            raise MigrationGuardError(
                f"database error: {describe(exc)}; check that the server is running and "
                "reachable and that the user may do this"
            ) from None


def pymysql_connect_args(url: PlainURL) -> dict[str, Any]:
    """What SQLAlchemy's ``mysql+pymysql`` dialect passes to ``pymysql.connect`` for
    ``url`` (a plain URL's only query option is ``charset``, passed as it is)."""
    from pymysql.constants import CLIENT

    args: dict[str, Any] = {"host": url.host, "database": url.database}
    # Like URL.translate_connect_args: only the parts that are set and not empty.
    if url.username:
        args["user"] = url.username
    if url.password:
        args["password"] = url.password
    if url.port:
        args["port"] = url.port
    args.update(url.query)
    args["client_flag"] = CLIENT.FOUND_ROWS
    return args


@contextlib.contextmanager
def _direct_connection(url: PlainURL) -> Iterator[Any]:
    import pymysql

    from migration_guard.dialects.base import database_unavailable

    try:
        connection = preferred_tls_connection(**pymysql_connect_args(url))
    except pymysql.err.MySQLError as exc:
        raise database_unavailable(url, exc) from None
    try:
        yield connection
    finally:
        with contextlib.suppress(pymysql.err.MySQLError):
            connection.close()


def _direct_rows(connection: Any) -> Rows:
    def rows(sql: str, params: tuple[object, ...]) -> list[tuple[Any, ...]]:
        with connection.cursor() as cursor:
            cursor.execute(sql, params or None)
            return [tuple(row) for row in cursor.fetchall()]

    return rows


def preferred_tls_connection(*args: Any, **kwargs: Any) -> Any:
    """``pymysql.connect(*args, **kwargs)``, without loading the system's CA store for
    PyMySQL's default TLS mode, where nothing would ever consult it.

    Without TLS options PyMySQL uses TLS when the server offers it, with neither
    certificate nor host name checked (``CERT_NONE``), yet it builds that context
    with ``ssl.create_default_context()``, which reads every CA certificate of the
    system (several milliseconds of CPU per login). The context made here is the
    same one without that store; with TLS options PyMySQL's own code runs.
    """
    return _preferred_tls_class()(*args, **kwargs)


@functools.cache
def _preferred_tls_class() -> type[Any]:
    import ssl

    import pymysql

    class PreferredTLSConnection(pymysql.connections.Connection):  # type: ignore[misc]
        def _create_ssl_ctx(self, sslp: Any) -> Any:
            if not (isinstance(sslp, dict) and not sslp):
                return super()._create_ssl_ctx(sslp)
            # What PyMySQL makes of ``{}``: create_default_context() minus the CA store
            # (load_default_certs), then no host name check and CERT_NONE.
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.verify_flags &= ~ssl.VERIFY_X509_STRICT
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            context.options |= ssl.OP_NO_SSLv2
            context.options |= ssl.OP_NO_SSLv3
            return context

    return PreferredTLSConnection


def guard_connect(dialect: Any, record: Any, cargs: Any, cparams: Any) -> Any:
    """SQLAlchemy ``do_connect`` hook of the migration lock's ``mysql+pymysql`` engine."""
    del dialect, record
    return preferred_tls_connection(*cargs, **cparams)
